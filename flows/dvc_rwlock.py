"""Repairing DVC's read/write lock file after a power cut, so that a killed run restarts cleanly.

DVC writes ``.dvc/tmp/rwlock`` in place, not atomically (``dvc/rwlock.py``: ``open("w")``, then ``json.dump``;
treeverse/dvc#7615, #8118). A process killed in the middle of that write leaves the file empty or cut short, and
every later `dvc repro` then stops with "Unable to read RWLock-file '.dvc/tmp/rwlock'. JSON structure is corrupted"
until someone deletes it. The file only lists the outputs that running DVC commands hold, and DVC itself drops the
entries of processes that are gone; so a file that does not parse, read under DVC's own guard lock (no writer is
half-way through it then), lists nothing a live command can rely on, and an empty lock table replaces it. The
pipeline flow (`make run`) calls :func:`repair_rwlock` before its first `dvc` command; by hand: delete the file
while no `dvc` command runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from dvc.lock import make_lock
from dvc.rwlock import RWLOCK_FILE, RWLOCK_LOCK


def repair_rwlock(project: Path | str = ".") -> bool:
    """Replace an unreadable ``.dvc/tmp/rwlock`` of ``project`` by an empty lock table; whether it did."""
    lock_dir = Path(project) / ".dvc" / "tmp"
    path = lock_dir / RWLOCK_FILE
    if not path.is_file():
        return False
    with make_lock(str(lock_dir / RWLOCK_LOCK), tmp_dir=str(lock_dir)):
        try:
            json.loads(path.read_text(encoding="utf-8"))
            return False
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
        with tempfile.NamedTemporaryFile("w", dir=lock_dir, prefix=f".{RWLOCK_FILE}.", delete=False) as fresh:
            json.dump({}, fresh)
        os.replace(fresh.name, path)
    return True
