"""Where the MLflow store resolves: relative local stores sit at the project root DVC names, not in the working
directory (which, under `dvc exp run --temp`, is a temporary copy that DVC deletes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from electra_model.client.store import DEFAULT_TRACKING_URI, anchored, resolve_tracking_uri


@pytest.fixture
def temp_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root and a DVC-style temporary copy of it as the working directory, DVC_ROOT set as DVC sets it."""
    root = tmp_path / "repo"
    copy = root / ".dvc/tmp/exps/tmpabc123"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    monkeypatch.setenv("DVC_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return root


def test_default_store_sits_at_the_repository_root_not_in_the_temporary_copy(temp_copy: Path) -> None:
    assert resolve_tracking_uri() == f"sqlite:///{temp_copy / 'mlflow.db'}"
    assert resolve_tracking_uri(configured="sqlite:///stores/x.db?timeout=5") == (
        f"sqlite:///{temp_copy / 'stores/x.db'}?timeout=5"
    )
    assert anchored("mlartifacts") == temp_copy / "mlartifacts"


def test_relative_store_in_the_environment_is_anchored_too(temp_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///team.db")
    assert resolve_tracking_uri(configured="sqlite:///mlflow.db") == f"sqlite:///{temp_copy / 'team.db'}"
    assert resolve_tracking_uri(explicit="mlruns") == str(temp_copy / "mlruns")


def test_absolute_and_remote_stores_are_left_alone(temp_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for uri in ("sqlite:////srv/mlflow.db", "http://mlflow.example:5000", "databricks", "postgresql://db/mlflow",
                "sqlite:///:memory:", "file:///srv/mlruns"):
        assert resolve_tracking_uri(explicit=uri) == uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.com")
    assert resolve_tracking_uri(configured="sqlite:///mlflow.db") == "https://mlflow.example.com"
    assert anchored("/data/artifacts") == Path("/data/artifacts")


def test_outside_dvc_the_working_directory_is_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
