"""Registration behind the quality gate, alias resolution, and the registered pyfunc, on a real sqlite MLflow store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dataclasses

import mlflow
import pandas as pd
import pytest
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag
from mlflow.tracking import MlflowClient

from electra_model.config import ExportParams
from electra_model.errors import ElectraError
from electra_model.client.ner import NerPredictor
from electra_model.tracking.registry import decide, directory_digest, register
from electra_model.tasks.registry import registered_name
from tests.fixtures_models import quality
from tests.params import section

EXPORT = section("export", min_f1=0.3, parity_atol=1e-3)
NAME = registered_name(EXPORT, "ner")


def register_run(onnx_dir: Path, measured: dict[str, Any], export: ExportParams = EXPORT) -> dict[str, Any]:
    with mlflow.start_run():
        return register(onnx_dir, export, measured)


def version_tags(version: str) -> dict[str, str]:
    return MlflowClient().get_model_version(NAME, version).tags


def champion() -> str:
    return str(MlflowClient().get_model_version_by_alias(NAME, "champion").version)


def test_the_alias_moves_only_through_the_gate(mlflow_store: str, pattern_onnx_dir: Path) -> None:
    first = register_run(pattern_onnx_dir, quality(0.81))
    assert first == {
        "name": NAME,
        "version": "1",
        "alias_moved": True,
        "reason": "f1 0.8100 >= min_f1 0.30 and no version held alias 'champion'; parity max diff 2.0e-06 <= 1e-03",
        "model_uri": f"models:/{NAME}/1",
    }
    assert champion() == "1"
    assert version_tags("1") == {
        "onnx_digest": directory_digest(pattern_onnx_dir),
        "task": "ner",
        "f1": "0.81",
        "f1_split": "valid",
        "parity_max_abs_diff": "2e-06",
        "serve_variant": "int8",
        "serve_reason": "int8: fastest",
        "champion_decision": "promoted",
        "champion_reason": first["reason"],
        "variant.fp32.f1": "0.81",
        "variant.fp32.max_abs_logit_diff": "2e-06",
        "variant.fp32.latency_ms_b1": "3.5",
        "variant.int8.f1": "0.81",
        "variant.int8.max_abs_logit_diff": "0.02",
        "variant.int8.labels_identical": "False",
        "variant.int8.latency_ms_b1": "1.25",
    }

    worse = register_run(pattern_onnx_dir, quality(0.78))
    assert (worse["version"], worse["alias_moved"], champion()) == ("2", False, "1")
    assert version_tags("2")["champion_decision"] == "rejected"
    assert version_tags("2")["champion_reason"] == "f1 0.7800 < champion v1 f1 0.8100; parity max diff 2.0e-06 <= 1e-03"

    broken = register_run(pattern_onnx_dir, quality(0.95, parity_passed=False, diff=0.5))
    assert (broken["alias_moved"], champion()) == (False, "1")
    assert broken["reason"] == "parity failed: parity max diff 5.0e-01 > 1e-03 but argmax labels differ"

    tie = register_run(pattern_onnx_dir, quality(0.81))
    assert (tie["version"], tie["alias_moved"], champion()) == ("4", True, "4")
    assert tie["reason"].startswith("f1 0.8100 >= min_f1 0.30 and >= champion v1 f1 0.8100")


def test_the_gate_reads_a_lower_is_better_metric_as_a_ceiling() -> None:
    """An error such as MSE passes ``min_f1`` from below and must not exceed the champion's."""
    def mse(value: float) -> Any:
        return dataclasses.replace(quality(value), metric="mse", higher_is_better=False)

    export = section("export", min_f1=0.2, parity_atol=1e-3)
    holder = ModelVersion(NAME, "3", 0, tags=[ModelVersionTag("mse", "0.05")])
    assert decide(mse(0.1), export, None) == (
        True, "mse 0.1000 <= min_f1 0.20 and no version held alias 'champion'; parity max diff 2.0e-06 <= 1e-03")
    assert decide(mse(0.3), export, None) == (False, "mse 0.3000 > min_f1 0.20; parity max diff 2.0e-06 <= 1e-03")
    assert decide(mse(0.1), export, holder) == (
        False, "mse 0.1000 > champion v3 mse 0.0500; parity max diff 2.0e-06 <= 1e-03")
    assert decide(mse(0.04), export, holder)[0] is True
    higher = dataclasses.replace(mse(0.04), higher_is_better=True)  # the same numbers read as a score: refused
    assert decide(higher, export, holder)[0] is False


def test_a_first_version_below_min_f1_gets_no_alias(mlflow_store: str, pattern_onnx_dir: Path) -> None:
    result = register_run(pattern_onnx_dir, quality(0.1))
    assert result["alias_moved"] is False
    assert result["reason"].startswith("f1 0.1000 < min_f1 0.30")
    assert MlflowClient().get_registered_model(NAME).aliases == {}
    assert version_tags("1")["champion_decision"] == "rejected"


def test_register_needs_the_callers_run(mlflow_store: str, pattern_onnx_dir: Path) -> None:
    with pytest.raises(RuntimeError, match="active MLflow run"):
        register(pattern_onnx_dir, EXPORT, quality(0.9))


def test_registry_uris_resolve_to_the_registered_onnx_model(mlflow_store: str, pattern_onnx_dir: Path) -> None:
    register_run(pattern_onnx_dir, quality(0.9))
    register_run(pattern_onnx_dir, quality(0.1))
    for uri in (f"models:/{NAME}@champion", f"models:/{NAME}/2"):
        [entities] = NerPredictor.from_uri(uri, tracking_uri=mlflow_store).predict(["John Smith left Paris."])
        found = [(entity.type, entity.text, entity.start) for entity in entities]
        assert found == [("PER", "John Smith", 0), ("LOC", "Paris", 16)]


def test_a_missing_alias_or_version_is_a_user_error(mlflow_store: str, pattern_onnx_dir: Path) -> None:
    register_run(pattern_onnx_dir, quality(0.1))
    hint = f"run the pipeline (make run) or pass --model PATH|models:/{NAME}/VERSION"
    with pytest.raises(ElectraError) as error:
        NerPredictor.from_uri(f"models:/{NAME}@champion", tracking_uri=mlflow_store)
    assert str(error.value) == f"no version of registered model '{NAME}' has alias 'champion' in {mlflow_store}; {hint}"
    with pytest.raises(ElectraError) as error:
        NerPredictor.from_uri(f"models:/{NAME}/7", tracking_uri=mlflow_store)
    assert str(error.value) == f"registered model '{NAME}' has no version 7 in {mlflow_store}; {hint}"


def test_the_registered_pyfunc_serves_lists_dataframes_and_dicts(mlflow_store: str, pattern_onnx_dir: Path) -> None:
    register_run(pattern_onnx_dir, quality(0.9))
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    paris = [{"type": "LOC", "text": "Paris", "start": 3, "end": 8}]

    def without_scores(result: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        return [[{key: value for key, value in entity.items() if key != "score"} for entity in row] for row in result]

    assert without_scores(model.predict(["To Paris", ""])) == [paris, []]
    assert without_scores(model.predict(pd.DataFrame({"id": [7], "text": ["To Paris"]}))) == [paris]
    assert without_scores(model.predict({"text": "To Paris"})) == [paris]


def test_a_registered_crf_model_decodes_with_its_chain_through_uris_and_the_pyfunc(
    mlflow_store: str, crf_pattern_onnx_dir: Path, pattern_onnx_dir: Path
) -> None:
    """crf_chain.json travels with the registered model: the CRF pattern model's chain forbids a sentence to open
    with a person, so "John Smith" at the start is not the softmax pattern model's PER entity."""
    text = "John Smith left Paris."
    expected = [entity.to_dict() for entity in NerPredictor.from_dir(crf_pattern_onnx_dir).predict([text])[0]]
    softmax = [entity.to_dict() for entity in NerPredictor.from_dir(pattern_onnx_dir).predict([text])[0]]
    assert expected != softmax and ("PER", "John Smith") not in {(e["type"], e["text"]) for e in expected}
    register_run(crf_pattern_onnx_dir, quality(0.9))
    [entities] = NerPredictor.from_uri(f"models:/{NAME}@champion", tracking_uri=mlflow_store).predict([text])
    assert [entity.to_dict() for entity in entities] == expected
    assert mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict([text]) == [expected]
