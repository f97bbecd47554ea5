"""Atomic outputs: a writer killed with SIGKILL mid-write leaves a staging sibling, and the next write of the same
target removes it -- but never the staging path of a writer that is still alive.

The writers are real child processes, held inside their write until the test kills them or lets them go on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from electra_model.io import HOST, atomic_dir, atomic_file, remove_stale_staging

# the tests wait on their child writers' output with no deadline of their own: a stuck writer fails in two minutes
pytestmark = pytest.mark.timeout(120)

WRITER = """
import sys, time
from electra_model.io import atomic_dir, atomic_file

kind, target = sys.argv[1], sys.argv[2]
if kind == "dir":
    with atomic_dir(target) as staging:
        (staging / "part.txt").write_text("half")
        print("inside", flush=True)
        sys.stdin.readline()  # held mid-write until the test says go (or kills us)
else:
    with atomic_file(target) as handle:
        handle.write("half")
        handle.flush()
        print("inside", flush=True)
        sys.stdin.readline()
        handle.write(" and the rest")
"""


@contextmanager
def writer_inside(kind: str, target: Path) -> Iterator[subprocess.Popen]:
    """A child process that has begun writing ``target`` and waits there for a line on its stdin."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(target)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline() == "inside\n", "the writer did not reach its write"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)  # reaped: a zombie still counts as a live pid


def staged(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.tmp-*"))


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_a_writer_killed_mid_write_leaves_staging_that_the_next_write_removes(tmp_path: Path, kind: str) -> None:
    target = tmp_path / ("model" if kind == "dir" else "metrics.json")
    with writer_inside(kind, target) as child:
        leftovers = staged(target)
        assert len(leftovers) == 1 and f"-{child.pid}-" in leftovers[0].name
        os.kill(child.pid, signal.SIGKILL)
    assert staged(target) == leftovers and not target.exists(), "SIGKILL runs no cleanup: the staging path stays"

    if kind == "dir":
        with atomic_dir(target) as staging:
            (staging / "whole.txt").write_text("complete")
        assert [p.name for p in target.iterdir()] == ["whole.txt"]
    else:
        with atomic_file(target) as handle:
            handle.write("complete")
        assert target.read_text() == "complete"
    assert staged(target) == [], "the dead writer's staging path was not removed"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_a_live_concurrent_writer_keeps_its_staging_path(tmp_path: Path, kind: str) -> None:
    target = tmp_path / ("model" if kind == "dir" else "metrics.json")
    with writer_inside(kind, target) as child:
        theirs = staged(target)
        if kind == "dir":
            with atomic_dir(target) as staging:
                (staging / "mine.txt").write_text("mine")
        else:
            with atomic_file(target) as handle:
                handle.write("mine")
        assert staged(target) == theirs, "a live writer's staging path was deleted"
        child.communicate("go\n", timeout=30)
        assert child.returncode == 0
    assert staged(target) == []
    if kind == "dir":
        assert (target / "part.txt").read_text() == "half"  # the last writer to finish wins, whole
    else:
        assert target.read_text() == "half and the rest"


def test_only_this_targets_leftovers_of_dead_writers_on_this_host_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "ner"
    dead = 2**22 + 12345  # above the largest pid_max Linux allows (2**22): no such process
    stale = [tmp_path / f".ner.tmp-{HOST}-{dead}-abcdefgh", tmp_path / f".ner.old-{HOST}-{dead}-abcdefgh"]
    foreign = [
        tmp_path / f".ner.json.tmp-{HOST}-{dead}-abcdefgh",  # another target
        tmp_path / f".ner.tmp-otherhost-{dead}-abcdefgh",  # another machine on a shared filesystem
        tmp_path / ".ner.tmp-abcdefgh",  # no writer recorded in the name
    ]
    for path in stale + foreign:
        path.mkdir()
    assert sorted(remove_stale_staging(target)) == sorted(stale)
    assert all(path.exists() for path in foreign)
