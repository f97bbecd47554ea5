"""The ELECTRA pretraining loop: packed blocks in, a transformers-compatible discriminator out.

Run through the pipeline (``dvc repro pretrain``), or on several processes with
``torchrun --nproc_per_node N stages/pretrain.py``; the loop itself is :func:`pretrain`.

How a step is split. ``batch_size`` blocks form the global batch of one optimizer step. It is cut into
S = world_size x grad_accum_steps shards (shard s holds rows s, s + S, s + 2S, ...); rank r trains on shards
r, r + W, ... one micro-batch at a time and DDP averages the gradients. Every random draw of a shard (masking,
Gumbel noise, dropout) comes from generators seeded by (seed, step, shard), and the blocks of a step are a pure
function of (seed, step). So a run is reproducible step by step, a resumed run needs no generator state to carry
(the checkpoint's step is the whole data and RNG position), and 2 ranks x 1 micro-batch compute what 1 rank x 2
micro-batches compute.

Training for a wall-clock budget (``pretrain.budget_minutes``): :func:`budget_params` times a few steps of a
throw-away copy of the run, fits ``max_steps`` to the budget and scales ``warmup_steps`` with it
(:func:`fit_to_budget`), so the linear decay reaches 0 as the budget ends, as the budget-tied schedules of the
"cramming" literature do. The fitted plan is written to the run directory (``budget.json``) before the first step:
a resumed run reads it instead of measuring again, so it keeps the schedule its checkpoints were trained on.

Per logging step it reports the generator's MLM loss and accuracy (also apart at [MASK] slots and at slots that
kept their token), the RTD loss, accuracy, precision, recall on replaced tokens and AUC, the learning rate,
tokens/s and MFU (see :mod:`electra_model.pretraining.flops`); between logging steps nothing waits for the device.
Every ``eval_every`` steps and at the last, the main process adds the masked-LM loss and accuracy on the held-out
tail of the corpus, which the run never trains on (:mod:`electra_model.pretraining.heldout`); that evaluation is
neither in the window's tokens/s nor in a budget's calibration. A non-finite loss stops the run at the next logging
step, naming the step where it first appeared (tracked on the device, see :meth:`Trainer.stop_if_diverged`), before
any checkpoint of NaN weights.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch.distributed.fsdp import FSDPModule
from torch.nn.parallel import DistributedDataParallel

from electra_model.pretraining import checkpoint
from electra_model.code_closure import ROOT, project_closure
from electra_model.config import PretrainParams
from electra_model.data.blocks import Blocks
from electra_model.errors import ElectraError
from electra_model.pretraining.flops import peak_flops, pretraining_step_flops
from electra_model.pretraining.heldout import HeldOutSet, split_heldout
from electra_model.pretraining.sharding import gather_state, restore_state, shard_model
from electra_model.io import read_json, write_json
from electra_model.pretraining.modeling import (
    ElectraOutput,
    ElectraPretrainingModel,
    MaskedBatch,
    MaskedLMPretrainingModel,
    PretrainingModel,
    UNMASKABLE,
    electra_configs,
    mask_slots,
    mask_tokens,
)
from electra_model.progress import log_line, progress
from electra_model.data.tokenizer import special_token_ids
from electra_model.training import (
    Distributed,
    all_reduce_sum,
    broadcast_from_main,
    build_optimizer,
    init_distributed,
    linear_schedule,
    rank_device,
    seed_everything,
    stop_if_diverged,
)

MetricsCallback = Callable[[int, dict[str, float]], None]
SnapshotCallback = Callable[[int, "PretrainingModel"], None]
# Knobs that change what is reported or kept, not the trajectory: a run may resume with other values.
OPERATIONAL_KEYS = ("log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "snapshot_every", "peak_tflops")
# Calibration of a budgeted run: untimed steps first (lazy initialisation, torch.compile), then the timed ones.
CALIBRATION_WARMUP_STEPS = 2
CALIBRATION_STEPS = 5
BUDGET_PLAN = "budget.json"
# The RTD AUC's histogram: SCORE_BINS bins of the discriminator's logit over [-SCORE_RANGE, SCORE_RANGE].
SCORE_BINS = 128
SCORE_RANGE = 10.0
# A window after warmup whose RTD recall is below this warns of a collapsed discriminator (see collapse_warning).
COLLAPSE_RECALL = 0.05


@dataclass
class RunningStats:
    """Sums kept on the device between logging steps, reduced over ranks and read back once per logging step.

    Besides losses and accuracies, it keeps what reveals a collapsing run early: the generator's accuracy at
    [MASK] slots and at slots that kept their token, counted apart, and a fixed-bin histogram of the
    discriminator's logits for replaced and for original tokens, from which :func:`histogram_auc` gives the RTD
    AUC of the window without sorting or any host sync per step.
    """

    loss: torch.Tensor
    mlm_loss: torch.Tensor
    rtd_loss: torch.Tensor
    mlm_correct: torch.Tensor
    mlm_count: torch.Tensor
    mlm_mask_correct: torch.Tensor
    mlm_mask_count: torch.Tensor
    rtd_true_positive: torch.Tensor
    rtd_predicted_positive: torch.Tensor
    rtd_actual_positive: torch.Tensor
    rtd_correct: torch.Tensor
    rtd_count: torch.Tensor
    micro_batches: torch.Tensor
    replaced_scores: torch.Tensor  # (SCORE_BINS,) logit histogram of replaced tokens
    original_scores: torch.Tensor  # (SCORE_BINS,) logit histogram of original real tokens

    @classmethod
    def zeros(cls, device: torch.device) -> RunningStats:
        values = {f.name: torch.zeros((), device=device) for f in fields(cls)}
        for name in ("replaced_scores", "original_scores"):
            values[name] = torch.zeros(SCORE_BINS, dtype=torch.float64, device=device)
        return cls(**values)

    def add(self, output: ElectraOutput, masked: MaskedBatch) -> None:
        predicted = (output.rtd_logits > 0) & output.real_tokens
        actual = output.rtd_labels.bool() & output.real_tokens
        mask_slots = masked.mask_token_slots
        self.loss += output.loss.detach()
        self.mlm_loss += output.mlm_loss.detach()
        self.rtd_loss += output.rtd_loss.detach()
        self.mlm_correct += output.mlm_correct
        self.mlm_count += output.mlm_count
        self.mlm_mask_correct += (output.mlm_slot_correct & mask_slots).sum()
        self.mlm_mask_count += mask_slots.sum()
        self.rtd_true_positive += (predicted & actual).sum()
        self.rtd_predicted_positive += predicted.sum()
        self.rtd_actual_positive += actual.sum()
        self.rtd_correct += ((predicted == actual) & output.real_tokens).sum()
        self.rtd_count += output.real_tokens.sum()
        self.micro_batches += 1
        bins = score_bins(output.rtd_logits).flatten()
        self.replaced_scores.scatter_add_(0, bins, actual.flatten().double())
        self.original_scores.scatter_add_(0, bins, (output.real_tokens & ~actual).flatten().double())

    def summary(self, context: Distributed) -> dict[str, float]:
        """Means over the window and all ranks; the one host-device synchronisation of a logging step.

        Micro-batches are equal in size, so the mean of their losses is the loss of the global batch.
        """
        names = [f.name for f in fields(self)]
        parts = [getattr(self, name).double().reshape(-1) for name in names]
        totals = all_reduce_sum(torch.cat(parts), context).cpu().numpy()
        v = dict(zip(names, np.split(totals, np.cumsum([len(part) for part in parts])[:-1])))
        v = {name: value if len(value) > 1 else float(value[0]) for name, value in v.items()}
        n = max(1.0, v["micro_batches"])
        kept_correct, kept_count = v["mlm_correct"] - v["mlm_mask_correct"], v["mlm_count"] - v["mlm_mask_count"]
        return {
            "loss": v["loss"] / n,
            "mlm_loss": v["mlm_loss"] / n,
            "rtd_loss": v["rtd_loss"] / n,
            "mlm_accuracy": v["mlm_correct"] / max(1.0, v["mlm_count"]),
            "mlm_accuracy_masked": v["mlm_mask_correct"] / max(1.0, v["mlm_mask_count"]),
            "mlm_accuracy_kept": kept_correct / max(1.0, kept_count),
            "rtd_accuracy": v["rtd_correct"] / max(1.0, v["rtd_count"]),
            "rtd_precision": v["rtd_true_positive"] / max(1.0, v["rtd_predicted_positive"]),
            "rtd_recall": v["rtd_true_positive"] / max(1.0, v["rtd_actual_positive"]),
            "rtd_auc": histogram_auc(v["replaced_scores"], v["original_scores"]),
            "replaced_fraction": v["rtd_actual_positive"] / max(1.0, v["rtd_count"]),
        }


def score_bins(logits: torch.Tensor) -> torch.Tensor:
    """The histogram bin of each discriminator logit: SCORE_BINS equal bins over [-SCORE_RANGE, SCORE_RANGE],
    the outermost ones also holding everything beyond."""
    scaled = (logits.float().clamp(-SCORE_RANGE, SCORE_RANGE) + SCORE_RANGE) * (SCORE_BINS / (2 * SCORE_RANGE))
    return scaled.long().clamp_(0, SCORE_BINS - 1)


def histogram_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC from two score histograms over the same bins: the chance that a replaced token scores above an
    original one, a pair in the same bin counting one half (exact up to the bin width). 0.5 is a discriminator
    that ranks no better than chance, as a constant one does; 0.5 too when a class is absent from the window."""
    positives, negatives = float(positive.sum()), float(negative.sum())
    if positives == 0 or negatives == 0:
        return 0.5
    below = np.cumsum(negative) - negative
    return float((positive * (below + 0.5 * negative)).sum() / (positives * negatives))


def collapse_warning(metrics: dict[str, float], window_first_step: int, step: int, warmup_steps: int) -> str | None:
    """A warning when a logging window that lies wholly after warmup has an RTD recall below COLLAPSE_RECALL:
    the discriminator calls (almost) every token original, the collapse short runs fall into when the learning
    rate rises too fast or the generator gains too fast. None when the window looks healthy or is in warmup."""
    if window_first_step <= warmup_steps or metrics["rtd_recall"] >= COLLAPSE_RECALL:
        return None
    return (
        f"RTD recall {metrics['rtd_recall']:.3f} < {COLLAPSE_RECALL} in steps {window_first_step}-{step}, after "
        f"warmup (AUC {metrics['rtd_auc']:.3f}): the discriminator calls almost every token original and may have "
        "collapsed; try a lower pretrain.learning_rate or a longer pretrain.warmup_steps"
    )


class BlockOrder:
    """The blocks of each step's global batch: one seeded permutation per epoch, read in order.

    The data position is a pure function of (seed, step): resuming at step k reads exactly the blocks an
    uninterrupted run reads, and nothing of size O(steps) is ever materialised.
    """

    def __init__(self, n_blocks: int, batch_size: int, seed: int):
        self.n_blocks, self.batch_size, self.seed = n_blocks, batch_size, seed
        self._epochs: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._epochs:
            self._epochs = {e: p for e, p in self._epochs.items() if e >= epoch - 1}
            self._epochs[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n_blocks)
        return self._epochs[epoch]

    def batch(self, step: int) -> np.ndarray:
        """Block indices of optimizer step ``step`` (1-based)."""
        positions = np.arange((step - 1) * self.batch_size, step * self.batch_size)
        epochs, offsets = np.divmod(positions, self.n_blocks)
        return np.array([self._permutation(int(e))[o] for e, o in zip(epochs, offsets)], dtype=np.int64)


def curriculum_blocks(blocks: np.ndarray, step: int, params: PretrainParams) -> torch.Tensor:
    """The step's blocks as int64, cut into pieces of ``short_seq_len`` tokens while the sequence-length curriculum
    lasts (the first ``short_seq_fraction`` of ``max_steps``): the same tokens per step, but each one attends to a
    short context first, which is cheaper and lets the model learn local word order before long-range structure.
    Only the first piece of a block starts with [CLS], which masked-LM and RTD do not need."""
    ids = torch.from_numpy(blocks.astype(np.int64))
    if step > params.short_seq_fraction * params.max_steps:
        return ids
    return ids.reshape(-1, params.short_seq_len)


def shard_seed(seed: int, step: int, shard: int, stream: int) -> int:
    """A well-mixed seed per (seed, step, shard) and purpose (``stream`` 0: masking + sampling, 1: dropout)."""
    return int(np.random.SeedSequence([seed, step, shard, stream]).generate_state(1, dtype=np.uint64)[0])


def build_model(params: PretrainParams, tokenizer: Tokenizer) -> PretrainingModel:
    """The generator/discriminator pair for the chosen preset and this vocabulary, or for ``objective: mlm`` the
    discriminator's shape alone with an MLM head."""
    special = special_token_ids(tokenizer)
    discriminator, generator = electra_configs(
        params.architecture, tokenizer.get_vocab_size(), params.max_seq_len, special["[PAD]"], params.dropout,
        params.init_scale, params.backbone,
    )
    if params.objective == "mlm":
        return MaskedLMPretrainingModel(discriminator)
    never_sample = [special[token] for token in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")]
    return ElectraPretrainingModel(
        discriminator, generator, params.disc_weight, never_sample, params.sampling_temperature
    )


def objective_metrics(metrics: dict[str, float], objective: str) -> dict[str, float]:
    """The window's metrics that mean something for the objective: an MLM-only run has no RTD figures."""
    if objective == "electra":
        return metrics
    return {key: value for key, value in metrics.items() if not key.startswith("rtd_") and key != "replaced_fraction"}


def run_key(params: PretrainParams, seed: int, data_key: str) -> str:
    """Names a run's checkpoint directory: the params that shape the trajectory, the seed, the data, and the code
    of this module and every project module it imports (editing one starts a fresh run instead of resuming a stale
    one; the list comes from the imports, so it cannot drift from them)."""
    shaping = params.model_dump_json(exclude=set(OPERATIONAL_KEYS))
    code = [Path(__file__), *(ROOT / name for name in sorted(project_closure(Path(__file__))))]
    return checkpoint.content_digest(code, shaping, str(seed), data_key)


def fit_to_budget(params: PretrainParams, step_seconds: float) -> PretrainParams:
    """``params`` with ``max_steps`` as many steps as ``budget_minutes`` holds at ``step_seconds`` each, and
    ``warmup_steps`` scaled by the same factor (warmup keeps its share of the schedule, so the recipe's shape is the
    same at any budget); ``budget_minutes`` is cleared, as the schedule is now fixed."""
    if params.budget_minutes is None:
        raise ValueError("fit_to_budget needs pretrain.budget_minutes")
    max_steps = max(1, int(params.budget_minutes * 60 / step_seconds))
    warmup_steps = min(max_steps, round(params.warmup_steps * max_steps / params.max_steps))
    return params.model_copy(update={"max_steps": max_steps, "warmup_steps": warmup_steps, "budget_minutes": None})


def budget_params(
    params: PretrainParams, seed: int, tokenizer: Tokenizer, blocks: Blocks, context: Distributed, run_dir: Path | None
) -> PretrainParams:
    """The run's params with the schedule fitted to ``pretrain.budget_minutes`` (unchanged without a budget).

    The plan is read from ``run_dir`` when an earlier attempt of this run wrote it, so a resumed run keeps the
    step count and warmup its checkpoints were trained with; otherwise the step time is measured here and the
    plan written there (by the main process) before training starts.
    """
    if params.budget_minutes is None:
        return params
    plan_path = run_dir / BUDGET_PLAN if run_dir is not None else None
    if plan_path is not None and plan_path.is_file():
        plan = read_json(plan_path)
        log_line(f"budget plan from {plan_path}: {plan['max_steps']} steps, warmup {plan['warmup_steps']}")
        return params.model_copy(
            update={"max_steps": plan["max_steps"], "warmup_steps": plan["warmup_steps"], "budget_minutes": None}
        )
    step_seconds = calibrate_step_seconds(params, seed, tokenizer, blocks, context)
    fitted = fit_to_budget(params, step_seconds)
    log_line(
        f"budget {params.budget_minutes:g} min at {step_seconds * 1000:.1f} ms/step: {fitted.max_steps} steps, "
        f"warmup {fitted.warmup_steps}"
    )
    if plan_path is not None and context.is_main:
        plan = {"budget_minutes": params.budget_minutes, "step_seconds": step_seconds,
                "max_steps": fitted.max_steps, "warmup_steps": fitted.warmup_steps}
        write_json(plan_path, plan)
    return fitted


def calibrate_step_seconds(
    params: PretrainParams, seed: int, tokenizer: Tokenizer, blocks: Blocks, context: Distributed
) -> float:
    """Wall seconds per optimizer step here, averaged over ranks, timed on a throw-away copy of the run.

    The copy's steps change nothing in the run (its model is built afresh from the seed), so the trajectory does
    not depend on what was measured. The timed window ends with a logging step's synchronisation, as a real
    window does; checkpoint writes are not timed (they come on top of the budget).
    """
    trainer = Trainer(params, seed, tokenizer, blocks, context)
    model = prepare_model(trainer, context)
    trainer.model.train()
    stats = RunningStats.zeros(trainer.device)
    for _ in range(CALIBRATION_WARMUP_STEPS):
        trainer.train_step(model, stats)
    stats.summary(context)
    started = time.perf_counter()
    for _ in range(CALIBRATION_STEPS):
        trainer.train_step(model, stats)
    stats.summary(context)
    elapsed = torch.tensor(time.perf_counter() - started, dtype=torch.float64, device=trainer.device)
    mean = all_reduce_sum(elapsed, context).item() / context.world_size
    del model, trainer, stats
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return mean / CALIBRATION_STEPS


@dataclass(frozen=True)
class MicroBatch:
    input_ids: torch.Tensor
    masked: MaskedBatch
    sampler: torch.Generator


class Trainer:
    """One pretraining run: the model, its optimizer and schedule, the data order, and the logged history."""

    def __init__(self, params: PretrainParams, seed: int, tokenizer: Tokenizer, blocks: Blocks, context: Distributed):
        self.params, self.seed, self.blocks, self.context = params, seed, blocks, context
        self.n_shards = context.world_size * params.grad_accum_steps
        if params.batch_size % self.n_shards:
            raise ElectraError(
                f"pretrain.batch_size {params.batch_size} must be a multiple of world size {context.world_size} x "
                f"pretrain.grad_accum_steps {params.grad_accum_steps}"
            )
        self.device = rank_device(params.device, context)
        special = special_token_ids(tokenizer)
        self.mask_id = special["[MASK]"]
        self.unmaskable = torch.tensor([special[t] for t in UNMASKABLE], device=self.device)
        seed_everything(seed)
        self.model = build_model(params, tokenizer).to(self.device)
        # every rank builds the same initial weights from the seed, then keeps its shard of them
        self.sharded = params.parallel == "fsdp" and context.world_size > 1
        if self.sharded:
            shard_model(self.model)
        self.optimizer = build_optimizer(
            self.model, params.learning_rate, params.weight_decay, params.adam_epsilon, self.device
        )
        self.scheduler = linear_schedule(
            self.optimizer, params.warmup_steps, params.max_steps, params.adam_bias_correction
        )
        self.order = BlockOrder(len(blocks), params.batch_size, seed)
        self.step, self.history = 0, []
        self.first_nonfinite_step = torch.zeros((), dtype=torch.long, device=self.device)  # 0: none so far
        self.autocast = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        self.vocab_size = tokenizer.get_vocab_size()

    # -------------------------------------------------------------------------------------------- checkpoints
    def data_position(self) -> dict[str, int]:
        """What must match for a checkpoint's step to mean the same blocks and noise in this run."""
        return {"seed": self.seed, "n_blocks": len(self.blocks), "batch_size": self.params.batch_size}

    def resume(self, run_dir: Path) -> None:
        """Continue from the newest checkpoint in ``run_dir``, if there is one.

        Under torchrun only rank 0 looks in ``run_dir`` and reads the checkpoint; the others receive its step,
        history and state by broadcast (:func:`restore_state`), so ``run_dir`` need only exist on rank 0's node.
        Every rank must call it.
        """
        distributed = self.context.world_size > 1
        latest = checkpoint.latest_checkpoint(run_dir) if self.context.is_main else None
        if not distributed:
            if latest is None:
                return
            record = checkpoint.load_checkpoint(latest, self.model, self.optimizer, self.scheduler, self.device)
            self._check_data(latest, record)
        else:
            stored, record = None, None
            if latest is not None:
                model_tensors, optimizer_state, record = checkpoint.read_checkpoint(latest, torch.device("cpu"))
                self._check_data(latest, record)
                stored = (model_tensors, optimizer_state)
            record = broadcast_from_main(record, self.context)
            if record is None:
                return
            restore_state(latest, self.model, self.optimizer, stored)
            self.scheduler.load_state_dict(record["scheduler"])
        self.step, self.history = record["step"], record["history"]
        if self.context.is_main:
            log_line(f"resumed from {latest} at step {self.step}")

    def _check_data(self, path: Path, record: dict) -> None:
        if record["data"] != self.data_position():
            raise ElectraError(f"{path} was written for other data ({record['data']}); delete {path.parent} to start over")

    def save(self, run_dir: Path) -> None:
        """Checkpoint the current step into ``run_dir``; rank 0 alone writes, after gathering the other ranks'
        state under torchrun. Every rank must call it."""
        record = {"data": self.data_position(), "history": self.history}
        keep = self.params.keep_checkpoints
        if self.context.world_size == 1:
            path = checkpoint.save_checkpoint(run_dir, self.step, self.model, self.optimizer, self.scheduler, record, keep)
        else:
            gathered = gather_state(self.model, self.optimizer, self.context.is_main)
            if gathered is None:
                return
            record["scheduler"] = self.scheduler.state_dict()
            path = checkpoint.write_checkpoint(run_dir, self.step, *gathered, record, keep)
        log_line(f"checkpoint {path}")

    # -------------------------------------------------------------------------------------------- one step
    def micro_batches(self, step: int) -> Iterator[MicroBatch]:
        """This rank's shards of the global batch of ``step``, masked, each with its own seeded generators."""
        rows = self.order.batch(step)
        for shard in range(self.context.rank, self.n_shards, self.context.world_size):
            sampler = torch.Generator(device=self.device).manual_seed(shard_seed(self.seed, step, shard, 0))
            torch.manual_seed(shard_seed(self.seed, step, shard, 1))  # dropout
            input_ids = curriculum_blocks(self.blocks[rows[shard :: self.n_shards]], step, self.params)
            if self.device.type == "cuda":
                input_ids = input_ids.pin_memory()
            input_ids = input_ids.to(self.device, non_blocking=True)
            maskable = ~torch.isin(input_ids, self.unmaskable)
            p = self.params
            masked = mask_tokens(input_ids, maskable, self.mask_id, p.mask_prob, p.mask_token_prob, sampler)
            yield MicroBatch(input_ids, masked, sampler)

    def train_step(self, model: torch.nn.Module, stats: RunningStats) -> None:
        """One optimizer step over the global batch; DDP and FSDP reduce gradients on the last micro-batch only."""
        self.step += 1
        last = self.params.grad_accum_steps - 1
        for index, micro in enumerate(self.micro_batches(self.step)):
            with gradient_sync(model, index == last):
                with self.autocast:
                    output = model(micro.input_ids, None, micro.masked, micro.sampler)
                (output.loss / self.params.grad_accum_steps).backward()
            stats.add(output, micro.masked)
            self._note_nonfinite(output.loss.detach())
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.params.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _note_nonfinite(self, loss: torch.Tensor) -> None:
        """Record on the device the first step whose loss is not finite; no host sync (see stop_if_diverged)."""
        first = (self.first_nonfinite_step == 0) & ~torch.isfinite(loss)
        self.first_nonfinite_step = torch.where(first, self.step, self.first_nonfinite_step)

    def stop_if_diverged(self, window_loss: float, window_first_step: int) -> None:
        """Stop when the logging window's mean loss is not finite (one NaN or inf micro-batch makes the sum so).

        The check rides on the logging step's one host sync instead of reading every step's loss, which would
        stall the GPU's queue each step; the step it names is exact all the same, recorded on the device by
        :meth:`_note_nonfinite` (on another rank's shard, the window is named). Checkpoints are written only at
        logging steps after this check, so none ever holds NaN weights.
        """
        if math.isfinite(window_loss):
            return
        first = int(self.first_nonfinite_step.item())
        p = self.params
        knobs = {"pretrain.learning_rate": p.learning_rate, "pretrain.warmup_steps": p.warmup_steps,
                 "pretrain.batch_size": p.batch_size, "pretrain.grad_accum_steps": p.grad_accum_steps}
        where = f"at step {first}" if first else f"in steps {window_first_step}-{self.step}"
        stop_if_diverged(window_loss, where, "pretraining", knobs)

    def heldout_set(self, blocks: np.ndarray) -> HeldOutSet:
        """The held-out blocks masked by this run's rule, in batches of a training micro-batch's size (so a
        compiled body sees the shape it was compiled for)."""
        p = self.params
        micro_batch = p.batch_size // self.n_shards
        return HeldOutSet.build(blocks, self.unmaskable, self.mask_id, p.mask_prob, p.mask_token_prob, micro_batch)

    def step_flops(self) -> int:
        p = self.params
        tokens = p.batch_size * p.max_seq_len
        masked = p.batch_size * mask_slots(p.max_seq_len, p.mask_prob)
        return pretraining_step_flops(p.architecture, self.vocab_size, p.max_seq_len, tokens, masked, p.objective)


def gradient_sync(model: torch.nn.Module, enabled: bool) -> contextlib.AbstractContextManager:
    """Whether this backward pass reduces gradients over the ranks: only a step's last micro-batch needs to."""
    if isinstance(model, DistributedDataParallel) and not enabled:
        return model.no_sync()
    if isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(enabled)
    return contextlib.nullcontext()


def compile_bodies(model: PretrainingModel) -> None:
    """torch.compile the transformer bodies in place (parameter names, and so checkpoints, stay the same)."""
    for body in model.bodies:
        body.compile()


def prepare_model(trainer: Trainer, context: Distributed) -> torch.nn.Module:
    """The module a training step calls: the trainer's model, compiled if asked, wrapped in DDP on several ranks
    (unless it is already sharded by FSDP)."""
    if trainer.params.compile:
        compile_bodies(trainer.model)
    if context.world_size == 1 or trainer.sharded:
        return trainer.model
    device_ids = [trainer.device.index] if trainer.device.type == "cuda" else None
    return DistributedDataParallel(trainer.model, device_ids=device_ids, broadcast_buffers=False)


def pretrain(
    params: PretrainParams,
    seed: int,
    tokenizer: Tokenizer,
    blocks: Blocks,
    on_log: MetricsCallback,
    checkpoint_dir: Path | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_snapshot: SnapshotCallback | None = None,
) -> tuple[PretrainingModel, dict[str, float]]:
    """Train generator and discriminator jointly for ``params.max_steps`` optimizer steps, or for as many as
    ``params.budget_minutes`` holds (see :func:`budget_params`).

    With ``checkpoint_dir``, continue from its newest checkpoint (replaying the logged history to ``on_log``) and
    checkpoint every ``checkpoint_every`` steps. Under torchrun every rank trains; only rank 0 calls ``on_log`` and
    writes checkpoints (gathered from all ranks, see :mod:`electra_model.pretraining.sharding`). The corpus's last blocks are held out (:func:`split_heldout`) and scored every
    ``eval_every`` steps and at the last. Besides the last window's metrics, the result holds ``steps``,
    ``tokens_seen``, ``heldout_blocks`` and ``train_minutes`` (this process's training time, calibration excluded).
    The first logging window after warmup that looks collapsed (:func:`collapse_warning`) is logged as a warning and
    passed to ``on_warning``. With ``snapshot_every`` set, the main process hands the model to ``on_snapshot`` every
    that many steps and at the last (the probe stage's input), outside the logging windows' tokens/s.
    """
    context = init_distributed(params.device)
    blocks, heldout_blocks = split_heldout(blocks, params.eval_blocks)
    params = budget_params(params, seed, tokenizer, blocks, context, checkpoint_dir)
    trainer = Trainer(params, seed, tokenizer, blocks, context)
    if trainer.sharded and on_snapshot is not None and params.snapshot_every is not None:
        raise ElectraError(
            "pretrain.snapshot_every needs the whole model on rank 0, which pretrain.parallel fsdp shards; "
            "set snapshot_every to null or parallel to ddp"
        )
    # a sharded model's forward is collective: every rank evaluates, rank 0 reports
    heldout = trainer.heldout_set(heldout_blocks) if context.is_main or trainer.sharded else None
    if checkpoint_dir is not None:
        trainer.resume(checkpoint_dir)
    if context.is_main:
        for row in trainer.history:
            on_log(row["step"], {k: v for k, v in row.items() if k != "step"})
    model = prepare_model(trainer, context)
    peak = peak_flops(trainer.device, params.peak_tflops)
    flops_per_step = trainer.step_flops()

    trainer.model.train()
    stats = RunningStats.zeros(trainer.device)
    training_start = window_start = time.perf_counter()
    window_steps, warned = 0, False
    remaining = range(trainer.step + 1, params.max_steps + 1)
    for step in progress(remaining, total=len(remaining), description="pretraining"):
        trainer.train_step(model, stats)
        window_steps += 1
        if step % params.log_every and step != params.max_steps:
            continue
        metrics = objective_metrics(stats.summary(context), params.objective)
        trainer.stop_if_diverged(metrics["loss"], step - window_steps + 1)
        elapsed = time.perf_counter() - window_start
        metrics["learning_rate"] = trainer.scheduler.get_last_lr()[0]
        metrics["tokens_per_s"] = window_steps * params.batch_size * params.max_seq_len / elapsed
        if peak is not None:
            metrics["mfu"] = window_steps * flops_per_step / elapsed / (peak * context.world_size)
        if heldout is not None and (step % params.eval_every == 0 or step == params.max_steps):
            metrics.update(heldout.evaluate(trainer.model, trainer.autocast))
        trainer.history.append({"step": step, **metrics})
        if context.is_main:
            on_log(step, metrics)
            log_line(log_summary(step, params.max_steps, metrics))
            check = not warned and params.objective == "electra"
            warning = collapse_warning(metrics, step - window_steps + 1, step, params.warmup_steps) if check else None
            if warning is not None:
                warned = True
                log_line(f"warning: {warning}")
                if on_warning is not None:
                    on_warning(warning)
        if checkpoint_dir is not None and (step % params.checkpoint_every == 0 or step == params.max_steps):
            trainer.save(checkpoint_dir)
        if on_snapshot is not None and context.is_main and is_snapshot_step(step, params):
            on_snapshot(step, trainer.model)
        stats, window_start, window_steps = RunningStats.zeros(trainer.device), time.perf_counter(), 0
    final = {k: v for k, v in trainer.history[-1].items() if k != "step"} if trainer.history else {}
    final.update(
        steps=trainer.step,
        tokens_seen=trainer.step * params.batch_size * params.max_seq_len,
        heldout_blocks=len(heldout_blocks),
        train_minutes=(time.perf_counter() - training_start) / 60,
    )
    return trainer.model, final


def is_snapshot_step(step: int, params: PretrainParams) -> bool:
    """Whether ``pretrain.snapshot_every`` keeps the model of ``step`` (the last step's too, so a probe curve always
    ends at the model the pipeline fine-tunes)."""
    every = params.snapshot_every
    return every is not None and (step % every == 0 or step == params.max_steps)


def log_summary(step: int, max_steps: int, metrics: dict[str, float]) -> str:
    """One line per logging window: the losses, the RTD figures an ELECTRA run has, speed, and the held-out MLM
    figures when this window was evaluated."""
    rtd = (
        f"rtd {metrics['rtd_loss']:.4f} rtd_acc {metrics['rtd_accuracy']:.3f} rtd_recall {metrics['rtd_recall']:.3f} "
        f"rtd_auc {metrics['rtd_auc']:.3f} "
        if "rtd_loss" in metrics
        else f"mlm_acc {metrics['mlm_accuracy_masked']:.3f} "
    )
    heldout = (
        f" heldout_mlm {metrics['heldout_mlm_loss']:.3f} heldout_acc {metrics['heldout_mlm_accuracy']:.3f}"
        if "heldout_mlm_loss" in metrics
        else ""
    )
    return (
        f"step {step}/{max_steps} loss {metrics['loss']:.3f} mlm {metrics['mlm_loss']:.3f} {rtd}"
        f"tok/s {metrics['tokens_per_s']:.0f} mfu {metrics.get('mfu', float('nan')):.1%}{heldout}"
    )


def save_pretrained(model: PretrainingModel, tokenizer_dir: Path, out_dir: Path, with_generator: bool = True) -> None:
    """The model fine-tuning starts from (with the tokenizer) in ``out_dir``: the discriminator, with the generator in
    ``out_dir/generator`` unless ``with_generator`` is false (a probe snapshot needs only what is fine-tuned), or the
    MLM-only encoder."""
    model.finetuning_model.save_pretrained(out_dir, safe_serialization=True)
    if with_generator and isinstance(model, ElectraPretrainingModel):
        model.generator.save_pretrained(out_dir / "generator", safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (out_dir / name).write_bytes((tokenizer_dir / name).read_bytes())
