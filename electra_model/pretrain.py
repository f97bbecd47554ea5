"""The ELECTRA pretraining loop: packed blocks in, a transformers-compatible discriminator out.

Run through the pipeline (``dvc repro pretrain``); the loop itself is :func:`pretrain`. Per logging step it reports
the generator's MLM loss and accuracy, the RTD loss, accuracy, precision and recall on replaced tokens, the
learning rate and tokens/s; between logging steps it never synchronises host and device.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from electra_model.config import PretrainParams
from electra_model.modeling import ElectraOutput, ElectraPretrainingModel, electra_configs, mask_tokens
from electra_model.progress import log_line, progress
from electra_model.tokenizer import special_token_ids
from electra_model.training import build_optimizer, linear_schedule, resolve_device, seed_everything

MetricsCallback = Callable[[int, dict[str, float]], None]


@dataclass
class RunningStats:
    """Sums accumulated on the device between logging steps, read back once per logging step."""

    loss: torch.Tensor
    mlm_loss: torch.Tensor
    rtd_loss: torch.Tensor
    mlm_correct: torch.Tensor
    mlm_count: torch.Tensor
    rtd_true_positive: torch.Tensor
    rtd_predicted_positive: torch.Tensor
    rtd_actual_positive: torch.Tensor
    rtd_correct: torch.Tensor
    rtd_count: torch.Tensor
    steps: int = 0

    @classmethod
    def zeros(cls, device: torch.device) -> RunningStats:
        return cls(*(torch.zeros((), device=device) for _ in range(10)))

    def add(self, output: ElectraOutput) -> None:
        predicted = (output.rtd_logits > 0) & output.real_tokens
        actual = output.rtd_labels.bool() & output.real_tokens
        self.loss += output.loss.detach()
        self.mlm_loss += output.mlm_loss.detach()
        self.rtd_loss += output.rtd_loss.detach()
        self.mlm_correct += output.mlm_correct
        self.mlm_count += output.mlm_count
        self.rtd_true_positive += (predicted & actual).sum()
        self.rtd_predicted_positive += predicted.sum()
        self.rtd_actual_positive += actual.sum()
        self.rtd_correct += ((predicted == actual) & output.real_tokens).sum()
        self.rtd_count += output.real_tokens.sum()
        self.steps += 1

    def summary(self) -> dict[str, float]:
        """Means over the window; the one host-device synchronisation of a logging step."""
        n = max(1, self.steps)
        values = {name: float(getattr(self, name).item()) for name in self.__dataclass_fields__ if name != "steps"}
        return {
            "loss": values["loss"] / n,
            "mlm_loss": values["mlm_loss"] / n,
            "rtd_loss": values["rtd_loss"] / n,
            "mlm_accuracy": values["mlm_correct"] / max(1.0, values["mlm_count"]),
            "rtd_accuracy": values["rtd_correct"] / max(1.0, values["rtd_count"]),
            "rtd_precision": values["rtd_true_positive"] / max(1.0, values["rtd_predicted_positive"]),
            "rtd_recall": values["rtd_true_positive"] / max(1.0, values["rtd_actual_positive"]),
            "replaced_fraction": values["rtd_actual_positive"] / max(1.0, values["rtd_count"]),
        }


def batch_order(n_blocks: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """Block indices for every step: seeded permutations, one per epoch, so the same seed gives the same batches."""
    needed = steps * batch_size
    rng = np.random.default_rng(seed)
    epochs = math.ceil(needed / n_blocks)
    order = np.concatenate([rng.permutation(n_blocks) for _ in range(epochs)])
    return order[:needed].reshape(steps, batch_size)


def build_model(params: PretrainParams, tokenizer: Tokenizer) -> ElectraPretrainingModel:
    """The generator/discriminator pair for the chosen preset and this vocabulary."""
    special = special_token_ids(tokenizer)
    discriminator, generator = electra_configs(
        params.architecture, tokenizer.get_vocab_size(), params.max_seq_len, special["[PAD]"]
    )
    never_sample = [special[token] for token in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")]
    return ElectraPretrainingModel(discriminator, generator, params.disc_weight, never_sample)


def pretrain(
    params: PretrainParams,
    seed: int,
    tokenizer: Tokenizer,
    blocks: np.ndarray,
    on_log: MetricsCallback,
) -> tuple[ElectraPretrainingModel, dict[str, float]]:
    """Train generator and discriminator jointly for ``params.max_steps`` optimizer steps."""
    seed_everything(seed)
    device = resolve_device(params.device)
    special = special_token_ids(tokenizer)
    model = build_model(params, tokenizer).to(device)
    optimizer = build_optimizer(model, params.learning_rate, params.weight_decay, device)
    scheduler = linear_schedule(optimizer, params.warmup_steps, params.max_steps)
    order = batch_order(len(blocks), params.batch_size * params.grad_accum_steps, params.max_steps, seed)
    sampler = torch.Generator(device=device).manual_seed(seed)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    special_ids = torch.tensor([special["[CLS]"], special["[SEP]"], special["[PAD]"]], device=device)

    model.train()
    stats = RunningStats.zeros(device)
    window_start, window_tokens, final = time.perf_counter(), 0, {}
    for step in progress(range(1, params.max_steps + 1), total=params.max_steps, description="pretraining"):
        micro_batches = np.array_split(order[step - 1], params.grad_accum_steps)
        for indices in micro_batches:
            input_ids = torch.from_numpy(blocks[np.sort(indices)].astype(np.int64)).to(device, non_blocking=True)
            attention_mask = (input_ids != special["[PAD]"]).long()
            maskable = ~torch.isin(input_ids, special_ids)
            masked = mask_tokens(
                input_ids, maskable, special["[MASK]"], params.mask_prob, params.mask_token_prob, sampler
            )
            with autocast:
                output = model(input_ids, attention_mask, masked, sampler)
            (output.loss / params.grad_accum_steps).backward()
            stats.add(output)
            window_tokens += input_ids.numel()
        torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        if step % params.log_every == 0 or step == params.max_steps:
            elapsed = time.perf_counter() - window_start
            final = {**stats.summary(), "learning_rate": scheduler.get_last_lr()[0], "tokens_per_s": window_tokens / elapsed}
            on_log(step, final)
            log_line(
                f"step {step}/{params.max_steps} loss {final['loss']:.3f} mlm {final['mlm_loss']:.3f} "
                f"rtd {final['rtd_loss']:.4f} rtd_acc {final['rtd_accuracy']:.3f} tok/s {final['tokens_per_s']:.0f}"
            )
            stats, window_start, window_tokens = RunningStats.zeros(device), time.perf_counter(), 0
    return model, final


def save_pretrained(model: ElectraPretrainingModel, tokenizer_dir: Path, out_dir: Path) -> None:
    """Discriminator (with the tokenizer, ready for fine-tuning) in ``out_dir``, generator in ``out_dir/generator``."""
    model.discriminator.save_pretrained(out_dir, safe_serialization=True)
    model.generator.save_pretrained(out_dir / "generator", safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (out_dir / name).write_bytes((tokenizer_dir / name).read_bytes())
