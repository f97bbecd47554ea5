"""Where pretraining keeps its discriminator snapshots (``pretrain.snapshot_every``) for the downstream probe.

A snapshot is a ``save_pretrained`` folder named after its step, ``step-0000300``, so that a folder listing sorts
by step and the probe stage reads the step from the name. Plain paths only: the pretrain stage writes them, the
probe stage (:mod:`electra_model.tasks.probe`) reads them, and neither needs the other's code for it.
"""

from __future__ import annotations

import re
from pathlib import Path

SNAPSHOT_NAME = re.compile(r"^step-(\d{7,})$")


def snapshot_path(folder: Path, step: int) -> Path:
    """The snapshot folder of ``step`` in ``folder``."""
    return folder / f"step-{step:07d}"


def list_snapshots(folder: Path) -> list[tuple[int, Path]]:
    """The snapshots in ``folder`` as (step, path), by step; other entries (staging folders) are not snapshots."""
    if not folder.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in folder.iterdir()
             if path.is_dir() and (match := SNAPSHOT_NAME.match(path.name))]
    return sorted(found)
