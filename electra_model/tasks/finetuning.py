"""The fine-tuning loop every task shares: ELECTRA's recipe, written once.

AdamW with layer-wise learning-rate decay (no weight decay on biases and LayerNorm), warmup + linear decay over all
epochs, ``finetune.mixed_precision``, gradient clipping, a stop at the first non-finite loss, length-grouped batches
reshuffled each epoch, a validation score after every epoch, early stopping after ``finetune.patience`` epochs
without gain, and the best epoch's weights kept in memory and loaded back at the end. Every step logs
``train_loss`` and ``learning_rate`` (the head's) through ``on_log``; every epoch logs ``epoch``,
``epoch_train_loss`` and the task's validation metrics (the per-epoch curve ``tune.pruning`` reads).

A task supplies three things:

- its batches: :class:`TrainBatches`, the length of each training example (the loop draws shuffled batches of
  ``finetune.batch_size`` similar-length examples from them each epoch) and ``collate``, which turns a batch's example
  indices into the model's input arrays, labels included. The valid split is batched by the task's own validation
  function, the same prediction code its evaluator runs, so that the epoch is chosen on what will be reported;
- its loss: ``loss(model, batch)``, by default the model's own loss output (``model(**batch).loss``, which
  transformers' heads and the CRF head compute from the batch's ``labels``);
- its validation: :class:`Validation`, a function scoring the model on the valid split into ``valid_*`` metrics (its
  :class:`~electra_model.tasks.base.Task`'s ``valid_curve``, which ``tune.pruning.curve`` may name), the metric
  that selects the epoch kept, and whether higher is better.

The task itself seeds, loads its model (:func:`electra_model.tasks.checkpoints.load_model` with its head) and
tokenizer, and encodes its data; the loop returns the summary the finetune stage writes (``best_<metric>``,
``best_epoch``, ``epochs_run``, ``steps``) and leaves the best epoch's weights in the model::

    seed_everything(seed)
    model = load_model(params.init, pretrained_dir, labels, ElectraForMultipleChoice).to(resolve_device(params.device))
    batches = TrainBatches([len(item.input_ids) for item in encoded], lambda indices: pad(encoded, indices))
    validation = Validation(lambda model: {"valid_accuracy": accuracy(model, valid)}, metric="valid_accuracy")
    summary = finetune_loop(model, params, seed, batches, validation, on_log)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from transformers import PreTrainedModel

from electra_model.config import FinetuneParams
from electra_model.progress import log_line, progress
from electra_model.tasks.base import MetricsCallback
from electra_model.training import MixedPrecision, linear_schedule, parameter_groups, stop_if_diverged

Batch = dict[str, torch.Tensor]
LossFunction = Callable[[nn.Module, Batch], torch.Tensor]
LENGTH_GROUP = 50
"""Batches are drawn from pools of this many batches sorted by length: far less padding, still shuffled."""


@dataclass(frozen=True)
class TrainBatches:
    """A task's training examples as the loop batches them: each example's length, and how a batch of example
    indices becomes the model's input arrays (labels included)."""

    lengths: Sequence[int]
    collate: Callable[[np.ndarray], Mapping[str, np.ndarray]]

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches per epoch: the schedule's length is fixed before the first batch is drawn."""
        return -(-len(self.lengths) // batch_size)


@dataclass(frozen=True)
class Validation:
    """How a task scores an epoch on its valid split, and which score picks the epoch kept (test is never read)."""

    score: Callable[[nn.Module], dict[str, float]]
    metric: str
    higher_is_better: bool = True


def model_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The loss the model computes itself from the batch's ``labels``: what every head here trains on."""
    return model(**batch).loss


def layer_depths(model: PreTrainedModel) -> list[tuple[int, nn.Module]]:
    """Modules by depth: embeddings 0, transformer layer i at i + 1, the classifier head on top."""
    body = model.base_model  # ELECTRA's or another backbone's (pretrain.backbone)
    layers = list(body.encoder.layer)
    bottom = [body.embeddings]
    if getattr(body, "embeddings_project", None) is not None:
        bottom.append(body.embeddings_project)
    return [
        *((0, module) for module in bottom),
        *((depth, layer) for depth, layer in enumerate(layers, start=1)),
        (len(layers) + 1, model.classifier),
    ]


def layerwise_groups(model: PreTrainedModel, learning_rate: float, weight_decay: float, decay: float) -> list[dict]:
    """AdamW groups with ELECTRA's layer-wise LR decay: the head trains at ``learning_rate`` and each layer below
    at ``decay`` times the one above, so the pretrained lower layers move least; biases and LayerNorm get no decay."""
    top = len(model.base_model.encoder.layer) + 1
    groups = []
    for depth, module in layer_depths(model):
        for group in parameter_groups(module, weight_decay):
            if group["params"]:
                groups.append({**group, "lr": learning_rate * decay ** (top - depth)})
    return groups


def layerwise_optimizer(model: PreTrainedModel, params: FinetuneParams, device: torch.device) -> torch.optim.AdamW:
    """AdamW over :func:`layerwise_groups`, with the fused kernel: one pass per tensor instead of one per
    elementwise op (see :func:`electra_model.training.build_optimizer`)."""
    groups = layerwise_groups(model, params.learning_rate, params.weight_decay, params.layer_lr_decay)
    return torch.optim.AdamW(
        groups, lr=params.learning_rate, eps=params.adam_epsilon, fused=device.type in ("cuda", "cpu")
    )


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar-length examples: a random order is cut into pools, each pool sorted by length
    and cut into batches, and the batches shuffled -- what transformers calls ``group_by_length``."""
    order = rng.permutation(len(lengths))
    pool = batch_size * LENGTH_GROUP
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda index: lengths[index])
        batches += [np.asarray(chunk[i : i + batch_size]) for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def to_device(arrays: Mapping[str, np.ndarray], device: torch.device) -> Batch:
    """A collated batch as tensors where the model is (``from_numpy`` shares the memory: no copy on CPU)."""
    return {name: torch.from_numpy(array).to(device) for name, array in arrays.items()}


def finetuning_step(
    loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: LambdaLR, step: int,
    params: FinetuneParams, precision: MixedPrecision,
) -> tuple[float, float]:
    """One optimizer step (backward, clipping, step, schedule), stopping a diverged run.

    Returns the loss and the head's learning rate this step used (lower layers' are decayed from it). The loss is
    read every step anyway, so checking it adds no host sync. Under fp16 the gradients are unscaled before clipping,
    and a step whose scaled gradients overflowed is skipped by the scaler (the schedule still advances)."""
    scaler = precision.scaler
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
    head_lr = scheduler.get_last_lr()[-1]
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    value = loss.item()
    stop_if_diverged(value, f"at step {step}", "fine-tuning", {
        "finetune.learning_rate": params.learning_rate, "learning rate at this step": head_lr,
        "finetune.batch_size": params.batch_size,
    })
    return value, head_lr


class KeptEpoch:
    """The best epoch so far by the selection metric, its weights (a copy in memory, so no checkpoint is written
    per epoch) and the epochs since, which early stopping counts."""

    def __init__(self, validation: Validation) -> None:
        self.validation = validation
        self.score: float | None = None
        self.epoch = 0
        self.state: dict[str, torch.Tensor] | None = None
        self.stale_epochs = 0

    def offer(self, epoch: int, scores: dict[str, float], model: nn.Module) -> None:
        """Keep this epoch if it beats the kept one strictly (a tie keeps the earlier, less trained epoch)."""
        score = scores[self.validation.metric]
        if self.score is None or (score > self.score if self.validation.higher_is_better else score < self.score):
            self.score, self.epoch, self.stale_epochs = score, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
        else:
            self.stale_epochs += 1


class EpochTrainer:
    """One run's optimizer, schedule, precision and batch order, built from ``finetune.*`` before the first step."""

    def __init__(self, model: PreTrainedModel, params: FinetuneParams, seed: int, batches: TrainBatches) -> None:
        self.model, self.params, self.batches = model, params, batches
        self.device = next(model.parameters()).device
        total_steps = batches.steps_per_epoch(params.batch_size) * params.epochs
        self.optimizer = layerwise_optimizer(model, params, self.device)
        self.scheduler = linear_schedule(self.optimizer, round(params.warmup_ratio * total_steps), total_steps)
        self.precision = MixedPrecision(params.mixed_precision, self.device)
        self.rng = np.random.default_rng(seed)
        self.step = 0

    def train_epoch(self, epoch: int, loss: LossFunction, on_log: MetricsCallback) -> float:
        """One pass over the training examples in a fresh batch order; the epoch's mean training loss."""
        self.model.train()
        losses = []
        order = length_grouped_batches(self.batches.lengths, self.params.batch_size, self.rng)
        for indices in progress(order, total=len(order), description=f"fine-tuning epoch {epoch}"):
            batch = to_device(self.batches.collate(indices), self.device)
            with self.precision.autocast():
                batch_loss = loss(self.model, batch)
            self.step += 1
            value, head_lr = finetuning_step(
                batch_loss, self.model, self.optimizer, self.scheduler, self.step, self.params, self.precision
            )
            losses.append(value)
            on_log(self.step, {"train_loss": value, "learning_rate": head_lr})
        return float(np.mean(losses))


def finetune_loop(
    model: PreTrainedModel,
    params: FinetuneParams,
    seed: int,
    batches: TrainBatches,
    validation: Validation,
    on_log: MetricsCallback,
    loss: LossFunction = model_loss,
) -> dict[str, float]:
    """Train for up to ``finetune.epochs``, scoring each epoch on valid, stop after ``finetune.patience`` epochs
    without gain, and leave the best epoch's weights in ``model``; the summary the finetune stage writes.

    ``seed`` orders the batches; the caller seeds torch (:func:`electra_model.training.seed_everything`) before it
    builds the model, since a new head's initial weights draw from it."""
    run = EpochTrainer(model, params, seed, batches)
    kept = KeptEpoch(validation)
    for epoch in range(1, params.epochs + 1):
        train_loss = run.train_epoch(epoch, loss, on_log)
        scores = validation.score(model)
        on_log(run.step, {"epoch": epoch, "epoch_train_loss": train_loss, **scores})
        shown = ", ".join(f"{name} {value:.4f}" for name, value in scores.items())
        log_line(f"epoch {epoch}: train loss {train_loss:.4f}, {shown}")
        kept.offer(epoch, scores, model)
        if kept.stale_epochs >= params.patience:
            log_line(f"early stop: no gain in {validation.metric} for {params.patience} epochs")
            break
    model.load_state_dict(kept.state)
    return {f"best_{validation.metric}": kept.score, "best_epoch": kept.epoch, "epochs_run": epoch, "steps": run.step}
