"""Faults a team meets, each provoked for real: two `dvc repro` started at once, a stage process killed with
SIGKILL while it writes its outputs, and the MLflow server going away in the middle of a stage.

The moment of each fault is made exact by a small ``sitecustomize`` on the stages' PYTHONPATH: when the named stage
opens a file for writing inside its output's staging directory (electra_model/io.py writes every output into a
temporary sibling and renames it into place), the stage sends itself a signal: SIGKILL for a crash mid-write,
SIGSTOP to hold it mid-run while the test starts a second `dvc repro` or takes the server away. No product code is
patched; without the variables below the injector does nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.integration.ops_servers import LOOPBACK_ENV, OPS_PARAMS, free_port, mlflow_server, wait_until
from tests.integration.project import Project, copy_project

pytestmark = pytest.mark.e2e

INJECTOR = '''"""Test-only fault injector, written by tests/integration/test_ops_faults.py (see its docstring)."""
import os
import signal
import sys

_STAGE = os.environ.get("OPS_FAULT_STAGE")
if _STAGE and sys.argv and sys.argv[0].replace(os.sep, "/").endswith(f"stages/{_STAGE}.py"):
    _STAGING = os.environ["OPS_FAULT_STAGING"]
    _SIGNAL = signal.Signals[os.environ["OPS_FAULT_SIGNAL"]]
    _PIDFILE = os.environ["OPS_FAULT_PIDFILE"]
    _fired = []

    def _hook(event, args):
        if event != "open" or _fired or not isinstance(args[0], (str, os.PathLike)):
            return
        if isinstance(args[1], str) and set(args[1]) & set("wax") and _STAGING in os.fspath(args[0]):
            _fired.append(True)
            with open(_PIDFILE, "w") as handle:
                handle.write(str(os.getpid()))
            os.kill(os.getpid(), _SIGNAL)

    sys.addaudithook(_hook)
'''
LOCK_MESSAGES = ("is busy, it is being blocked by", "Unable to acquire lock")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def project(workdir: Path) -> Project:
    root = workdir / "project"
    root.mkdir()
    project = copy_project(root, OPS_PARAMS)
    project.env.update(LOOPBACK_ENV)
    injector = workdir / "injector"
    injector.mkdir()
    (injector / "sitecustomize.py").write_text(INJECTOR, encoding="utf-8")
    project.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(injector), project.env.get("PYTHONPATH")]))
    return project


def faulty_env(project: Project, stage: str, staging: str, signum: signal.Signals) -> dict[str, str]:
    """The project's environment with the injector armed for ``stage`` writing into ``staging``."""
    return {
        **project.env,
        "OPS_FAULT_STAGE": stage,
        "OPS_FAULT_STAGING": staging,
        "OPS_FAULT_SIGNAL": signum.name,
        "OPS_FAULT_PIDFILE": str(project.root.parent / f"fault-{stage}.pid"),
    }


@contextmanager
def held_mid_write(project: Project, stage: str, staging: str) -> Iterator[subprocess.Popen]:
    """Start `dvc repro <stage>` and yield it once the stage has stopped itself mid-write; let the stage go on when
    the block ends (or kill the run if the block failed). The caller waits for the yielded process."""
    env = faulty_env(project, stage, staging, signal.SIGSTOP)
    pidfile = Path(env["OPS_FAULT_PIDFILE"])
    pidfile.unlink(missing_ok=True)
    repro = subprocess.Popen(["dvc", "repro", stage], cwd=project.root, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: repro.poll() is not None or stopped(pidfile), 600, f"stage {stage} reaching its write")
        assert repro.poll() is None, f"dvc repro ended before the stage wrote:\n{repro.communicate()[0]}"
        stage_pid = int(pidfile.read_text())
        yield repro
    except BaseException:
        repro.kill()
        repro.wait()
        raise
    os.kill(stage_pid, signal.SIGCONT)


def stopped(pidfile: Path) -> bool:
    """Whether the process named in ``pidfile`` exists and is stopped (state T in /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{int(pidfile.read_text())}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def locked_outs(project: Project) -> dict[str, str]:
    """Every output DVC has recorded in dvc.lock, with the hash it trusts."""
    lock = yaml.safe_load((project.root / "dvc.lock").read_text(encoding="utf-8"))
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def in_cache(project: Project, md5: str) -> bool:
    return (project.root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).exists()


def up_to_date(project: Project, stage: str) -> bool:
    return "up to date" in project.run("dvc", "status", stage).stdout


def test_two_repros_at_once_one_is_refused_with_dvcs_lock_message(project: Project) -> None:
    with held_mid_write(project, "download", ".corpus.tmp-") as first:
        second = project.run("dvc", "repro", "download", check=False, timeout=300)
    first_output = first.communicate(timeout=600)[0]
    assert first.returncode == 0, first_output
    assert second.returncode != 0, second.stdout
    assert any(message in second.stdout + second.stderr for message in LOCK_MESSAGES), second.stderr
    assert up_to_date(project, "download")
    assert "Running stage" not in project.run("dvc", "repro", "download").stdout


def test_a_stage_killed_mid_write_leaves_nothing_that_is_trusted(project: Project) -> None:
    good = locked_outs(project)
    env = faulty_env(project, "download", ".corpus.tmp-", signal.SIGKILL)
    killed = subprocess.run(["dvc", "repro", "--force", "download"], cwd=project.root, env=env, capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode != 0, killed.stdout
    leftovers = list((project.root / "data").glob(".corpus.tmp-*"))
    assert leftovers, "the stage was not killed inside its write"
    assert any((project.root / "data").glob(".task.tmp-*/train.txt")), "the task data was not half written"
    assert locked_outs(project) == good, "DVC recorded outputs of a killed stage"
    # The outputs are persist: true, so DVC did not delete them first, and the killed run replaced none of them:
    # the previous ones are still in place, matching dvc.lock.
    assert up_to_date(project, "download")

    rerun = project.run("dvc", "repro", "--force", "download")
    assert locked_outs(project) == good, rerun.stdout  # the same params and code give the same outputs
    assert up_to_date(project, "download")
    # That rerun came from DVC's run cache, which writes through no code of ours: the dead writer's staging paths
    # go at the next real write of their targets (electra_model/io.py).
    project.run("dvc", "repro", "--force", "download")
    assert list((project.root / "data").glob(".*.tmp-*")) == [], "a dead writer's staging path outlived a write"
    assert locked_outs(project) == good


def test_the_mlflow_server_going_away_mid_stage(project: Project, workdir: Path) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    store = (f"sqlite:///{workdir / 'server.db'}", str(workdir / "server-artifacts"))
    project.env.update(MLFLOW_TRACKING_URI=uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES="2", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1")
    with mlflow_server(workdir, *store, port=port) as server:
        project.run("dvc", "repro", "tokenizer")
        good = locked_outs(project)["models/tokenizer"]
        params = project.params()
        params["tokenizer"]["vocab_size"] = 700
        project.write_params(params)
        with held_mid_write(project, "tokenizer", ".tokenizer.tmp-") as repro:
            server.kill()
            resumed = time.monotonic()
        output = repro.communicate(timeout=600)[0]
    waited = time.monotonic() - resumed
    assert repro.returncode != 0, output
    assert f"MLflow tracking server {uri} stopped answering during stage 'tokenizer'" in output
    assert "Traceback" not in output
    assert waited < 120, f"the stage took {waited:.0f} s to give up"
    assert locked_outs(project)["models/tokenizer"] == good and in_cache(project, good)
    assert not up_to_date(project, "tokenizer")

    with mlflow_server(workdir, *store, port=port):
        project.run("dvc", "repro", "tokenizer")
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("electra-pipeline")
        runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'tokenizer'", order_by=["start_time"])
    assert locked_outs(project)["models/tokenizer"] != good and up_to_date(project, "tokenizer")
    first, interrupted, rerun = runs
    assert (first.info.status, first.data.params["tokenizer.vocab_size"]) == ("FINISHED", "800")
    assert interrupted.info.status != "FINISHED"
    assert (rerun.info.status, rerun.data.params["tokenizer.vocab_size"]) == ("FINISHED", "700")
