"""Scores and reports for sequence classification, as numbers and rows (no plotting here).

Accuracy and macro-F1 (the two a user may select epochs on), per-class precision / recall / F1, the confusion
matrix both as counts and as one ``actual,predicted`` row per example (what DVC's ``confusion`` plot template
reads), and the most confident mistakes, the examples most worth a person's look (often label noise)::

    scores = classification_scores(gold, predicted, labels)
    scores["accuracy"], scores["macro_f1"], scores["per_class"]["1"]["recall"]

scikit-learn is imported where it is used, not here: the stages import every built-in task's trainer and evaluator
(so that their DVC deps hold that code), and a NER stage should not load scikit-learn and SciPy (about a second) for
a task it does not run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from electra_model.errors import ElectraError
from electra_model.tasks.classification.data import TextExample


def _check_lengths(gold: Sequence[str], predicted: Sequence[str]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ElectraError("no examples to score; the split is empty")


def classification_scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class scores over the model's label list.

    Macro-F1 averages every label of the list, so a class the model never predicts counts as F1 0 instead of
    vanishing from the average (a classifier that always says "positive" gets macro-F1 near 0.33, not 0.67); a
    precision with no prediction to divide by is 0, as sklearn's ``zero_division=0``.
    """
    from sklearn.metrics import precision_recall_fscore_support  # see the module docstring

    _check_lengths(gold, predicted)
    precision, recall, f1, support = precision_recall_fscore_support(
        list(gold), list(predicted), labels=list(labels), zero_division=0
    )
    per_class = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    return {
        "accuracy": correct / len(gold),
        "macro_f1": float(np.mean(f1)),
        "examples": len(gold),
        "per_class": per_class,
    }


def confusion_counts(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, list]:
    """``{"labels", "matrix"}`` with ``matrix[i][j]`` the examples of label i predicted as label j (the shape
    :func:`electra_model.plots.save_confusion_png` draws)."""
    from sklearn.metrics import confusion_matrix  # see the module docstring

    _check_lengths(gold, predicted)
    matrix = confusion_matrix(list(gold), list(predicted), labels=list(labels))
    return {"labels": list(labels), "matrix": matrix.tolist()}


def confusion_plot_rows(gold: Sequence[str], predicted: Sequence[str]) -> list[dict[str, str]]:
    """One ``{"actual", "predicted"}`` row per example, in input order: DVC's confusion template counts them."""
    _check_lengths(gold, predicted)
    return [{"actual": g, "predicted": p} for g, p in zip(gold, predicted, strict=True)]


def confident_mistakes(
    examples: Sequence[TextExample], probabilities: np.ndarray, labels: Sequence[str], top: int
) -> list[dict[str, Any]]:
    """The ``top`` wrong predictions the model was surest of, surest first (ties in input order), each with its
    text, gold and predicted label, the predicted label's probability and where the example came from."""
    if len(examples) != len(probabilities):
        raise ValueError(f"{len(examples)} examples but {len(probabilities)} rows of probabilities")
    best = probabilities.argmax(axis=1)
    wrong = [index for index, example in enumerate(examples) if labels[best[index]] != example.label]
    wrong.sort(key=lambda index: -float(probabilities[index, best[index]]))
    return [
        {
            "text": examples[index].text,
            **({"pair": examples[index].pair} if examples[index].pair is not None else {}),
            "gold": examples[index].label,
            "predicted": labels[best[index]],
            "probability": float(probabilities[index, best[index]]),
            "where": examples[index].where,
        }
        for index in wrong[:top]
    ]
