"""A throwaway git + DVC copy of the repository, with its own params and MLflow store, for integration tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GIT_IDENTITY = ("-c", "user.email=ci@example.com", "-c", "user.name=ci")


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
        result = subprocess.run(command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)
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
