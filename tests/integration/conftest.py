"""The demo pipeline, run once per test session for every module that needs a run project.

Each of those modules used to copy the project and run `dvc repro` from scratch on the same tiny params (minutes
each on the 2-core CI machine). Now the first test that asks for ``demo_run`` pays for one run (one per test run,
whichever pytest-xdist worker gets there first; the others wait for it); a module that
changes the project (new params, experiments, a deleted store) takes its own :func:`clone_project` of it, which is
a directory copy. The shared project itself is read only: nothing may run a command in it after the fixture.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from pytest_timeout import get_env_settings

from electra_model.export.build import export_onnx
from electra_model.export.choose import check_and_choose
from electra_model.serving.model_server import served_model
from electra_model.tasks.ner.conll import Sentence
from electra_model.tracking.registry import register
from tests.fixtures_models import MAX_LEN, expected_tags
from tests.integration.project import TINY, DemoRun, Project, copy_project
from tests.params import section
from tests.shared_once import build_once, shared_root

CHAMPION = "models:/electra-ner@champion"

# pytest-timeout counts fixture setup: whichever test first asks for ``demo_run`` (which one depends on what was
# selected) also waits for the whole pipeline, so these tests get at least this, more than the suite's limit.
DEMO_RUN_TIMEOUT_S = 900


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give the tests that use ``demo_run`` room for it, unless a test names its own limit."""
    configured = get_env_settings(config).timeout
    if not configured:  # time limits are off (--timeout=0)
        return
    for item in items:
        if "demo_run" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(max(configured, DEMO_RUN_TIMEOUT_S)))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`dvc repro` of every stage on :data:`TINY` params with the embedded default store (`tracking.uri:
    sqlite:///mlflow.db`, artifacts in mlartifacts/, no MLFLOW_TRACKING_URI), as a user's first run; one per test
    run, shared by the pytest-xdist workers."""

    def run_pipeline(folder: Path) -> str:
        root = folder / "project"
        root.mkdir()
        project = copy_project(root, TINY)
        del project.env["MLFLOW_TRACKING_URI"]
        return project.run("dvc", "repro").stdout

    folder, output = build_once(shared_root(tmp_path_factory), "demo-run", run_pipeline)
    project = Project(folder / "project")
    del project.env["MLFLOW_TRACKING_URI"]
    return DemoRun(project, output)


@pytest.fixture(scope="session")
def served_store(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path, pattern_model_dir: Path) -> str:
    """A registry whose champion is the pattern model, exported, checked and registered as the export stage does,
    serving its int8 variant on CPU, with params.yaml's request limits."""
    root = tmp_path_factory.mktemp("serving")
    shutil.copyfile(migrated_store, root / "mlflow.db")
    export = section("export", serve_variant="int8", latency_runs=3)
    onnx_dir = export_onnx(pattern_model_dir, root / "onnx", export.opset, MAX_LEN, export.limits)
    words = "John Smith visited Paris and New York .".split()
    evaluation = [Sentence(tuple(words), tuple(expected_tags(words)))]
    quality = check_and_choose(pattern_model_dir, onnx_dir, evaluation, 8, export, split="valid")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("serving", artifact_location=(root / "a").as_uri()))
    with mlflow.start_run():
        register(onnx_dir, export, quality)
    mlflow.set_tracking_uri(None)
    return uri


@pytest.fixture(scope="session")
def served_champion(served_store: str) -> Iterator[str]:
    """The base URL of :data:`CHAMPION` served from ``served_store`` on 127.0.0.1, shared by the serving modules."""
    with served_model(CHAMPION, served_store) as url:
        yield url
