"""Sequence-classification fine-tuning: ``ElectraForSequenceClassification`` on labelled texts or text pairs.

The recipe is NER's (:mod:`electra_model.tasks.ner.finetune`), shared rather than copied: the same ``finetune.init`` choices
(our pretrained discriminator, a ``save_pretrained`` checkpoint directory with its own tokenizer, or random weights
of our pretrained shape) under the same "only the head may be new" rule, AdamW with layer-wise learning-rate
decay, warmup + linear decay, length-grouped batches, and early stopping on the validation split, keeping the best
epoch. The validation score that selects epochs is ``classification.selection_metric`` (accuracy or macro-F1).
Test data is never read here. Inputs are built by :func:`electra_model.client.classifier_encoding.encode`, the
function the ONNX client uses, so training and serving cannot encode differently::

    model, tokenizer, summary = finetune_classifier(params.finetune, classification, seed, Path("models/pretrained"),
                                                    splits["train"], splits["valid"], on_log=lambda step, m: None)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import ElectraForSequenceClassification

from electra_model.config import ClassificationParams, FinetuneParams
from electra_model.tasks.ner.finetune import layerwise_groups, length_grouped_batches, load_model, load_tokenizer
from electra_model.progress import log_line, progress
from electra_model.tasks.classification.data import TextExample, label_list
from electra_model.tasks.classification.metrics import classification_scores
from electra_model.client.classifier_encoding import PAD, Encoded, encode, pad_batch, softmax, special_ids
from electra_model.training import (
    MixedPrecision,
    finetuning_step,
    linear_schedule,
    resolve_device,
    seed_everything,
)

MetricsCallback = Callable[[int, dict[str, float]], None]


def load_classifier(init: str, pretrained_dir: Path, labels: Sequence[str]) -> ElectraForSequenceClassification:
    """NER's loading rule with a sequence-classification head: only ``classifier.*`` may be newly initialised, and
    the label names travel in the config into the export and the registry."""
    return load_model(init, pretrained_dir, list(labels), ElectraForSequenceClassification)


def model_labels(model: ElectraForSequenceClassification) -> list[str]:
    """The model's labels in id order."""
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


def encode_examples(tokenizer: Tokenizer, examples: Sequence[TextExample], max_len: int) -> list[Encoded]:
    """Model inputs for a split: single texts, or pairs when the examples carry a second text."""
    texts = [example.text for example in examples]
    is_pair = bool(examples) and examples[0].pair is not None
    pairs = [example.pair or "" for example in examples] if is_pair else None
    return encode(tokenizer, texts, pairs, max_len)


def _tensors(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(array).to(device) for name, array in batch.items()}


def predict_probabilities(
    model: ElectraForSequenceClassification,
    tokenizer: Tokenizer,
    examples: Sequence[TextExample],
    max_len: int,
    batch_size: int,
) -> np.ndarray:
    """Label probabilities ``(examples, labels)`` in input order, batched by length so little is padding."""
    device = next(model.parameters()).device
    pad_id = special_ids(tokenizer)[PAD]
    encoded = encode_examples(tokenizer, examples, max_len)
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index].input_ids))
    logits = np.zeros((len(encoded), model.config.num_labels), dtype=np.float32)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = _tensors(pad_batch([encoded[index] for index in indices], pad_id), device)
            logits[indices] = model(**batch).logits.float().cpu().numpy()
    return softmax(logits)


def evaluate_split(
    model: ElectraForSequenceClassification,
    tokenizer: Tokenizer,
    examples: Sequence[TextExample],
    max_len: int,
    batch_size: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """Scores of a labelled split and the probabilities behind them (the error report reads those)."""
    labels = model_labels(model)
    probabilities = predict_probabilities(model, tokenizer, examples, max_len, batch_size)
    predicted = [labels[index] for index in probabilities.argmax(axis=1)]
    gold = [str(example.label) for example in examples]
    return classification_scores(gold, predicted, labels), probabilities


def finetune_classifier(
    params: FinetuneParams,
    task: ClassificationParams,
    seed: int,
    pretrained_dir: Path,
    train: Sequence[TextExample],
    valid: Sequence[TextExample],
    on_log: MetricsCallback,
) -> tuple[ElectraForSequenceClassification, Tokenizer, dict[str, float]]:
    """Train, keep the epoch with the best validation ``selection_metric``, stop after ``patience`` epochs without
    gain."""
    seed_everything(seed)
    device = resolve_device(params.device)
    model = load_classifier(params.init, pretrained_dir, label_list(task, train)).to(device)
    tokenizer = load_tokenizer(params.init, pretrained_dir)
    encoded = encode_examples(tokenizer, train, params.max_seq_len)
    targets = np.asarray([model.config.label2id[str(example.label)] for example in train], dtype=np.int64)
    lengths = [len(item.input_ids) for item in encoded]
    total_steps = -(-len(encoded) // params.batch_size) * params.epochs
    groups = layerwise_groups(model, params.learning_rate, params.weight_decay, params.layer_lr_decay)
    optimizer = torch.optim.AdamW(
        groups, lr=params.learning_rate, eps=params.adam_epsilon, fused=device.type in ("cuda", "cpu")
    )
    scheduler = linear_schedule(optimizer, round(params.warmup_ratio * total_steps), total_steps)
    precision = MixedPrecision(params.mixed_precision, device)
    pad_id = special_ids(tokenizer)[PAD]
    rng = np.random.default_rng(seed)
    metric = f"valid_{task.selection_metric}"

    best, best_state, best_epoch, stale_epochs, step = -1.0, None, 0, 0, 0
    for epoch in range(1, params.epochs + 1):
        model.train()
        losses = []
        batches = length_grouped_batches(lengths, params.batch_size, rng)
        for indices in progress(batches, total=len(batches), description=f"fine-tuning epoch {epoch}"):
            batch = _tensors(pad_batch([encoded[index] for index in indices], pad_id), device)
            with precision.autocast():
                output = model(**batch, labels=torch.from_numpy(targets[indices]).to(device))
            step += 1
            loss, head_lr = finetuning_step(output.loss, model, optimizer, scheduler, step, params, precision)
            losses.append(loss)
            on_log(step, {"train_loss": loss, "learning_rate": head_lr})

        scores, _ = evaluate_split(model, tokenizer, valid, params.max_seq_len, params.batch_size * 2)
        summary = {
            "epoch": epoch,
            "epoch_train_loss": float(np.mean(losses)),
            "valid_accuracy": scores["accuracy"],
            "valid_macro_f1": scores["macro_f1"],
        }
        on_log(step, summary)
        log_line(
            f"epoch {epoch}: train loss {summary['epoch_train_loss']:.4f}, valid accuracy {scores['accuracy']:.4f}, "
            f"valid macro-F1 {scores['macro_f1']:.4f}"
        )
        if summary[metric] > best:
            best, best_epoch, stale_epochs = summary[metric], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale_epochs += 1
            if stale_epochs >= params.patience:
                log_line(f"early stop: no gain in {metric} for {params.patience} epochs")
                break
    model.load_state_dict(best_state)
    summary = {f"best_{metric}": best, "best_epoch": best_epoch, "epochs_run": epoch, "steps": step}
    return model, tokenizer, summary
