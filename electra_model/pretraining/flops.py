"""Model FLOPs of an ELECTRA pretraining step, and the peak they are measured against (MFU = achieved / peak).

The formula counts matmuls only (as PaLM's appendix B and nanoGPT's ``estimate_mfu`` do): a training step costs
3x its forward pass (the backward pass is 2x), and a forward pass costs, per token and per transformer,

    2 x (weights of every matmul the token passes through)      2 FLOPs per multiply-add
  + 4 x layers x seq_len x hidden                               attention scores (QK^T) and their use (AV)

with matmul weights per layer 4 x hidden^2 (Q, K, V, output) + 2 x hidden x intermediate (feed-forward), plus
the embedding projection (embedding_size x hidden) when the two differ. The discriminator adds its head
(hidden^2 + hidden) on every token; the generator adds its head (hidden x embedding + embedding x vocab) on the
masked tokens only, the one place the count depends on our masked-only optimisation. An MLM-only run
(``objective: mlm``) is the discriminator's body with the generator's kind of head, at the discriminator's width.
Embedding lookups,
LayerNorms, softmaxes and activations are left out, so MFU is a slight underestimate of the work done.
"""

from __future__ import annotations

import time

import torch

from electra_model.config import ArchitectureParams

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, matched against torch.cuda.get_device_name in this order.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("GH200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
    ("RTX 4090", 165.0),
    ("V100", 125.0),
)


def encoder_forward_flops(hidden: int, intermediate: int, layers: int, embedding: int, seq_len: int) -> int:
    """Forward FLOPs per token of one transformer body (embedding projection, attention, feed-forward)."""
    weights = layers * (4 * hidden * hidden + 2 * hidden * intermediate)
    if embedding != hidden:
        weights += embedding * hidden
    return 2 * weights + 4 * layers * seq_len * hidden


def pretraining_step_flops(
    arch: ArchitectureParams, vocab_size: int, seq_len: int, tokens: int, masked: int, objective: str = "electra"
) -> int:
    """Training FLOPs (forward + backward) of one optimizer step over ``tokens`` tokens, ``masked`` of them masked."""
    if objective == "mlm":
        body = encoder_forward_flops(arch.hidden_size, arch.intermediate_size, arch.num_layers, arch.embedding_size, seq_len)
        head = 2 * (arch.hidden_size * arch.embedding_size + arch.embedding_size * vocab_size)
        return 3 * (tokens * body + masked * head)
    generator_hidden = arch.generator_hidden_size
    generator_intermediate = max(1, round(arch.intermediate_size * arch.generator_fraction))
    discriminator = encoder_forward_flops(
        arch.hidden_size, arch.intermediate_size, arch.num_layers, arch.embedding_size, seq_len
    ) + 2 * (arch.hidden_size * arch.hidden_size + arch.hidden_size)
    generator_body = encoder_forward_flops(
        generator_hidden, generator_intermediate, arch.num_layers, arch.embedding_size, seq_len
    )
    generator_head = 2 * (generator_hidden * arch.embedding_size + arch.embedding_size * vocab_size)
    return 3 * (tokens * (discriminator + generator_body) + masked * generator_head)


def measured_matmul_flops(device: torch.device, size: int = 1024, seconds: float = 0.2) -> float:
    """FLOP/s of a large fp32 matmul on ``device``: the practical peak of a CPU, which has no datasheet number."""
    a = torch.ones(size, size, device=device)
    b = torch.ones(size, size, device=device)
    (a @ b).sum().item()
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        c = a @ b
        runs += 1
    c.sum().item()
    return 2 * size**3 * runs / (time.perf_counter() - started)


def peak_flops(device: torch.device, override_tflops: float | None = None) -> float | None:
    """The FLOP/s that MFU divides by: the param if set, a known GPU's bf16 peak, or a CPU's measured matmul rate.

    None for a GPU not in the table (set ``pretrain.peak_tflops`` to report MFU there).
    """
    if override_tflops is not None:
        return override_tflops * 1e12
    if device.type != "cuda":
        return measured_matmul_flops(device)
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in GPU_PEAK_TFLOPS if key in name), None)
