"""The Prefect flow and `make run`'s entry point on failures, for real (a temporary Prefect server, real `dvc repro`):
a user error (a stage exiting with code 2) is not retried and its one line comes first in the flow run's state
message and on the terminal; bad params stop the run before DVC touches anything; other failures keep the retry.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.project import Project, copy_project

pytestmark = pytest.mark.e2e

CONLL_OK = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n"
BAD_LINE = "user/valid.txt:2"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project whose download stage reads a CoNLL file with a malformed second line."""
    project = copy_project(tmp_path_factory.mktemp("flow-errors"), {})
    user = project.root / "user"
    user.mkdir()
    (user / "corpus.txt").write_text("Some text about Europe .\n", encoding="utf-8")
    for split in ("train", "test"):
        (user / f"{split}.txt").write_text(CONLL_OK, encoding="utf-8")
    (user / "valid.txt").write_text("EU B-ORG\nrejects\tO\textra\n", encoding="utf-8")
    params = project.params()
    params["data"]["source"] = "local"
    params["data"]["local"] = {"corpus": ["user/corpus.txt"]}
    params["ner"]["local"] = {s: f"user/{s}.txt" for s in ("train", "valid", "test")}
    project.write_params(params)
    return project


@pytest.fixture(scope="module")
def prefect_server(project: Project):
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as patch:
        for name, value in project.env.items():
            patch.setenv(name, value)
        with prefect_test_harness(server_startup_timeout=180):
            yield


def task_runs(flow_run_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


BAD_PARAMS = {  # case: (params.yaml's text from the good one, what the one line must name)
    "misspelt key": (lambda text: text.replace("\nfinetune:\n", "\nfinetune:\n  epochz: 3\n", 1), "finetune.epochz"),
    "empty file": (lambda text: "", "params.yaml: the file is empty"),
}


@pytest.mark.parametrize("case", list(BAD_PARAMS))
def test_bad_params_stop_make_run_before_dvc_or_prefect(project: Project, case: str):
    """The entry point `make run` uses, as a process: bad params are the config's message alone and exit code 2,
    and DVC never ran (no dvc.lock, no outputs). Runs first: the later tests run the failing download stage.

    A bare `dvc repro` cannot say as much about an empty params.yaml: DVC reads it while parsing dvc.yaml (the
    tune plots' paths interpolate ``tune.study``), before any stage or code of ours runs, and stops there with
    its own message, which the README quotes and points to `make run` for."""
    good = (project.root / "params.yaml").read_text(encoding="utf-8")
    change, cause = BAD_PARAMS[case]
    (project.root / "params.yaml").write_text(change(good), encoding="utf-8")
    try:
        result = subprocess.run([sys.executable, "-m", "flows.pipeline", str(project.root)], cwd=project.root,
                                env=project.env, capture_output=True, text=True, timeout=300)
        bare = project.run("dvc", "repro", check=False) if case == "empty file" else None
    finally:
        (project.root / "params.yaml").write_text(good, encoding="utf-8")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and cause in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Prefect" not in result.stderr + result.stdout
    assert not (project.root / "dvc.lock").exists() and not (project.root / "data").exists()
    if bare is not None:
        assert bare.returncode != 0 and "Could not find 'tune.study'" in bare.stderr, bare.stderr


def test_a_stage_user_error_is_not_retried_and_its_line_comes_first(project, prefect_server, monkeypatch):
    from flows.pipeline import USER_ERROR, electra_pipeline

    monkeypatch.chdir(project.root)
    state = electra_pipeline(project_dir=str(project.root), stages=["download"], stage_retries=2, return_state=True)
    assert state.is_failed() and state.name == USER_ERROR
    assert state.message.splitlines()[0].startswith(BAD_LINE), state.message
    (run,) = task_runs(state.state_details.flow_run_id)
    assert run.name == "dvc repro download" and run.run_count == 1, "a user error was retried"
    assert run.state.name == USER_ERROR and run.state.message.startswith(BAD_LINE)


def test_make_run_prints_the_line_and_exits_2(project: Project, tmp_path):
    """`make run` as a process, with its own ephemeral Prefect server: the stage's line ends the output, exit 2."""
    env = {**project.env, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    result = subprocess.run([sys.executable, "-m", "flows.pipeline", str(project.root)], cwd=project.root, env=env,
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    lines = result.stderr.splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("error: "))  # printed after Prefect's own logs
    assert lines[last].startswith(f"error: {BAD_LINE}") and lines[last + 1].endswith("fix it and run again)"), output
    assert "Traceback" not in output and "Retry" not in output


def test_other_failures_are_retried(project, prefect_server, monkeypatch):
    """`dvc repro` failing for something other than a stage's user error (here DVC refuses a stage name that is not
    in dvc.yaml) keeps the retry; the flow itself only accepts known stages, so the task is called directly."""
    from prefect import flow

    from flows.pipeline import repro_stage

    @flow
    def one_stage() -> None:
        repro_stage.with_options(retries=1, retry_delay_seconds=0)("no-such-stage", "parent")

    monkeypatch.chdir(project.root)
    state = one_stage(return_state=True)
    assert state.is_failed() and "failed with exit code" in state.message
    (run,) = task_runs(state.state_details.flow_run_id)
    assert run.run_count == 2
