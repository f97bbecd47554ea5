"""Sequence classification's part of the model card (:class:`electra_model.tasks.spec.TaskCard`): test scores
per class, and the failure modes from the evaluate stage's confusion matrix and most confident mistakes.

Torch-free: it reads only what the evaluate stage recorded."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from electra_model.errors import ElectraError
from electra_model.tasks.spec import Cell, TaskCard

CONFUSION_REPORT = "confusion_matrix.json"
CONFUSIONS_SHOWN = 3
HEADER = ("class", "test examples", "precision", "recall", "F1")


def results(evaluation: Mapping[str, Any]) -> tuple[tuple[Cell, ...], ...]:
    """One row per class, in the model's label order."""
    per_class = evaluation["per_class"]
    return tuple(
        (label, per_class[label]["support"], per_class[label]["precision"], per_class[label]["recall"],
         per_class[label]["f1"])
        for label in evaluation["labels"]
    )


def failure_modes(evaluation: Mapping[str, Any], reports: Path) -> tuple[str, ...]:
    """The mistakes in all, then the most frequent confusions (gold class taken for another)."""
    path = reports / CONFUSION_REPORT
    if not path.is_file():
        raise ElectraError(f"{path} is missing: the evaluate stage writes it; run `dvc repro evaluate`")
    confusion = json.loads(path.read_text(encoding="utf-8"))
    labels, matrix = confusion["labels"], confusion["matrix"]
    pairs = sorted(((matrix[i][j], labels[i], labels[j]) for i in range(len(labels)) for j in range(len(labels))
                    if i != j and matrix[i][j]), key=lambda pair: (-pair[0], pair[1], pair[2]))
    lines = [f"{evaluation['mistakes']} of {evaluation['examples']} test examples are misclassified; "
             "the most confident ones are listed in the evaluate stage's `mistakes.txt`"]
    lines += [f"`{gold}` taken for `{predicted}`: {count} of {sum(matrix[labels.index(gold)])} `{gold}` examples"
              for count, gold, predicted in pairs[:CONFUSIONS_SHOWN]]
    return tuple(lines)


def classification_card(evaluation: Mapping[str, Any], reports: Path) -> TaskCard:
    """The card hook of :data:`electra_model.tasks.classification.spec.CLASSIFICATION`."""
    return TaskCard(
        pipeline_tag="text-classification",
        purpose=(f"Labels a text (or a pair of texts) as one of {', '.join(evaluation['labels'])}, "
                 "with a probability for every label."),
        results_header=HEADER,
        results=results(evaluation),
        headline=(("accuracy", "accuracy", evaluation["accuracy"]), ("f1", "macro F1", evaluation["macro_f1"])),
        failure_modes=failure_modes(evaluation, reports),
        checkpoint_loading="`transformers.pipeline(\"text-classification\", model=FOLDER, top_k=None)` loads it.",
    )
