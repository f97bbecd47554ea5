"""Pieces every training loop here shares: seeding, device choice, AdamW groups and the warmup + linear schedule."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from electra_model.errors import ElectraError


def seed_everything(seed: int) -> None:
    """Same seed, same params, same data -> same metrics (on the same hardware)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA on a machine without it is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ElectraError("device is 'cuda' but no CUDA GPU is visible; set the stage's device param to auto or cpu")
    return torch.device(name)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay weight matrices only: decaying biases and LayerNorm gains hurts and is not what BERT/ELECTRA do."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():  # shared tensors are listed once
        if not parameter.requires_grad:
            continue
        is_norm_or_bias = parameter.ndim < 2 or "LayerNorm" in name or name.endswith(".bias")
        (no_decay if is_norm_or_bias else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, learning_rate: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the decay / no-decay groups; the fused kernel on CUDA."""
    return torch.optim.AdamW(
        parameter_groups(model, weight_decay), lr=learning_rate, fused=device.type == "cuda"
    )


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """Linear warmup to the peak learning rate, then linear decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return LambdaLR(optimizer, factor)
