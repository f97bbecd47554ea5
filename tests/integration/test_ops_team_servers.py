"""The pipeline on a team's servers, for real on loopback: an MLflow server with basic-auth, and a Prefect server
with a process work pool and worker running the deployment that ``prefect.yaml`` defines.

Credentials reach the pipeline only through MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, so the tests
check where the password must never show up: stage output, Prefect logs and parameters, params.yaml, MLflow params
and tags, the summary artifact. One project copy and one pair of servers serve the whole module; the tests run in
order and the later ones build on the deployment the earlier ones created.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from electra_model.tasks.registry import registered_name
from tests.integration.ops_servers import (
    BIN,
    LOOPBACK_ENV,
    OPS_PARAMS,
    Account,
    create_user,
    free_port,
    mlflow_server,
    new_account,
    prefect_server,
    rest,
    serving,
    wait_until,
)
from tests.dvc_map import stage_command
from tests.integration.project import Project, copy_project

pytestmark = pytest.mark.e2e

ADMIN = new_account("admin")
PIPELINE = new_account("pipeline")
READER = new_account("reader")
DEPLOYMENT = "electra-pipeline/nightly"
POOL = "electra-process"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("team")


@pytest.fixture(scope="module")
def mlflow_url(workdir: Path) -> Iterator[str]:
    backend = f"sqlite:///{workdir / 'mlflow.db'}"
    with mlflow_server(workdir, backend, str(workdir / "mlartifacts"), admin=ADMIN) as server:
        create_user(server.url, ADMIN, PIPELINE)
        create_user(server.url, ADMIN, READER)
        yield server.url


@pytest.fixture(scope="module")
def project(workdir: Path, mlflow_url: str) -> Project:
    root = workdir / "project"
    root.mkdir()
    project = copy_project(root, OPS_PARAMS)
    project.env.update(MLFLOW_TRACKING_URI=mlflow_url, **PIPELINE.env(), **LOOPBACK_ENV)
    return project


@pytest.fixture(scope="module")
def prefect_env(workdir: Path, project: Project) -> Iterator[dict[str, str]]:
    with prefect_server(workdir, project.env) as (_, env):
        # prefect.yaml's pull step is `{{ $PWD }}`: the directory `prefect deploy` runs in, as a shell sets PWD.
        env["PWD"] = str(project.root)
        yield env


@pytest.fixture(scope="module")
def worker(workdir: Path, project: Project, prefect_env: dict[str, str]) -> Iterator[Path]:
    """A process worker on the pool, with a health endpoint to wait for; yields its log."""
    port = free_port()
    env = {**prefect_env, "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1", "PREFECT_WORKER_WEBSERVER_PORT": str(port)}
    command = [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", "ops-test", "--with-healthcheck"]
    log = workdir / "prefect-worker.log"
    with serving(command, env, log, f"http://127.0.0.1:{port}", "/health", cwd=project.root):
        yield log


def prefect(project: Project, env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args], cwd=project.root, env=env, capture_output=True, text=True, timeout=900
    )
    if check and result.returncode != 0:
        raise AssertionError(f"prefect {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def prefect_client(env: dict[str, str]):
    """A synchronous client of the test's server (the settings are read when the client is made)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
        return get_client(sync_client=True)


def run_deployment(project: Project, env: dict[str, str], parameters: dict) -> tuple[subprocess.CompletedProcess, UUID]:
    """`prefect deployment run --watch` with ``parameters``; the CLI's result and the flow run's id."""
    result = prefect(
        project, env, "deployment", "run", DEPLOYMENT, "--params", json.dumps(parameters), "--watch",
        "--watch-timeout", "600", check=False,
    )
    found = re.search(r"UUID: ([0-9a-f-]{36})", result.stdout)
    assert found, f"no flow run was created:\n{result.stdout}\n{result.stderr}"
    return result, UUID(found.group(1))


def mlflow_client(account: Account, url: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    for name, value in account.env().items():
        monkeypatch.setenv(name, value)
    return MlflowClient(url)


def test_anonymous_and_read_only_writes_are_refused(mlflow_url: str) -> None:
    assert rest(mlflow_url, "experiments/create", {"name": "anonymous"})[0] == 401
    assert rest(mlflow_url, "experiments/create", {"name": "guess"}, Account("pipeline", "wrong-password"))[0] == 401
    status, body = rest(mlflow_url, "experiments/create", {"name": "pipeline-owned"}, PIPELINE)
    assert status == 200, body
    experiment_id = json.loads(body)["experiment_id"]
    assert rest(mlflow_url, "runs/create", {"experiment_id": experiment_id}, READER)[0] == 403
    assert rest(mlflow_url, "runs/create", {"experiment_id": experiment_id}, PIPELINE)[0] == 200


def test_a_stage_without_credentials_stops_with_one_clear_line(project: Project) -> None:
    env = {k: v for k, v in project.env.items() if not k.startswith("MLFLOW_TRACKING_") or k.endswith("URI")}
    result = subprocess.run(
        stage_command("download"), cwd=project.root, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr
    assert "refused stage 'download' (HTTP 401)" in result.stderr and "MLFLOW_TRACKING_USERNAME" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project.root / "data").exists(), "a refused stage wrote outputs"


def test_a_password_put_in_the_uri_is_not_printed(project: Project) -> None:
    """Credentials belong in the environment: a URI that carries them is refused before any connection, and the
    refusal does not leak the password into a log either."""
    uri = f"http://pipeline:{PIPELINE.password}@127.0.0.1:{free_port()}"  # nothing listens there
    env = {**project.env, "MLFLOW_TRACKING_URI": uri}
    result = subprocess.run(
        stage_command("download"), cwd=project.root, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2 and "http://***@127.0.0.1" in result.stderr and "carries credentials" in result.stderr
    assert PIPELINE.password not in result.stdout + result.stderr


def test_deploy_registers_the_cron_deployment_with_its_parameters(project: Project, prefect_env: dict[str, str]) -> None:
    prefect(project, prefect_env, "work-pool", "create", POOL, "--type", "process")
    prefect(project, prefect_env, "deploy", "--all")
    declared = yaml.safe_load((project.root / "prefect.yaml").read_text(encoding="utf-8"))["deployments"][0]
    with prefect_client(prefect_env) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        (schedule,) = deployment.schedules
        # the server's scheduler service turns the cron into flow runs within seconds of a deployment's change
        wait_until(lambda: client.get_scheduled_flow_runs_for_deployments([deployment.id]), 120, "nightly runs scheduled")
        scheduled = client.get_scheduled_flow_runs_for_deployments([deployment.id])
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == ("0 2 * * *", "UTC", True)
    assert deployment.parameters == declared["parameters"]
    assert deployment.work_pool_name == POOL
    assert deployment.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(project.root)}}
    ]
    assert scheduled and all((run.expected_start_time.hour, run.expected_start_time.minute) == (2, 0) for run in scheduled)
    # The nightly schedule is real; pause it so that no full pipeline run starts here if the clock nears 02:00 UTC.
    prefect(project, prefect_env, "deployment", "schedule", "pause", DEPLOYMENT, str(schedule.id))


def test_a_deployment_run_completes_and_logs_through_the_authenticated_server(
    project: Project, prefect_env: dict[str, str], worker: Path, mlflow_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

    from flows.pipeline import SUMMARY_KEY

    result, flow_run_id = run_deployment(project, prefect_env, {"stages": ["download", "tokenizer"]})
    with prefect_client(prefect_env) as client:
        flow_run = client.read_flow_run(flow_run_id)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
    assert flow_run.state.is_completed(), f"{flow_run.state}\n{result.stdout}\n{worker.read_text(encoding='utf-8')}"
    summary = [artifact for artifact in artifacts if artifact.key == SUMMARY_KEY]
    assert summary and "# ELECTRA pipeline run" in summary[0].data
    stage_log = "\n".join(entry.message for entry in logs)
    assert "Running stage 'tokenizer'" in stage_log

    client = mlflow_client(PIPELINE, mlflow_url, monkeypatch)
    experiment = client.get_experiment_by_name("electra-pipeline")
    (parent,) = client.search_runs([experiment.experiment_id], f"tags.`prefect.flow_run_id` = '{flow_run_id}'")
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert {run.data.tags["dvc.stage"] for run in children} == {"download", "tokenizer"}
    assert all(run.info.status == "FINISHED" for run in [parent, *children])
    tokenizer_run = next(run for run in children if run.data.tags["dvc.stage"] == "tokenizer")
    assert [a.path for a in client.list_artifacts(tokenizer_run.info.run_id)] == ["tokenizer"]

    runs = client.search_runs([experiment.experiment_id], max_results=500)
    recorded = [value for run in runs for value in (*run.data.params.values(), *run.data.tags.values())]
    places = {
        "the CLI's output": result.stdout + result.stderr,
        "the flow run's Prefect logs": stage_log,
        "the worker's log": worker.read_text(encoding="utf-8"),
        "the flow run's parameters": json.dumps(flow_run.parameters),
        "the summary artifact": summary[0].data,
        "params.yaml": (project.root / "params.yaml").read_text(encoding="utf-8"),
        "MLflow params and tags": "\n".join(recorded),
    }
    for place, text in places.items():
        assert PIPELINE.password not in text, f"the password leaked into {place}"


def test_the_export_registration_goes_through_the_authenticated_server(
    project: Project, mlflow_url: str, pattern_onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export stage's own registration code (stage run + registry gate) on a small ONNX model: the real stage
    needs pretraining and fine-tuning first, minutes of CPU that the end-to-end test already spends."""
    from electra_model.config import load_params
    from electra_model.tracking.registry import register
    from electra_model.tracking.runs import stage_run
    from tests.fixtures_models import quality

    params = load_params(project.root / "params.yaml")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
    client = mlflow_client(PIPELINE, mlflow_url, monkeypatch)
    model_uri = f"models:/{registered_name(params.export, 'ner')}@{params.export.alias}"
    try:
        with stage_run("export", params.tracking, {"export": params.export.model_dump()}):
            registration = register(pattern_onnx_dir, params.export, quality(0.9))
        pulled = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(tmp_path)))
    finally:
        mlflow.set_tracking_uri(None)
    champion = client.get_model_version_by_alias(registered_name(params.export, "ner"), params.export.alias)
    assert registration["alias_moved"] and champion.version == registration["version"]
    assert list(pulled.rglob("model.onnx")), "the registered model came back without its ONNX file"


def test_a_stage_with_a_user_error_fails_the_deployment_run_with_its_line_and_no_retry(
    project: Project, prefect_env: dict[str, str], worker: Path
) -> None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    good = (project.root / "params.yaml").read_text(encoding="utf-8")
    (project.root / "user").mkdir(exist_ok=True)
    (project.root / "user/corpus.txt").write_text("Some text about Europe .\n", encoding="utf-8")
    (project.root / "user/ner.txt").write_text("EU B-ORG\nrejects\tO\textra\n", encoding="utf-8")
    params = project.params()
    params["data"]["source"] = "local"
    params["data"]["local"] = {"corpus": ["user/corpus.txt"]}
    params["ner"]["local"] = {s: "user/ner.txt" for s in ("train", "valid", "test")}
    project.write_params(params)
    try:
        result, flow_run_id = run_deployment(project, prefect_env, {"stages": ["download"], "stage_retries": 1})
    finally:
        (project.root / "params.yaml").write_text(good, encoding="utf-8")
    assert result.returncode != 0
    with prefect_client(prefect_env) as client:
        flow_run = client.read_flow_run(flow_run_id)
        (task_run,) = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    assert flow_run.state.is_failed()
    assert flow_run.state.message.startswith("user/ner.txt:2")  # the stage's own line first, not swallowed
    assert task_run.state.is_failed() and task_run.run_count == 1  # bad data fails the same way again: no retry
