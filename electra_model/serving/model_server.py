"""Serve a registered model over MLflow's scoring protocol on a loopback port, for as long as a ``with`` block lasts.

The end-to-end serving test and ``benchmarks/load_test.py`` both need a real server that is up before the first
request and gone afterwards, whatever happens in between::

    with served_model("models:/electra-ner@champion", "sqlite:///mlflow.db") as url:
        urllib.request.urlopen(f"{url}/ping")

It is MLflow's own scoring app behind :mod:`electra_model.serving.guarded_app` (the model's request limits, one-line
errors), run by uvicorn in this environment, in its own process group so that stopping it also stops the workers
it forks. The model is first downloaded into a scratch folder: ``mlflow models serve`` would serve a local store's
artifact folder in place and write its ``registered_model_meta`` file into the store. It listens on 127.0.0.1
unless ``host`` says otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from electra_model.client.store import download_registered_model
from electra_model.errors import ElectraError
from electra_model.serving.guarded_app import MODEL_ENV

POLL_S = 0.5
APP = "electra_model.serving.guarded_app:create_app"


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it forks workers), SIGKILL if it has not exited in 20 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_until_up(process: subprocess.Popen, url: str, log: Path, timeout_s: float) -> None:
    """Poll ``/ping`` until it answers; a server that exits first (no such model, port taken) is a user error
    carrying the end of its log."""
    deadline = time.monotonic() + timeout_s
    while not _answers(url):
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-8:])
        if process.poll() is not None:
            raise ElectraError(f"the model server exited with status {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise ElectraError(f"the model server did not answer {url}/ping within {timeout_s:.0f} s:\n{tail}")
        time.sleep(POLL_S)


def local_copy(model_uri: str, tracking_uri: str, scratch: Path) -> Path:
    """The MLflow model as a folder of its own: a ``models:/`` URI downloaded from the registry (with the store's
    checks and messages), a local model folder copied, so the server never writes into the store."""
    if model_uri.startswith("models:/"):
        (scratch / "model").mkdir()
        return download_registered_model(model_uri, tracking_uri, scratch / "model")
    source = Path(model_uri.removeprefix("file://"))
    if not (source / "MLmodel").is_file():
        raise ElectraError(f"{source}: not an MLflow model folder (no MLmodel file); pass models:/NAME@ALIAS")
    return Path(shutil.copytree(source, scratch / "model"))


@contextmanager
def served_model(
    model_uri: str, tracking_uri: str, workers: int = 1, timeout_s: float = 180, port: int | None = None,
    host: str = "127.0.0.1",
) -> Iterator[str]:
    """Serve ``model_uri`` from the registry at ``tracking_uri`` and yield the base URL; stop the server on exit.
    The server's output goes to a log file whose tail is shown if it fails to start."""
    chosen_port = port or free_port()
    url = f"http://{host}:{chosen_port}"
    command = [
        sys.executable, "-m", "uvicorn", "--factory", APP, "--host", host, "--port", str(chosen_port),
        "--workers", str(workers),
    ]
    with tempfile.TemporaryDirectory(prefix="electra-serve-") as scratch:
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri,
               MODEL_ENV: str(local_copy(model_uri, tracking_uri, Path(scratch)))}
        log = Path(scratch) / "server.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait_until_up(process, url, log, timeout_s)
            yield url
        finally:
            _stop(process)
