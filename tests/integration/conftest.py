"""The demo pipeline, run once per test session for every module that needs a run project.

Each of those modules used to copy the project and run `dvc repro` from scratch on the same tiny params (minutes
each on the 2-core CI machine). Now the first test that asks for ``demo_run`` pays for one run (one per test run,
whichever pytest-xdist worker gets there first; the others wait for it); a module that
changes the project (new params, experiments, a deleted store) takes its own :func:`clone_project` of it, which is
a directory copy. The shared project itself is read only: nothing may run a command in it after the fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_timeout import get_env_settings

from tests.integration.project import TINY, DemoRun, Project, copy_project
from tests.shared_once import build_once, shared_root

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
