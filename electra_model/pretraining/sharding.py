"""FSDP2 for the larger presets, and the run's state gathered to rank 0 and sent back from it.

``pretrain.parallel: fsdp`` shards every transformer layer of generator and discriminator, and the rest of the
model as one root group, with ``torch.distributed.fsdp.fully_shard``: each rank then holds 1/world_size of the
parameters, gradients and AdamW moments instead of all of them (DDP's replicas). The generator and discriminator
share their embedding module and the generator's output layer is the token embedding: those tensors are not in any
layer, so they land in the root group once (FSDP2 keeps one sharded parameter per tensor and points every module
that shares it at it), and stay tied; ``tests/unit/model/test_sharding.py`` checks it.

Checkpoints of a multi-rank run (DDP or FSDP) are gathered: ``torch.distributed.checkpoint.state_dict`` collects full
tensors on rank 0, which alone writes them in the same safetensors + JSON format as a single process
(:mod:`electra_model.pretraining.checkpoint`); on resume rank 0 alone reads them and broadcasts them to the others.
So the checkpoint directory need only be on rank 0's node: nodes without a shared filesystem resume all the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

from electra_model.pretraining.checkpoint import fitted, untied

GATHERED = StateDictOptions(full_state_dict=True, cpu_offload=True)
# Not strict: only the first name of each tied parameter is sent (with its second names as well, torch's loader would
# copy plain tensors into the shared DTensor), and the load fills the tied ones through it; rank 0 has checked the
# stored names against the model (checkpoint.fitted) before sending.
FROM_RANK0 = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)


def shard_model(model: nn.Module) -> nn.Module:
    """Apply FSDP2 in place: one group per transformer layer, the root group for the rest (shared embeddings and
    heads included, which keeps them tied). Call before building the optimizer, which must see the sharded
    parameters. ``mlm_logits`` (the held-out evaluation's entry) is registered so it gathers parameters as
    ``forward`` does."""
    for body in model.bodies:
        for layer in body.encoder.layer:
            fully_shard(layer)
    fully_shard(model)
    register_fsdp_forward_method(model, "mlm_logits")
    return model


def parameter_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The names of the optimizer's parameters in torch's index order (groups in order, parameters in order)."""
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    return [names[id(parameter)] for group in optimizer.param_groups for parameter in group["params"]]


def gather_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, is_main: bool
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The whole model (without tied aliases) and optimizer state on rank 0's CPU, the optimizer's in torch's
    index-keyed format as a single process writes it; None on the other ranks. Every rank must call it."""
    model_tensors = get_model_state_dict(model, options=GATHERED)
    by_name = get_optimizer_state_dict(model, optimizer, options=GATHERED)
    if not is_main:
        return None
    index = {name: position for position, name in enumerate(parameter_names(model, optimizer))}
    state = {index[name]: slots for name, slots in by_name["state"].items()}
    groups = [{**group, "params": [index[name] for name in group["params"]]} for group in by_name["param_groups"]]
    return untied(model_tensors, model), {"state": state, "param_groups": groups}


def restore_state(
    path: Path | None,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    stored: tuple[dict[str, torch.Tensor], dict[str, Any]] | None,
) -> None:
    """Load what rank 0 read from checkpoint ``path`` into every rank (``path`` and ``stored`` are None on the
    others): rank 0's full tensors are broadcast and each rank keeps its shard. Every rank must call it."""
    if stored is None:
        set_model_state_dict(model, {}, options=FROM_RANK0)
        set_optimizer_state_dict(model, optimizer, {}, options=FROM_RANK0)
        return
    model_tensors, optimizer_state = stored
    names = parameter_names(model, optimizer)
    fitted(path, model, model_tensors)  # the names must fit; the tied aliases are not sent (see FROM_RANK0)
    set_model_state_dict(model, model_tensors, options=FROM_RANK0)
    by_name = {
        "state": {names[index]: slots for index, slots in optimizer_state["state"].items()},
        "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in optimizer_state["param_groups"]],
    }
    set_optimizer_state_dict(model, optimizer, by_name, options=FROM_RANK0)
