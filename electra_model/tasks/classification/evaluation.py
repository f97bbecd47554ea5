"""Sequence classification's evaluation: scores of a fine-tuned classifier on a held-out split, and its reports.

Metrics: ``accuracy``, ``macro_f1`` and ``per_class`` precision / recall / F1 / support over the model's labels.
Reports: ``confusion_matrix.json`` (counts, rows gold), ``predictions.jsonl`` (per example: where, gold,
predicted, probability), and the most confident mistakes (``classification.top_mistakes`` of them) as
``mistakes.json`` and the readable ``mistakes.txt`` -- the examples most worth a person's look, often label noise.
The confusion plot is one ``actual,predicted`` row per example, for DVC's ``confusion`` template, with a PNG beside.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import AutoConfig, ElectraForSequenceClassification

from electra_model.config import Params
from electra_model.data.tokenizer import load_backend_tokenizer
from electra_model.errors import ElectraError
from electra_model.io import atomic_file
from electra_model.plots import save_confusion_png
from electra_model.tasks.classification.data import TextExample, check_labels, read_normalized
from electra_model.tasks.checkpoints import for_body
from electra_model.tasks.classification.metrics import confident_mistakes, confusion_counts, confusion_plot_rows
from electra_model.tasks.classification.train import evaluate_split, model_labels


def load_finetuned_classifier(model_dir: Path) -> ElectraForSequenceClassification:
    """The classifier the finetune stage saved; a folder holding another kind of model is an error naming it."""
    if not (model_dir / "config.json").is_file():
        raise ElectraError(f"{model_dir}: no config.json, so no fine-tuned model here; run `dvc repro finetune`")
    config = AutoConfig.from_pretrained(model_dir)
    model_class = for_body(ElectraForSequenceClassification, config, model_dir)  # on whichever backbone it has
    if model_class.__name__ not in (config.architectures or []):
        raise ElectraError(
            f"{model_dir / 'config.json'}: architectures {config.architectures} is not a sequence classifier; the model "
            "was fine-tuned for another task: run `dvc repro finetune` with task: classification"
        )
    return model_class.from_pretrained(model_dir)


def render_mistakes(mistakes: Sequence[dict[str, Any]], examples: int) -> str:
    """The confident mistakes as lines a person reads top to bottom."""
    lines = [f"{len(mistakes)} most confident mistakes of {examples} examples, surest first", ""]
    for mistake in mistakes:
        lines.append(f"{mistake['probability']:.3f}  gold {mistake['gold']!r}  predicted {mistake['predicted']!r}  "
                     f"({mistake['where']})")
        lines.append(f"       {mistake['text']}")
        if "pair" in mistake:
            lines.append(f"       {mistake['pair']}")
    return "\n".join(lines) + "\n"


def write_confusion_plots(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str], csv_path: Path) -> None:
    """One ``actual,predicted`` row per example for DVC's confusion template, and the matrix as a PNG beside it."""
    with atomic_file(csv_path) as handle:
        writer = csv.DictWriter(handle, fieldnames=["actual", "predicted"])
        writer.writeheader()
        writer.writerows(confusion_plot_rows(gold, predicted))
    save_confusion_png(confusion_counts(gold, predicted, labels), csv_path.with_suffix(".png"), "label per text")


def write_predictions(path: Path, examples: Sequence[TextExample], predicted: Sequence[str], confidence: Sequence[float]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for example, label, probability in zip(examples, predicted, confidence, strict=True):
            record = {"where": example.where, "gold": example.label, "predicted": label, "probability": probability}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


class ClassificationEvaluator:
    """Sequence classification's :class:`electra_model.tasks.base.Evaluator`."""

    def evaluate(
        self, params: Params, model_dir: Path, split_path: Path, split: str, reports: Path, confusion: Path
    ) -> dict[str, Any]:
        return evaluate_classification(params, model_dir, split_path, split, reports, confusion)


def evaluate_classification(
    params: Params, model_dir: Path, split_path: Path, split: str, reports: Path, confusion: Path
) -> dict[str, Any]:
    """Score the classifier on ``split`` (the normalized ``split_path``); write the reports and the confusion plot;
    return the metrics."""
    examples = read_normalized(split_path, params.classification)
    model = load_finetuned_classifier(model_dir)
    labels = model_labels(model)
    check_labels(examples, labels, params.classification)
    tokenizer = load_backend_tokenizer(model_dir)
    scores, probabilities = evaluate_split(
        model, tokenizer, examples, params.finetune.max_seq_len, params.evaluate.batch_size
    )
    predicted = [labels[index] for index in probabilities.argmax(axis=1)]
    gold = [str(example.label) for example in examples]
    counts = confusion_counts(gold, predicted, labels)
    mistakes = confident_mistakes(examples, probabilities, labels, params.classification.top_mistakes)
    (reports / "confusion_matrix.json").write_text(json.dumps(counts, indent=2), encoding="utf-8")
    (reports / "mistakes.json").write_text(json.dumps(mistakes, indent=2, ensure_ascii=False), encoding="utf-8")
    (reports / "mistakes.txt").write_text(render_mistakes(mistakes, len(examples)), encoding="utf-8")
    write_predictions(reports / "predictions.jsonl", examples, predicted, probabilities.max(axis=1).tolist())
    write_confusion_plots(gold, predicted, labels, confusion)
    return {"split": split, "labels": labels, "mistakes": sum(g != p for g, p in zip(gold, predicted)), **scores}
