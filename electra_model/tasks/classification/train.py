"""Sequence-classification fine-tuning: ``ElectraForSequenceClassification`` on labelled texts or text pairs.

The recipe is every task's, shared rather than copied: the same ``finetune.init`` choices
(:mod:`electra_model.tasks.checkpoints`: our pretrained discriminator, a checkpoint directory with its own
tokenizer, or random weights of our pretrained shape) under the same "only the head may be new" rule, and the same
loop (:mod:`electra_model.tasks.finetuning`: AdamW with layer-wise learning-rate decay, warmup + linear decay,
length-grouped batches, early stopping on the validation split, keeping the best epoch). The validation score that
selects epochs is ``classification.selection_metric`` (accuracy or macro-F1).
Test data is never read here. Inputs are built by :func:`electra_model.client.classifier_encoding.encode`, the
function the ONNX client uses, so training and serving cannot encode differently::

    model, tokenizer, summary = finetune_classifier(params.finetune, classification, seed, Path("models/pretrained"),
                                                    splits["train"], splits["valid"], on_log=lambda step, m: None)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import ElectraForSequenceClassification

from electra_model.config import ClassificationParams, FinetuneParams
from electra_model.tasks.base import MetricsCallback
from electra_model.tasks.checkpoints import load_model, load_tokenizer
from electra_model.tasks.classification.data import TextExample, label_list
from electra_model.tasks.classification.metrics import classification_scores
from electra_model.client.classifier_encoding import PAD, Encoded, encode, pad_batch, softmax, special_ids
from electra_model.tasks.finetuning import TrainBatches, Validation, finetune_loop, to_device
from electra_model.training import resolve_device, seed_everything


def load_classifier(init: str, pretrained_dir: Path, labels: Sequence[str]) -> ElectraForSequenceClassification:
    """Every task's loading rule with a sequence-classification head: only ``classifier.*`` may be newly
    initialised, and the label names travel in the config into the export and the registry."""
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
            batch = to_device(pad_batch([encoded[index] for index in indices], pad_id), device)
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
    """Train in the shared loop (:mod:`electra_model.tasks.finetuning`), keeping the epoch with the best validation
    ``selection_metric``."""
    seed_everything(seed)
    device = resolve_device(params.device)
    model = load_classifier(params.init, pretrained_dir, label_list(task, train)).to(device)
    tokenizer = load_tokenizer(params.init, pretrained_dir)
    encoded = encode_examples(tokenizer, train, params.max_seq_len)
    targets = np.asarray([model.config.label2id[str(example.label)] for example in train], dtype=np.int64)
    collate = partial(labelled_batch, encoded, targets, special_ids(tokenizer)[PAD])
    batches = TrainBatches([len(item.input_ids) for item in encoded], collate)
    validation = Validation(
        partial(valid_scores, tokenizer=tokenizer, valid=valid, params=params), f"valid_{task.selection_metric}"
    )
    return model, tokenizer, finetune_loop(model, params, seed, batches, validation, on_log)


def labelled_batch(
    encoded: Sequence[Encoded], targets: np.ndarray, pad_id: int, indices: np.ndarray
) -> dict[str, np.ndarray]:
    """The padded inputs of the examples at ``indices`` with their label ids, from which the model computes its
    loss."""
    return {**pad_batch([encoded[index] for index in indices], pad_id), "labels": targets[indices]}


def valid_scores(
    model: ElectraForSequenceClassification, tokenizer: Tokenizer, valid: Sequence[TextExample], params: FinetuneParams
) -> dict[str, float]:
    """Both selectable scores on the valid split, so either can be the one selection reads and both are logged per
    epoch (the task's ``valid_curve``)."""
    scores, _ = evaluate_split(model, tokenizer, valid, params.max_seq_len, params.batch_size * 2)
    return {"valid_accuracy": scores["accuracy"], "valid_macro_f1": scores["macro_f1"]}
