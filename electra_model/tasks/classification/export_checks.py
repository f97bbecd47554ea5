"""The export checks of a sequence classifier: every ONNX variant against torch, and scored, on labelled texts.

What the export stage runs for a classifier (:class:`ClassificationExporter`, made by
:data:`electra_model.tasks.classification.spec.CLASSIFICATION`): the same inputs go to torch and to each variant,
built by the serving client itself (:class:`~electra_model.client.classifier.ClassifierPredictor`), so what is
compared is what is served. Per variant: ``max_abs_logit_diff`` and ``labels_identical`` over every text,
``accuracy`` and ``macro_f1``::

    results = check_classifier_variants(model, Path("models/onnx"), valid_examples, batch_size=64)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, ElectraForSequenceClassification

from electra_model.client.classifier import ClassifierPredictor
from electra_model.client.classifier_encoding import pad_batch
from electra_model.client.exported import CPU, read_meta
from electra_model.errors import ElectraError
from electra_model.tasks.checkpoints import for_body
from electra_model.tasks.classification.data import TextExample, file_records, normalized_columns, to_examples
from electra_model.tasks.classification.metrics import classification_scores
from electra_model.tasks.ner.heads import load_saved


def _predictors(onnx_dir: Path | str, batch_size: int) -> dict[str, ClassifierPredictor]:
    """One CPU predictor per exported variant."""
    variants = read_meta(Path(onnx_dir))["variants"]
    return {
        name: ClassifierPredictor.from_dir(onnx_dir, providers=[CPU], variant=name, batch_size=batch_size)
        for name in variants
    }


def texts_and_pairs(examples: Sequence[TextExample]) -> tuple[list[str], list[str] | None]:
    """The first texts, and the second texts when the split is a pair task (a single-text split has none)."""
    texts = [example.text for example in examples]
    if all(example.pair is None for example in examples):
        return texts, None
    return texts, [example.pair or "" for example in examples]


def gold_labels(examples: Sequence[TextExample], labels: Sequence[str]) -> list[str]:
    """The examples' labels, each one the model knows: a stranger is named with its line, since it could only be
    scored as wrong and would lower the gate's accuracy for a reason no variant can fix."""
    known = set(labels)
    for example in examples:
        if example.label is None or str(example.label) not in known:
            raise ElectraError(
                f"{example.where}: label {example.label!r} is not one of the model's labels {list(labels)}; "
                "the evaluation data does not belong to this model"
            )
    return [str(example.label) for example in examples]


def check_classifier_variants(
    model: ElectraForSequenceClassification, onnx_dir: Path | str, examples: Sequence[TextExample], batch_size: int
) -> dict[str, dict[str, Any]]:
    """Compare every variant's logits with torch's on the validation texts (padded batches, where export bugs
    hide) and score each variant's predictions. Parity is asked of the fp32 variants only (see
    :func:`electra_model.export.choose.summarize`)."""
    if not examples:
        raise ElectraError("the export check got no validation examples; check the valid split of the task data")
    predictors = _predictors(onnx_dir, batch_size)
    base = predictors["fp32"]
    gold = gold_labels(examples, base.labels)
    encoded = base.encode(*texts_and_pairs(examples))
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index].input_ids))
    pad_id = base.tokenizer.token_to_id("[PAD]")
    reference = np.zeros((len(encoded), len(base.labels)), dtype=np.float32)
    logits = {name: np.zeros_like(reference) for name in predictors}
    for first in range(0, len(order), batch_size):
        indices = order[first : first + batch_size]
        batch = [encoded[index] for index in indices]
        with torch.no_grad():
            feed = {name: torch.from_numpy(array) for name, array in pad_batch(batch, pad_id).items()}
            reference[indices] = model(**feed).logits.numpy()
        for name, predictor in predictors.items():
            logits[name][indices] = predictor.logits(batch)
    results = {}
    for name, values in logits.items():
        predicted = [base.labels[index] for index in values.argmax(axis=1)]
        scores = classification_scores(gold, predicted, base.labels)
        results[name] = {
            "max_abs_logit_diff": float(np.abs(values - reference).max()),
            "labels_identical": bool((values.argmax(axis=1) == reference.argmax(axis=1)).all()),
            "accuracy": scores["accuracy"],
            "macro_f1": scores["macro_f1"],
        }
    return results


def score_classifier_variants(
    onnx_dir: Path | str, examples: Sequence[TextExample], batch_size: int
) -> dict[str, dict[str, float]]:
    """Accuracy and macro-F1 of every variant on a reporting split (test), through the client as served."""
    scores = {}
    texts, pairs = texts_and_pairs(examples)
    for name, predictor in _predictors(onnx_dir, batch_size).items():
        gold = gold_labels(examples, predictor.labels)
        predicted = [item["label"] for item in predictor.predict(texts, pairs)]
        overall = classification_scores(gold, predicted, predictor.labels)
        scores[name] = {"accuracy": overall["accuracy"], "macro_f1": overall["macro_f1"]}
    return scores


def read_split(path: Path) -> list[TextExample]:
    """A normalized split (``{"text", "pair", "label"}`` per line, ``pair`` null for single texts) as examples."""
    records = list(file_records(path))
    has_pairs = any(record.get("pair") is not None for _, record in records)
    examples = to_examples(records, normalized_columns(has_pairs))
    if not examples:
        raise ElectraError(f"{path}: no examples; the split needs labelled texts")
    return examples


class ClassificationExporter:
    """The torch side of a classifier's export (:class:`electra_model.tasks.spec.Exporter`)."""

    def load_model(self, model_dir: Path, **options: Any) -> ElectraForSequenceClassification:
        model_class = for_body(ElectraForSequenceClassification, AutoConfig.from_pretrained(model_dir), model_dir)
        return load_saved(model_dir, model_class, **options)

    def extra_files(self, model: ElectraForSequenceClassification, labels: Sequence[str]) -> dict[str, Any]:
        return {}

    def read_split(self, path: Path) -> list[TextExample]:
        return read_split(path)

    def check_variants(
        self, model: ElectraForSequenceClassification, onnx_dir: Path, examples: Sequence[TextExample], batch_size: int
    ) -> dict[str, dict[str, Any]]:
        return check_classifier_variants(model, onnx_dir, examples, batch_size)

    def score_variants(
        self, onnx_dir: Path, examples: Sequence[TextExample], batch_size: int
    ) -> dict[str, dict[str, float]]:
        return score_classifier_variants(onnx_dir, examples, batch_size)
