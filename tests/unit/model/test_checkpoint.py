"""Checkpoints: safetensors + JSON only, complete or absent, the newest N kept, and a faithful round trip."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from electra_model.pretraining import checkpoint
from electra_model.errors import ElectraError
from electra_model.training import build_optimizer, linear_schedule


class Tied(torch.nn.Module):
    """Two layers sharing one weight, like the generator head tied to the embeddings."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 4)
        self.b = torch.nn.Linear(4, 4)
        self.b.weight = self.a.weight


def trained(steps: int = 3):
    torch.manual_seed(0)
    model = Tied()
    optimizer = build_optimizer(model, 1e-2, 0.01, 1e-6, torch.device("cpu"))
    scheduler = linear_schedule(optimizer, 1, 10)
    for _ in range(steps):
        model.b(model.a(torch.randn(2, 4))).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return model, optimizer, scheduler


def test_round_trip_restores_weights_optimizer_and_schedule(tmp_path):
    model, optimizer, scheduler = trained()
    path = checkpoint.save_checkpoint(tmp_path, 3, model, optimizer, scheduler, {"history": [{"step": 3}]}, keep=2)
    fresh, fresh_optimizer, fresh_scheduler = trained(steps=0)
    record = checkpoint.load_checkpoint(path, fresh, fresh_optimizer, fresh_scheduler, torch.device("cpu"))
    assert record["step"] == 3 and record["history"] == [{"step": 3}]
    assert fresh.b.weight is fresh.a.weight  # still tied after loading
    for name, tensor in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
    for index, slots in optimizer.state_dict()["state"].items():
        for key, value in slots.items():
            assert torch.equal(fresh_optimizer.state_dict()["state"][index][key], value)
    assert fresh_scheduler.state_dict() == scheduler.state_dict()
    assert fresh_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_only_safetensors_and_json_are_written(tmp_path):
    model, optimizer, scheduler = trained()
    path = checkpoint.save_checkpoint(tmp_path, 3, model, optimizer, scheduler, {}, keep=1)
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "optimizer.safetensors", "trainer.json"]
    json.loads((path / "trainer.json").read_text())
    with safe_open(str(path / "model.safetensors"), "pt") as handle:
        assert len(handle.keys()) == 3  # the shared weight is stored once


def test_the_newest_n_are_kept_and_an_interrupted_write_is_invisible(tmp_path):
    model, optimizer, scheduler = trained()
    for step in (10, 20, 30):
        checkpoint.save_checkpoint(tmp_path, step, model, optimizer, scheduler, {}, keep=2)
    (tmp_path / ".step-00000040.tmp-abc").mkdir()  # what a kill during a write leaves behind
    assert [p.name for p in checkpoint.checkpoints(tmp_path)] == ["step-00000020", "step-00000030"]
    assert checkpoint.latest_checkpoint(tmp_path).name == "step-00000030"
    assert checkpoint.latest_checkpoint(tmp_path / "absent") is None


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path):
    model, optimizer, scheduler = trained()
    path = checkpoint.save_checkpoint(tmp_path, 3, model, optimizer, scheduler, {}, keep=1)
    (path / "model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ElectraError, match="unreadable checkpoint"):
        checkpoint.load_checkpoint(path, *trained(steps=0), torch.device("cpu"))
