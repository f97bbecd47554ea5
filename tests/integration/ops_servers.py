"""Real servers for the operations tests (MLflow, PostgreSQL, an S3-compatible store, Prefect), on loopback ports.

Each server runs in its own process group and is stopped as a group when its context ends, pass or fail:
``mlflow server`` and ``prefect server start`` are launchers whose workers (uvicorn) would outlive a plain
``terminate()`` of the launcher. Nothing here listens on anything but 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from electra_model.serving.model_server import free_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
LOOPBACK_ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
# The operations tests run only the two cheapest stages (download, tokenizer), on demo data this small.
OPS_PARAMS = {
    "data": {"demo": {"corpus_documents": 60, "train_sentences": 120, "valid_sentences": 30, "test_sentences": 30}},
    "tokenizer": {"vocab_size": 800},
}


def answers(url: str) -> bool:
    """Whether anything answers HTTP at ``url`` (an error status counts: the server is up)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.2)


@dataclass
class Server:
    """A started server process (the leader of its own process group) and where it answers."""

    process: subprocess.Popen
    url: str
    log: Path

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Take the server away at once, workers included, as a crash or a lost machine would."""
        self.signal_group(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, grace_s: float = 15) -> None:
        self.signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        self.signal_group(signal.SIGKILL)  # stragglers in the group (workers) go too
        if self.process.poll() is None:
            self.process.wait(timeout=30)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@contextmanager
def serving(
    command: list[str], env: Mapping[str, str], log: Path, url: str, health: str, timeout_s: float = 240, **popen
) -> Iterator[Server]:
    """Start ``command``, wait until ``url + health`` answers, yield, and stop the whole process group."""
    handle = open(log, "w", encoding="utf-8")
    process = subprocess.Popen(
        command, env={**env, **LOOPBACK_ENV}, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **popen
    )
    server = Server(process, url, log)
    try:
        deadline = time.monotonic() + timeout_s
        while not answers(url + health):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{command[0]} did not start (exit {process.poll()}):\n{server.log_tail()}")
            time.sleep(0.3)
        yield server
    finally:
        server.stop()
        handle.close()


# ------------------------------------------------------------------------------------------------------ MLflow
@dataclass(frozen=True)
class Account:
    username: str
    password: str

    def env(self) -> dict[str, str]:
        """How the pipeline gets credentials: MLflow reads these two variables itself."""
        return {"MLFLOW_TRACKING_USERNAME": self.username, "MLFLOW_TRACKING_PASSWORD": self.password}

    def header(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


def new_account(username: str) -> Account:
    return Account(username, secrets.token_urlsafe(18))


def rest(url: str, endpoint: str, payload: dict, account: Account | None = None) -> tuple[int, str]:
    """POST to MLflow's REST API as ``account`` (anonymous when None); the status and body, errors included."""
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **(account.header() if account else {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def write_auth_config(path: Path, auth_database_uri: str) -> Path:
    """basic-auth settings: authenticated users read by default, and verified passwords are cached, because each
    uncached check is a deliberately slow PBKDF2 hash (seconds per request on a busy 2-core machine)."""
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {auth_database_uri}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 300\n",
        encoding="utf-8",
    )
    return path


@contextmanager
def mlflow_server(
    workdir: Path, backend_uri: str, artifacts_destination: str, admin: Account | None = None, port: int | None = None
) -> Iterator[Server]:
    """``mlflow server`` with one worker and no job runner (neither is needed, both cost CPU); with basic-auth (its
    user store in ``workdir``) and ``admin`` as its administrator when given. ``port`` brings a server back where it
    was."""
    port = port or free_port()
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", backend_uri, "--artifacts-destination", artifacts_destination,
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if admin is not None:
        config = write_auth_config(workdir / "basic_auth.ini", f"sqlite:///{workdir / 'auth.db'}")
        command[2:2] = ["--app-name", "basic-auth"]
        env.update(
            MLFLOW_AUTH_CONFIG_PATH=str(config),
            MLFLOW_AUTH_ADMIN_PASSWORD=admin.password,
            MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
        )
    log = workdir / f"mlflow-server-{port}.log"
    with serving(command, env, log, f"http://127.0.0.1:{port}", "/health", cwd=workdir) as server:
        yield server


@contextmanager
def compose_mlflow_server(workdir: Path, settings: Mapping[str, str]) -> Iterator[Server]:
    """The compose stack's MLflow service outside Docker: docker/mlflow/start.sh with ``settings`` as its
    environment (the same variables docker-compose.yml sets), on a free port with one worker. MLFLOW_HOST is left
    unset, so the script's default is what binds: it must listen on 127.0.0.1 only (issue 30, finding 6)."""
    port = free_port()
    env = {
        **{name: value for name, value in os.environ.items() if name != "MLFLOW_HOST"}, **settings,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_PORT": str(port), "MLFLOW_WORKERS": "1",
        "MLFLOW_AUTH_CONFIG_DIR": str(workdir), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    command = ["sh", str(REPO / "docker/mlflow/start.sh")]
    with serving(command, env, workdir / "mlflow-server.log", f"http://127.0.0.1:{port}", "/health", cwd=workdir) as server:
        assert listening_addresses(port) == {"127.0.0.1"}, listening_addresses(port)
        yield server


def listening_addresses(port: int) -> set[str]:
    """The local addresses that listen on TCP ``port``, from the kernel's tables (/proc/net/tcp and tcp6):
    "0.0.0.0" or "::" would mean every interface."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)  # 32-bit words in host order (little-endian on x86 and arm64)
                found.add(socket.inet_ntop(family, b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))))
    return found


def create_user(url: str, admin: Account, account: Account) -> None:
    status, body = rest(url, "users/create", {"username": account.username, "password": account.password}, admin)
    assert status == 200, body


# -------------------------------------------------------------------------------------------------- PostgreSQL
def postgres_bindir() -> Path | None:
    """Where initdb and postgres are: on PATH, or Debian's versioned directory (not on PATH by default)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


@contextmanager
def postgres(databases: list[str]) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a loopback port with ``databases`` created; yields ``host:port``.

    PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` account Debian's package creates,
    in a directory that account owns. Loopback connections are trusted: the cluster lives for one test.
    """
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql); the sqlite variant still ran")
    user = None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a 'postgres' account to run PostgreSQL as")
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="electra-pg-"))
    try:
        if user:
            os.chown(root, account.pw_uid, account.pw_gid)
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            user=user, cwd=root, check=True, capture_output=True, timeout=120,
        )
        port = free_port()
        command = [str(bindir / "postgres"), "-D", str(root / "data"), "-h", "127.0.0.1", "-p", str(port),
                   "-k", str(root), "-c", "fsync=off"]
        log = root / "postgres.log"
        with open(log, "w", encoding="utf-8") as handle:
            process = subprocess.Popen(command, user=user, cwd=root, stdout=handle, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        server = Server(process, f"127.0.0.1:{port}", log)
        try:
            ready = [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
            wait_until(lambda: subprocess.run(ready).returncode == 0, 60, "PostgreSQL accepting connections")
            for name in databases:
                subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", name],
                               check=True, capture_output=True, timeout=60)
            yield server.url
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ S3 (moto)
@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str
    key_id: str = "electra-test-key"
    secret: str = "electra-test-secret"

    def env(self) -> dict[str, str]:
        """What an S3 client (boto3, s3fs under DVC, the MLflow server) reads to reach this store."""
        return {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": self.endpoint}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key_id,
                            aws_secret_access_key=self.secret, region_name="us-east-1")

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextmanager
def s3_server(workdir: Path, bucket: str) -> Iterator[S3]:
    """moto's S3-compatible server (``moto[s3]`` and ``flask-cors``, in the dev extra) with ``bucket`` created."""
    pytest.importorskip("moto.server", reason="moto is not installed: pip install -e '.[dev]'")
    pytest.importorskip("flask_cors", reason="moto's server needs flask-cors: pip install -e '.[dev]'")
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with serving(command, os.environ, workdir / "moto.log", url, "/") as server:
        store = S3(server.url, bucket)
        store.client().create_bucket(Bucket=bucket)
        yield store


# ----------------------------------------------------------------------------------------------------- Prefect
def prefect_env(home: Path, port: int) -> dict[str, str]:
    """A Prefect profile of its own (settings and sqlite database under ``home``) pointed at a loopback server."""
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }


@contextmanager
def prefect_server(workdir: Path, env: Mapping[str, str]) -> Iterator[tuple[Server, dict[str, str]]]:
    """``prefect server start`` on a loopback port; yields the server and the environment that reaches it."""
    port = free_port()
    server_env = {**env, **prefect_env(workdir / "prefect-home", port)}
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, server_env, workdir / "prefect-server.log", f"http://127.0.0.1:{port}", "/api/health") as server:
        yield server, server_env
