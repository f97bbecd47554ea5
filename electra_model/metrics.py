"""NER scores: entity-level precision/recall/F1 (conlleval chunking, via seqeval), a token-level report and a
confusion matrix over entity types.

Entity F1 is the number papers quote; the token-level report (with and without ``O``) is the one tutorials print,
and is kept separate so nobody mistakes one for the other. On B/I/O tags seqeval's default chunking is conlleval's,
entity for entity (tests/unit/code/test_conlleval.py checks it against :mod:`electra_model.conlleval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seqeval.metrics import classification_report as entity_report
from sklearn.metrics import classification_report as token_report
from sklearn.metrics import confusion_matrix

from electra_model.io import atomic_file


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """Entity-level P/R/F1 per type plus micro and macro averages, with conlleval's chunking rules."""
    report = entity_report(list(map(list, gold)), list(map(list, predicted)), output_dict=True, zero_division=0)
    scores: dict[str, dict[str, float]] = {}
    for name, values in report.items():
        key = {"micro avg": "overall", "macro avg": "macro"}.get(name, name)
        if key == "weighted avg":
            continue
        scores[key] = {
            "precision": float(values["precision"]),
            "recall": float(values["recall"]),
            "f1": float(values["f1-score"]),
            "support": int(values["support"]),
        }
    if "overall" not in scores:
        scores["overall"] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    return scores


def token_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, str | float]:
    """Token-level classification report as text, with and without ``O``, and token accuracy."""
    flat_gold = [tag for sentence in gold for tag in sentence]
    flat_predicted = [tag for sentence in predicted for tag in sentence]
    labels = sorted(set(flat_gold) | set(flat_predicted), key=lambda tag: (tag == "O", tag[2:], tag))
    entity_labels = [tag for tag in labels if tag != "O"]
    correct = sum(g == p for g, p in zip(flat_gold, flat_predicted))
    return {
        "accuracy": correct / max(1, len(flat_gold)),
        "report_with_o": token_report(flat_gold, flat_predicted, labels=labels, digits=4, zero_division=0),
        "report_without_o": token_report(
            flat_gold, flat_predicted, labels=entity_labels, digits=4, zero_division=0
        )
        if entity_labels
        else "",
    }



def entity_type(tag: str) -> str:
    """``B-PER`` and ``I-PER`` -> ``PER``; ``O`` stays ``O``."""
    return tag if tag == "O" else tag[2:]


def type_confusion(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, list]:
    """Token counts of gold type (rows) against predicted type (columns), entity types sorted and ``O`` last: the
    off-diagonal cells show which types the model mixes up, and the ``O`` row and column what it misses or invents."""
    flat_gold = [entity_type(tag) for sentence in gold for tag in sentence]
    flat_predicted = [entity_type(tag) for sentence in predicted for tag in sentence]
    labels = sorted((set(flat_gold) | set(flat_predicted)) - {"O"}) + ["O"]
    matrix = confusion_matrix(flat_gold, flat_predicted, labels=labels)
    return {"labels": labels, "matrix": matrix.tolist()}


def save_confusion_png(confusion: dict[str, list], path: Path, title: str) -> None:
    """The confusion matrix as a heat map with each cell's count, rows normalised so rare types stay visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels, counts = confusion["labels"], np.asarray(confusion["matrix"])
    shares = counts / np.maximum(1, counts.sum(axis=1, keepdims=True))
    figure, axis = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.1 * len(labels) + 1.5))
    axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for row in range(len(labels)):
        for column in range(len(labels)):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axis.text(column, row, str(counts[row, column]), ha="center", va="center", color=colour, fontsize=8)
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    axis.set_title(title)
    figure.tight_layout()
    with atomic_file(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
