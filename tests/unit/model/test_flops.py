"""The MFU numerator: the FLOPs formula in flops.py counts exactly the matmuls the model has."""

from __future__ import annotations

import torch

from electra_model.config import load_params
from electra_model.pretraining.flops import peak_flops, pretraining_step_flops
from electra_model.pretraining.modeling import ElectraPretrainingModel, electra_configs


def linear_weights(module: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))


def test_step_flops_are_6x_every_matmul_weight_per_token_plus_attention():
    arch = load_params("params.yaml").pretrain.presets["small"]
    vocab, seq_len, tokens, masked = 30522, 128, 128 * 128, 128 * 19
    model = ElectraPretrainingModel(*electra_configs(arch, vocab, seq_len, 0, 0.1, "hf", "electra"), disc_weight=50.0)
    generator_head = linear_weights(model.generator.generator_predictions) + linear_weights(model.generator.generator_lm_head)
    every_token = linear_weights(model) - generator_head  # the tied LM head counts once, on masked tokens only
    attention = 4 * seq_len * arch.num_layers * (arch.hidden_size + arch.generator_hidden_size)
    expected = 3 * (tokens * (2 * every_token + attention) + masked * 2 * generator_head)
    assert pretraining_step_flops(arch, vocab, seq_len, tokens, masked) == expected


def test_peak_is_the_param_when_set_and_measured_on_cpu_otherwise():
    assert peak_flops(torch.device("cpu"), override_tflops=2.0) == 2e12
    assert 1e8 < peak_flops(torch.device("cpu")) < 1e13
