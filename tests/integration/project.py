"""A throwaway git + DVC copy of the repository, with its own params and MLflow store, for integration tests; and
copies of a finished one (:func:`clone_project`), so that the modules which need a run pipeline share one run
(the session's ``demo_run`` fixture, tests/integration/conftest.py) instead of each running `dvc repro` again."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from electra_model.dvc_map import stages

REPO = Path(__file__).resolve().parents[2]
GIT_IDENTITY = ("-c", "user.email=ci@example.com", "-c", "user.name=ci")
STAGES = tuple(stages(REPO / "dvc.yaml"))  # in dvc.yaml's order: the map, not a list kept beside it
# The smallest demo params on which the whole pipeline still learns (test entity F1 above the all-O baseline's 0):
# what the session's shared run (the ``demo_run`` fixture) runs, and what modules that run their own start from.
TINY = {
    "data": {"demo": {"corpus_documents": 120, "train_sentences": 600, "valid_sentences": 120, "test_sentences": 120}},
    "tokenizer": {"vocab_size": 1500},
    "pretrain": {"max_steps": 40, "batch_size": 16, "max_seq_len": 64, "warmup_steps": 4, "log_every": 10},
    "finetune": {"epochs": 3, "max_seq_len": 64, "learning_rate": 5.0e-4},
    "export": {"min_f1": 0.05, "latency_runs": 4},
}


def ran_stages(output: str) -> set[str]:
    """The stages a `dvc repro` / `dvc exp run` output says it ran."""
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


def deep_update(target: dict, changes: dict) -> None:
    """Apply nested ``changes`` to a params mapping in place, the way `dvc exp run -S` edits single keys."""
    for key, value in changes.items():
        if isinstance(value, dict):
            deep_update(target.setdefault(key, {}), value)
        else:
            target[key] = value


class Project:
    """A git + DVC copy of the repository with its own params and MLflow store; commands run in its root."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "DVC_NO_ANALYTICS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("ELECTRA_PARENT_RUN_ID", None)
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env['PATH']}"

    def run(self, *command: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        """Run ``command`` in the project. It runs in a session of its own, all of which is killed if the call ends
        early (its ``timeout``, or pytest-timeout's exception in the test): killing `dvc repro` alone would leave
        its stage process training on, in the CPU the rest of the suite needs."""
        with subprocess.Popen(command, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                raise
        result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text(encoding="utf-8"))

    def write_params(self, params: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")

    def metrics(self, stage: str) -> dict:
        return json.loads((self.root / "metrics" / f"{stage}.json").read_text(encoding="utf-8"))


def copy_project(root: Path, params_changes: dict) -> Project:
    """Copy the tracked (and not ignored) project files except tests, apply ``params_changes``, commit."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in files:
        if (REPO / name).is_file() and not name.startswith(("tests/", "benchmarks/")):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    project = Project(root)
    params = project.params()
    deep_update(params, params_changes)
    project.write_params(params)
    project.run("git", "init", "-q")
    project.run("git", "add", "-A")
    project.run("git", *GIT_IDENTITY, "commit", "-qm", "test copy")
    return project


@dataclass(frozen=True)
class DemoRun:
    """A finished project (read only: tests change a :func:`clone_project` of it) and what its `dvc repro` printed."""

    project: Project
    output: str


def clone_project(source: Project, root: Path, fresh_store: bool = False) -> Project:
    """A copy of ``source``, a finished project, at ``root`` (which must not exist), for a test that changes it.

    Everything is copied (git, DVC's cache, the outputs, dvc.lock, the MLflow store) with file times kept, so DVC
    finds the copy up to date; DVC's per-checkout scratch folder .dvc/tmp (locks, queue workers) stays behind.
    MLflow's sqlite store records absolute artifact locations (experiments, runs, model versions, logged models),
    and each logged model's MLmodel file its own, which would still point into ``source``: they are rewritten to
    ``root``. With ``fresh_store`` the copy starts
    with no MLflow store and no artifacts instead, for tests that count what a registry holds from nothing. The
    copy's environment names its own store in MLFLOW_TRACKING_URI, as :func:`copy_project`'s does.
    """

    def dvc_scratch(folder: str, names: list[str]) -> list[str]:
        return ["tmp"] if Path(folder) == source.root / ".dvc" else []

    shutil.copytree(source.root, root, symlinks=True, ignore=dvc_scratch)
    if fresh_store:
        (root / "mlflow.db").unlink(missing_ok=True)
        shutil.rmtree(root / "mlartifacts", ignore_errors=True)
    elif (root / "mlflow.db").exists():
        rebase_store(root / "mlflow.db", str(source.root), str(root))
        for model_file in (root / "mlartifacts").rglob("MLmodel"):
            model_file.write_text(model_file.read_text(encoding="utf-8").replace(str(source.root), str(root)),
                                  encoding="utf-8")
    return Project(root)


def rebase_store(database: Path, old_root: str, new_root: str) -> None:
    """Replace ``old_root`` by ``new_root`` in every text value of an MLflow sqlite store (it records artifact
    locations as absolute paths and file URIs, both of which contain the project's path as it is)."""
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]:
                connection.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                    f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                    (old_root, new_root, old_root),
                )
    connection.close()
