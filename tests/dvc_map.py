"""dvc.yaml read as the tests' map of the pipeline: a stage is run with the command line DVC would run."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import yaml

DVC_YAML = Path(__file__).resolve().parents[1] / "dvc.yaml"


def stage_command(stage: str) -> list[str]:
    """The stage's ``cmd`` from dvc.yaml, run by this interpreter."""
    command = shlex.split(yaml.safe_load(DVC_YAML.read_text(encoding="utf-8"))["stages"][stage]["cmd"])
    assert command[0] == "python", f"{stage}: cmd does not start with python"
    return [sys.executable, *command[1:]]


def stage_argv(stage: str) -> list[str]:
    """The arguments dvc.yaml passes to the stage script, for calling its ``main(argv)`` in-process."""
    return stage_command(stage)[2:]
