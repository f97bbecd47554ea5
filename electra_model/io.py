"""Atomic output writing: a stage's output is either the complete new version or the old one, never half.

Every file or directory a stage produces is written to a temporary sibling and renamed into place, so a run
killed mid-write leaves nothing that DVC or a later stage would trust.

A SIGKILL leaves that sibling behind (no ``finally`` runs). Its name carries the host and pid of the writer,
``.NAME.tmp-HOST-PID-<random suffix>``, so the next write of the same target removes the leftovers of writers that are
dead, and only those: a concurrent writer that is still alive keeps its staging path, and a writer on another
host sharing the filesystem (whose pid means nothing here) is left alone.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# mkstemp/mkdtemp create private (0600/0700) paths; outputs get the modes an ordinary write would give.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())  # no '-': the name is split on it


def staging_prefix(target: Path, kind: str = "tmp") -> str:
    """``.NAME.KIND-HOST-PID-``: the start of this process's temporary siblings of ``target``."""
    return f".{target.name}.{kind}-{HOST}-{os.getpid()}-"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(target: Path) -> list[Path]:
    """Delete the temporary siblings of ``target`` left by dead writers on this host; return what was removed."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:tmp|old)-(?P<host>[^-]+)-(?P<pid>\d+)-")
    removed = []
    for path in target.parent.glob(f".{glob.escape(target.name)}.*-*"):
        match = pattern.match(path.name)
        if not match or match["host"] != HOST or pid_alive(int(match["pid"])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def atomic_dir(target: Path | str) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``target`` only if the block finishes without error."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix(target), dir=target.parent))
    try:
        yield staging
        staging.chmod(DIR_MODE)
        retired = target.with_name(staging_prefix(target, "old") + staging.name.rsplit("-", 1)[1])
        if target.exists():
            os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def atomic_file(target: Path | str, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of ``target`` for writing; rename it over ``target`` when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    fd, staging_name = tempfile.mkstemp(prefix=staging_prefix(target), dir=target.parent)
    staging = Path(staging_name)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        staging.chmod(FILE_MODE)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def write_json(target: Path | str, payload: Any) -> None:
    """Write ``payload`` as indented, key-sorted JSON, atomically (DVC metrics files are read by people too)."""
    with atomic_file(target) as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_json(path: Path | str) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
