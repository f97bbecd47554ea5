"""Issue 30, finding 1, end to end: a project copied with ``cp -a`` and its original moved away records, registers
and serves inside the copy, and never reads or writes where the original was.

The original is a :func:`clone_project` of the session's ``demo_run`` (so its store records its own root, as a
user's project does); ``cp -a`` copies it, and the original is then renamed, so any read of its recorded paths
would fail and any write would bring the old folder back. In the copy: the champion is served by `electra predict`
before anything rewrote the store (the registry's recorded paths are looked up beside the store,
``client/store.py``), then one real `dvc repro` of the export stage logs and registers a new version (the stage
rewrites the store to the copy's root and says so, ``tracking/relocate.py``), which the guarded HTTP server serves.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from electra_model.serving.model_server import served_model
from tests.integration.project import DemoRun, Project, clone_project

pytestmark = pytest.mark.e2e

TEXT = "Anna Schmidt flew from Berlin to Madrid ."


def digests(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def test_a_copied_project_records_registers_and_serves_inside_itself(demo_run: DemoRun, tmp_path: Path) -> None:
    original = clone_project(demo_run.project, tmp_path / "original").root
    copy = tmp_path / "elsewhere" / "copy"
    copy.parent.mkdir()
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    moved = original.rename(tmp_path / "moved-away")
    untouched = digests(moved)
    project = Project(copy)
    del project.env["MLFLOW_TRACKING_URI"]  # the copy's own params.yaml: sqlite:///mlflow.db, mlartifacts/
    electra = str(Path(sys.executable).parent / "electra")

    served = project.run(electra, "predict", "--model", "models:/electra-ner@champion", TEXT, "--json")
    assert json.loads(served.stdout)[0]["text"] == TEXT

    params = project.params()
    params["export"]["latency_runs"] = 1  # makes export due; its cheapest setting
    project.write_params(params)
    repro = project.run("dvc", "repro", "-s", "export")
    assert f"the project moved from {original} to {copy}" in repro.stderr, repro.stdout + repro.stderr

    client = MlflowClient(f"sqlite:///{copy / 'mlflow.db'}")
    newest = max(client.search_model_versions("name = 'electra-ner'"), key=lambda v: int(v.version))
    assert int(newest.version) == project.metrics("export")["registered_version"]
    inside = (copy / "mlartifacts").as_uri()
    assert client.get_run(newest.run_id).info.artifact_uri.startswith(inside)
    assert client.get_model_version_download_uri("electra-ner", newest.version).startswith(inside)
    with served_model(f"models:/electra-ner/{newest.version}", f"sqlite:///{copy / 'mlflow.db'}") as url:
        request = urllib.request.Request(f"{url}/invocations", data=json.dumps({"inputs": [TEXT]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200 and isinstance(json.loads(response.read())["predictions"][0], list)

    assert not original.exists(), "something wrote into the original's folder"
    assert digests(moved) == untouched
