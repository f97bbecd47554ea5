"""Build an expensive session fixture once per test run, however many pytest-xdist workers the run has.

A session-scoped fixture runs once per worker process, so with `-n auto` (pyproject's addopts) the demo pipeline run
or a trained model would be paid for on every core. :func:`build_once` is pytest-xdist's documented pattern for
this: the first worker to get the file lock builds into a folder beside every worker's base temp directory, marks
it done, and the others wait on the lock and read what it built. Without xdist the folder is in the session's own
base temp directory (its parent, pytest-of-<user>, is shared with other pytest sessions on the machine).

What is built must be read only for its users: a test that changes it works on its own copy.
"""

from __future__ import annotations

import json
import os
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

DONE = "build-once.json"


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every worker of this test run sees (and no other run does)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(root: Path, name: str, build: Callable[[Path], str]) -> tuple[Path, str]:
    """``build(folder)`` run by one worker of the run in ``root/<name>`` (``root``: :func:`shared_root`); every
    worker gets the folder and the text ``build`` returned (a path inside the folder, a command's output ...).

    A build that raised is not tried again by the next worker (it would fail the same way after the same wait):
    they fail at once, naming the fixture and quoting the first worker's error.
    """
    folder = root / name
    failure = root / f"{name}.error"
    with FileLock(root / f"{name}.lock"):
        if failure.exists():
            raise RuntimeError(f"{name}: the build failed in another pytest-xdist worker:\n{failure.read_text()}")
        if not (folder / DONE).exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            try:
                result = build(folder)
            except BaseException:
                failure.write_text(traceback.format_exc(), encoding="utf-8")
                raise
            partial = folder / f"{DONE}.partial"
            partial.write_text(json.dumps({"result": result}), encoding="utf-8")
            partial.replace(folder / DONE)
    return folder, json.loads((folder / DONE).read_text(encoding="utf-8"))["result"]
