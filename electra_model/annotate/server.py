"""Run the project's Label Studio: its own virtual environment (``.venv-label-studio``, built by ``make
label-studio``: its Django stack stays out of the project's lock), a database under ``annotate.data_dir``, and an
account with an API token made without a prompt, on the loopback address ``annotate.url`` names::

    make label-studio            # = .venv/bin/python -m electra_model.annotate.server, after building the venv

The token and the password are made on the first start and kept in ``data_dir`` (``api-token``, ``password``,
readable by the owner only), where ``electra annotate`` finds the token; the tests start the same server on a free
port with :func:`start` and :func:`wait_until_up`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from electra_model.annotate.studio import START_COMMAND, TOKEN_FILE
from electra_model.errors import ElectraError, exit_on_user_error

VENV = Path(".venv-label-studio")
USERNAME = "electra@localhost"
PASSWORD_FILE = "password"
DATABASE = "label_studio.sqlite3"  # in data_dir; `make label-studio-env` migrates an empty one beside the venv


def secret(data_dir: Path, name: str) -> str:
    """The secret kept in ``data_dir/name``, made on first use (owner-only file)."""
    path = data_dir / name
    if not path.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(20))
    return path.read_text(encoding="utf-8").strip()


def server_environment(data_dir: Path) -> dict[str, str]:
    """Label Studio's settings: its data under ``data_dir``, the account and legacy API token made at start, no
    calls home (version check, error reporting)."""
    return {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir.resolve()),
        "LABEL_STUDIO_USERNAME": USERNAME,
        "LABEL_STUDIO_PASSWORD": secret(data_dir, PASSWORD_FILE),
        "LABEL_STUDIO_USER_TOKEN": secret(data_dir, TOKEN_FILE),
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }


def host_and_port(url: str) -> tuple[str, int]:
    """The loopback host and port of ``url``; another host is refused (the server would serve the network)."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        raise ElectraError(
            f"annotate.url {url!r}: the project's Label Studio listens on the loopback address only; give "
            "http://127.0.0.1:PORT (put a proxy you trust in front of it to share it)"
        )
    return parts.hostname, parts.port


def start(venv: Path, data_dir: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    """Start Label Studio from ``venv`` serving ``url``, its output in ``log``; refused if the port is taken
    (Label Studio would quietly move to another port). A new ``data_dir`` starts from the empty database
    ``make label-studio-env`` migrated, if there is one."""
    binary = venv / "bin" / "label-studio"
    if not binary.is_file():
        raise ElectraError(f"{binary} not found; build Label Studio's environment with `{START_COMMAND}`")
    host, port = host_and_port(url)
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            raise ElectraError(f"{url}: the port is taken (Label Studio already running?); stop it or change annotate.url")
    database, migrated = data_dir / DATABASE, venv / "migrated" / DATABASE
    if not database.exists() and migrated.is_file():
        shutil.copyfile(migrated, database)
    environment = server_environment(data_dir)
    command = [str(binary), "start", "--no-browser", "--internal-host", host, "--port", str(port),
               "--enable-legacy-api-token"]
    with open(log, "ab") as output:
        return subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    """Return once ``url/health`` answers; an error quoting the log's end if the server exits or times out (its
    first start creates the database, a minute or more on a busy machine)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise ElectraError(f"Label Studio exited with status {process.returncode} before answering; {log}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise ElectraError(f"Label Studio at {url} did not answer within {timeout_s:.0f} s; see {log}")


@exit_on_user_error
def main() -> int:
    parser = argparse.ArgumentParser(description="Serve the project's Label Studio (annotate.url, annotate.data_dir).")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--venv", type=Path, default=VENV)
    args = parser.parse_args()
    from electra_model.config import load_annotate_params

    annotate = load_annotate_params(args.params)
    data_dir = Path(annotate.data_dir)
    log = data_dir / "server.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    process = start(args.venv, data_dir, annotate.url, log)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop from a process manager stops the server too
    try:
        wait_until_up(annotate.url, process, 600, log)
        print(f"Label Studio at {annotate.url} (log: {log})\n  sign in as {USERNAME}, password in "
              f"{data_dir / PASSWORD_FILE}; `electra annotate` reads the API token from {data_dir / TOKEN_FILE}\n"
              "  Ctrl-C stops it", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
