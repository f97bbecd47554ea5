"""The registry is reconciled with the exported directory: found by its content digest, registered again from it
when the store lost it (through the gate, on the quality the export stage recorded), on real sqlite MLflow stores."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from electra_model.errors import ElectraError
from electra_model.io import write_json
from electra_model.tracking.registry import directory_digest, register
from electra_model.tracking.registry_sync import reconcile
from tests.fixtures_models import quality
from tests.params import section

EXPORT = section("export", min_f1=0.3, parity_atol=1e-3)


def new_store(tmp_path: Path, migrated_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point MLflow at an empty store, as after losing mlflow.db or setting a new MLFLOW_TRACKING_URI."""
    database = tmp_path / "fresh.db"
    shutil.copyfile(migrated_store, database)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    mlflow.set_tracking_uri(f"sqlite:///{database}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("tests", (tmp_path / "fresh").as_uri()))


def test_found_when_registered_and_registered_again_when_lost(
    mlflow_store: str, migrated_store: Path, pattern_onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx = tmp_path / "onnx"
    shutil.copytree(pattern_onnx_dir, onnx)
    metrics = tmp_path / "export.json"
    write_json(metrics, {**quality(0.81).to_dict(), "registered_version": 7, "alias_moved": True})  # 7: stale on purpose
    with mlflow.start_run():
        register(onnx, EXPORT, quality(0.81))
    found = reconcile(onnx, metrics, EXPORT)
    assert (found["version"], found["registered_now"], found["alias_version"]) == (1, False, 1)

    assert found["card"] is False  # no card given, none published

    new_store(tmp_path, migrated_store, monkeypatch)
    card = tmp_path / "README.md"
    card.write_text("---\nlanguage: en\n---\n# electra-ner\n\nrecorded figures\n", encoding="utf-8")
    again = reconcile(onnx, metrics, EXPORT, card)
    assert (again["version"], again["registered_now"], again["decision"], again["alias_version"]) == (1, True, "promoted", 1)
    client = MlflowClient()  # the card stage's card goes with the version registered now
    assert again["card"] is True
    assert client.get_model_version("electra-ner", "1").description == "# electra-ner\n\nrecorded figures\n"
    artifacts = Path(client.get_model_version_download_uri("electra-ner", "1").removeprefix("file://"))
    assert (artifacts / "README.md").read_text(encoding="utf-8") == card.read_text(encoding="utf-8")
    assert reconcile(onnx, metrics, EXPORT)["registered_now"] is False

    (onnx / "labels.json").write_text((onnx / "labels.json").read_text(encoding="utf-8") + " ", encoding="utf-8")
    changed = reconcile(onnx, metrics, EXPORT)  # other bytes: another model, registered as a new version
    assert (changed["version"], changed["registered_now"]) == (2, True)
    assert directory_digest(onnx) != directory_digest(pattern_onnx_dir)


def test_a_failing_gate_registers_without_the_alias(
    mlflow_store: str, pattern_onnx_dir: Path, tmp_path: Path
) -> None:
    metrics = tmp_path / "export.json"
    write_json(metrics, quality(0.1).to_dict())
    status = reconcile(pattern_onnx_dir, metrics, EXPORT)
    assert (status["registered_now"], status["decision"], status["alias_version"]) == (True, "rejected", None)
    assert "min_f1" in status["reason"]


def test_nothing_exported_is_a_user_error(mlflow_store: str, tmp_path: Path) -> None:
    with pytest.raises(ElectraError, match="dvc repro export"):
        reconcile(tmp_path / "onnx", tmp_path / "export.json", EXPORT)
