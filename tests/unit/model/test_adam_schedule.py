"""The warmup + linear schedule, and Adam without bias correction as google-research/electra runs it."""

from __future__ import annotations

import pytest
import torch

from electra_model.training import build_optimizer, linear_schedule, uncorrected_adam_factor


def reference_adam_steps(gradients: list[torch.Tensor], rates: list[float], betas=(0.9, 0.999)) -> torch.Tensor:
    """The reference's update, written out: m, v without bias correction, p -= lr * m / sqrt(v) (no epsilon,
    no weight decay: the parts that match exactly)."""
    p = torch.zeros_like(gradients[0])
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    for g, lr in zip(gradients, rates):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        p = p - lr * m / v.sqrt()
    return p


@pytest.mark.parametrize("bias_correction", [True, False])
def test_the_schedule_warms_up_decays_to_zero_and_cancels_bias_correction_when_asked(bias_correction: bool) -> None:
    layer = torch.nn.Linear(3, 4, bias=False, dtype=torch.float64)
    weight = layer.weight
    with torch.no_grad():
        weight.zero_()
    optimizer = build_optimizer(layer, 0.1, 0.0, 1e-12, torch.device("cpu"))
    scheduler = linear_schedule(optimizer, warmup_steps=2, total_steps=6, bias_correction=bias_correction)
    generator = torch.Generator().manual_seed(0)
    gradients = [torch.randn(4, 3, dtype=torch.float64, generator=generator) for _ in range(6)]
    rates = []
    for gradient in gradients:
        rates.append(optimizer.param_groups[0]["lr"])
        weight.grad = gradient
        optimizer.step()
        scheduler.step()
    shape = [0.05, 0.1, 0.1, 0.075, 0.05, 0.025]  # warmup 2 steps, then linear decay reaching 0 at step 6
    if bias_correction:
        assert rates == pytest.approx(shape)
    else:
        assert rates == pytest.approx([r * uncorrected_adam_factor(t, (0.9, 0.999)) for t, r in enumerate(shape, 1)])
        assert torch.allclose(weight.detach(), reference_adam_steps(gradients, shape), rtol=1e-6, atol=1e-9)


def test_without_bias_correction_the_early_steps_are_larger_and_the_late_ones_the_same() -> None:
    betas = (0.9, 0.999)
    assert uncorrected_adam_factor(1, betas) == pytest.approx(0.1 / 0.001**0.5)
    assert 3.0 < uncorrected_adam_factor(100, betas) < 3.4
    assert uncorrected_adam_factor(20_000, betas) == pytest.approx(1.0, abs=1e-4)
