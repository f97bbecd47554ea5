"""The registered classifier behind MLflow's scoring server: `mlflow models serve -m
models:/electra-classifier@champion --env-manager local` answers texts and text pairs with labels over HTTP, and
refuses a non-text pair with a 400."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

from electra_model.export.choose import check_and_choose
from electra_model.serving.model_server import served_model
from electra_model.tracking.registry import register
from tests.fixtures_classifier import CLASSIFIER_LABELS, cue_split
from tests.params import section

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, migrated_store: Path, pair_classifier_model_dir: Path,
    pair_classifier_onnx_dir: Path,
) -> Iterator[str]:
    """The pair classifier, checked on a validation split and registered as the export stage does, then served."""
    root = tmp_path_factory.mktemp("serving-classifier")
    shutil.copyfile(migrated_store, root / "mlflow.db")
    onnx_dir = shutil.copytree(pair_classifier_onnx_dir, root / "onnx")
    export = section("export", latency_runs=3)
    quality = check_and_choose(pair_classifier_model_dir, onnx_dir, cue_split(30, 21, True), 8, export, "valid")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("serving", artifact_location=(root / "a").as_uri()))
    with mlflow.start_run():
        assert register(onnx_dir, export, quality)["name"] == "electra-classifier"
    mlflow.set_tracking_uri(None)
    with served_model("models:/electra-classifier@champion", uri) as url:
        yield url


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(body).encode("utf-8"), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_pairs_in_labels_out(server: str) -> None:
    status, body = post(server, {"dataframe_split": {"columns": ["text", "pair"],
                                                     "data": [["the film", "a great plot"], ["a story", "was dull"]]}})
    assert status == 200, body
    predictions = body["predictions"]
    assert [row["label"] for row in predictions] == ["pos", "neg"]
    assert all(set(row["scores"]) == set(CLASSIFIER_LABELS) for row in predictions)
    status, body = post(server, {"dataframe_split": {"columns": ["text", "pair"], "data": [["the film", 3]]}})
    assert status == 400 and "text 0 is int" in body["message"]
    assert post(server, {"inputs": ["a lovely story"]})[0] == 200  # still serving
