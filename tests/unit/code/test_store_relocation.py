"""Issue 30, finding 1: a copied or moved project's local MLflow store records, registers and serves inside the copy
(:mod:`electra_model.tracking.relocate`), on a real sqlite store with a logged model file."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest

from electra_model.client.store import files_beside_store
from electra_model.errors import ElectraError
from electra_model.tracking.runs import configure
from tests.params import section


def log_in(project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Configure tracking as a stage in ``project`` does (default relative store) and log one artifact; its URI."""
    monkeypatch.setenv("DVC_ROOT", str(project))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    configure(section("tracking", uri="sqlite:///mlflow.db", artifact_location="mlartifacts"))
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "note.txt")
        (project / "mlartifacts" / "MLmodel").write_text(f"artifact_path: {project}/mlartifacts/m\n")
    mlflow.set_tracking_uri(None)
    return run.info.artifact_uri


def test_a_copied_project_logs_into_itself_not_into_the_original(
    tmp_path: Path, migrated_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    original, copy = tmp_path / "original", tmp_path / "elsewhere" / "copy"
    original.mkdir()
    shutil.copyfile(migrated_store, original / "mlflow.db")
    first = log_in(original, monkeypatch)
    assert first.startswith((original / "mlartifacts").as_uri())
    shutil.copytree(original, copy)
    before = sorted(path.relative_to(original) for path in original.rglob("*") if path.suffix != ".db")

    second = log_in(copy, monkeypatch)

    assert second.startswith((copy / "mlartifacts").as_uri())
    assert sorted(path.relative_to(original) for path in original.rglob("*") if path.suffix != ".db") == before
    run = mlflow.MlflowClient(f"sqlite:///{copy / 'mlflow.db'}").get_run(first.split("/")[-2])
    assert run.info.artifact_uri.startswith((copy / "mlartifacts").as_uri())  # old runs are found in the copy too
    assert str(original) + "/" not in (copy / "mlartifacts" / "MLmodel").read_text()
    assert f"moved from {original} to {copy}" in capsys.readouterr().err


def test_a_store_whose_artifacts_lie_elsewhere_is_named_with_what_to_do(
    tmp_path: Path, migrated_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copyfile(migrated_store, project / "mlflow.db")
    log_in(project, monkeypatch)
    with pytest.raises(ElectraError, match="keeps this experiment's artifacts at .*tracking.artifact_location"):
        configure(section("tracking", uri="sqlite:///mlflow.db", artifact_location="other-folder"))


def model_files(root: Path) -> Path:
    files = root / "mlartifacts" / "models" / "m-0123abcd" / "artifacts"
    files.mkdir(parents=True)
    return files


def test_reading_a_copied_store_finds_the_model_files_beside_it_without_writing(tmp_path: Path) -> None:
    original, copy = model_files(tmp_path / "original"), model_files(tmp_path / "copy")
    store = f"sqlite:///{tmp_path / 'copy' / 'mlflow.db'}"
    assert files_beside_store(original.as_uri(), store, "m 1") == copy.as_uri()
    assert files_beside_store(str(original), store, "m 1") == copy.as_uri()
    assert files_beside_store(copy.as_uri(), store, "m 1") == copy.as_uri()
    assert files_beside_store(original.as_uri(), "http://127.0.0.1:5000", "m 1") == original.as_uri()
    assert files_beside_store("s3://bucket/models/m-0123abcd/artifacts", store, "m 1").startswith("s3://")


def test_reading_a_moved_store_whose_files_are_nowhere_names_the_path_and_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    gone = tmp_path / "old" / "mlartifacts" / "models" / "m-0123abcd" / "artifacts"
    with pytest.raises(ElectraError, match=rf"registered model m 1: .* records its files at {gone}, which does not "
                                           r"exist.*dvc repro -f export"):
        files_beside_store(gone.as_uri(), f"sqlite:///{tmp_path / 'project' / 'mlflow.db'}", "m 1")
