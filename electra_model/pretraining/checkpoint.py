"""Pretraining checkpoints: tensors in safetensors, everything else in JSON, written atomically, the last N kept.

One checkpoint is one directory, renamed into place only once complete, so a run killed at any moment leaves
either the previous checkpoint or the new one, never half of one::

    <run_dir>/step-00001000/
        model.safetensors       the weights (tensors shared between generator and discriminator stored once)
        optimizer.safetensors   AdamW moments and step counts, keyed "<parameter index>.<name>"
        trainer.json            step, optimizer hyperparameters, scheduler state, data position, logged history

Nothing is pickled: loading reads tensors and plain JSON values only, so a checkpoint cannot run code.
``run_dir`` lives outside DVC's outputs (DVC deletes those before re-running a stage), under a name that hashes
everything the trajectory depends on, so re-running the same stage after a crash finds it and resumes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from electra_model.errors import ElectraError
from electra_model.io import atomic_dir

STEP_PREFIX = "step-"


def content_digest(paths: Iterable[Path], *texts: str) -> str:
    """A short sha256 of files' contents and some strings: the identity of a corpus, a tokenizer, a config."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    for text in texts:
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / f"{STEP_PREFIX}{step:08d}"


def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (an interrupted write is a hidden temp directory, never listed)."""
    if not run_dir.is_dir():
        return []
    return sorted(path for path in run_dir.iterdir() if path.name.startswith(STEP_PREFIX) and path.is_dir())


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """AdamW's state split into tensors (for safetensors) and plain values (for JSON)."""
    state = optimizer.state_dict()
    tensors = {f"{index}.{name}": value for index, slots in state["state"].items() for name, value in slots.items()}
    return tensors, {"param_groups": state["param_groups"]}


def _optimizer_state(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    record: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint ``step`` atomically, then delete all but the newest ``keep``."""
    target = step_dir(run_dir, step)
    tensors, plain = _optimizer_tensors(optimizer)
    with atomic_dir(target) as staging:
        save_model(model, str(staging / "model.safetensors"))
        save_file({name: t.contiguous() for name, t in tensors.items()}, str(staging / "optimizer.safetensors"))
        trainer = {"step": step, "optimizer": plain, "scheduler": scheduler.state_dict(), **record}
        (staging / "trainer.json").write_text(json.dumps(trainer), encoding="utf-8")
    for old in checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
) -> dict[str, Any]:
    """Restore model, optimizer and scheduler in place from ``path``; return the trainer record."""
    try:
        trainer = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
        missing, unexpected = load_model(model, str(path / "model.safetensors"), strict=False, device=str(device))
        tensors = load_file(str(path / "optimizer.safetensors"), device=str(device))
    except (OSError, ValueError, KeyError, SafetensorError) as error:
        raise ElectraError(f"{path}: unreadable checkpoint ({error}); delete the directory to start over") from None
    if missing or unexpected:
        raise ElectraError(
            f"{path}: checkpoint does not fit this model (missing {sorted(missing)[:3]}, unexpected "
            f"{sorted(unexpected)[:3]}); delete {path.parent} to start over"
        )
    optimizer.load_state_dict(_optimizer_state(tensors, trainer["optimizer"]))
    scheduler.load_state_dict(trainer["scheduler"])
    return trainer
