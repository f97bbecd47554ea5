"""A power cut in the middle of DVC's in-place write of .dvc/tmp/rwlock leaves it cut short; the pipeline flow
repairs it (flows/dvc_rwlock.py) instead of every later `dvc repro` stopping on it. Checked against DVC's own
reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dvc.fs import localfs
from dvc.rwlock import RWLockFileCorruptedError, _edit_rwlock

from flows.dvc_rwlock import repair_rwlock

HELD = {"write": {"data/task": {"pid": 4242, "cmd": "dvc repro download"}}, "read": {}}


def lock_dir(root: Path) -> Path:
    folder = root / ".dvc" / "tmp"
    folder.mkdir(parents=True)
    return folder


def dvc_reads(folder: Path) -> dict:
    with _edit_rwlock(str(folder), localfs, hardlink=False) as lock:
        return {"write": dict(lock["write"]), "read": dict(lock["read"])}


@pytest.mark.parametrize("cut_short", ["", '{"write": {"data/task": {"pid": 42'])
def test_a_cut_short_lock_file_is_replaced_by_an_empty_table(tmp_path: Path, cut_short: str) -> None:
    folder = lock_dir(tmp_path)
    (folder / "rwlock").write_text(cut_short, encoding="utf-8")
    with pytest.raises(RWLockFileCorruptedError):
        dvc_reads(folder)
    assert repair_rwlock(tmp_path) is True
    assert dvc_reads(folder) == {"write": {}, "read": {}}
    assert [path.name for path in folder.iterdir() if path.name.startswith(".")] == []  # no staging file left


def test_a_readable_lock_file_and_a_missing_one_are_left_alone(tmp_path: Path) -> None:
    folder = lock_dir(tmp_path)
    assert repair_rwlock(tmp_path) is False and not (folder / "rwlock").exists()
    (folder / "rwlock").write_text(json.dumps(HELD), encoding="utf-8")
    assert repair_rwlock(tmp_path) is False
    assert json.loads((folder / "rwlock").read_text(encoding="utf-8")) == HELD
