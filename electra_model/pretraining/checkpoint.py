"""Pretraining checkpoints: tensors in safetensors, everything else in JSON, written atomically, the last N kept.

One checkpoint is one directory, renamed into place only once complete, so a run killed at any moment leaves
either the previous checkpoint or the new one, never half of one::

    <run_dir>/step-00001000/
        model.safetensors       the weights (tensors shared between generator and discriminator stored once)
        optimizer.safetensors   AdamW moments and step counts, keyed "<parameter index>.<name>"
        trainer.json            step, optimizer hyperparameters, scheduler state, data position, logged history

Nothing is pickled: loading reads tensors and plain JSON values only, so a checkpoint cannot run code.
A torchrun job writes the same files: rank 0 gathers every rank's state first (:mod:`electra_model.pretraining.sharding`),
so a DDP, FSDP or single-process run's checkpoints differ in nothing but their values.
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
from safetensors.torch import load_file, save_file
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


def tied_aliases(model: nn.Module) -> dict[str, str]:
    """Each second name of a shared parameter (the generator's embeddings and output layer) -> its first name, the
    one ``model.named_parameters()`` lists; only first names are stored, so a shared tensor is written once."""
    first: dict[int, str] = {}
    aliases = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in first:
            aliases[name] = first[id(parameter)]
        else:
            first[id(parameter)] = name
    return aliases


def untied(tensors: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict without the second names of shared parameters."""
    aliases = tied_aliases(model)
    return {name: tensor for name, tensor in tensors.items() if name not in aliases}


def retied(tensors: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A stored state dict with every shared parameter's second names pointing at its one stored tensor."""
    aliases = {alias: tensors[name] for alias, name in tied_aliases(model).items() if name in tensors}
    return {**tensors, **aliases}


def _optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """AdamW's state (torch's format, parameters by index) split into tensors (for safetensors) and plain values
    (for JSON)."""
    tensors = {f"{index}.{name}": value for index, slots in state["state"].items() for name, value in slots.items()}
    return tensors, {"param_groups": state["param_groups"]}


def _optimizer_state(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def write_checkpoint(
    run_dir: Path,
    step: int,
    model_tensors: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    record: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint ``step`` atomically from plain state dicts (the model's without tied aliases, the
    optimizer's in torch's index-keyed format), then delete all but the newest ``keep``."""
    target = step_dir(run_dir, step)
    tensors, plain = _optimizer_tensors(optimizer_state)
    with atomic_dir(target) as staging:
        save_file({n: t.contiguous() for n, t in model_tensors.items()}, str(staging / "model.safetensors"), {"format": "pt"})
        save_file({name: t.contiguous() for name, t in tensors.items()}, str(staging / "optimizer.safetensors"))
        trainer = {"step": step, "optimizer": plain, **record}
        (staging / "trainer.json").write_text(json.dumps(trainer), encoding="utf-8")
    for old in checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def read_checkpoint(path: Path, device: torch.device) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """The model tensors, the optimizer state (torch's format) and the trainer record of checkpoint ``path``."""
    try:
        trainer = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
        model_tensors = load_file(str(path / "model.safetensors"), device=str(device))
        optimizer_state = _optimizer_state(load_file(str(path / "optimizer.safetensors"), device=str(device)), trainer["optimizer"])
    except (OSError, ValueError, KeyError, SafetensorError) as error:
        raise ElectraError(f"{path}: unreadable checkpoint ({error}); delete the directory to start over") from None
    return model_tensors, optimizer_state, trainer


def fitted(path: Path, model: nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint ``path``'s stored tensors as ``model``'s full state dict (tied aliases restored), or a plain error
    when they do not fit it."""
    expected = set(model.state_dict())
    given = retied(tensors, model)
    missing, unexpected = expected - set(given), set(given) - expected
    if missing or unexpected:
        raise ElectraError(
            f"{path}: checkpoint does not fit this model (missing {sorted(missing)[:3]}, unexpected "
            f"{sorted(unexpected)[:3]}); delete {path.parent} to start over"
        )
    return given


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    record: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint ``step`` of a model held whole by this process (one process, or a DDP rank)."""
    record = {"scheduler": scheduler.state_dict(), **record}
    return write_checkpoint(run_dir, step, untied(model.state_dict(), model), optimizer.state_dict(), record, keep)


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
) -> dict[str, Any]:
    """Restore model, optimizer and scheduler in place from ``path``; return the trainer record."""
    model_tensors, optimizer_state, trainer = read_checkpoint(path, device)
    model.load_state_dict(fitted(path, model, model_tensors))
    optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(trainer["scheduler"])
    return trainer
