"""NER scores: entity-level precision/recall/F1 (conlleval chunking, via seqeval), a token-level report and a
confusion matrix over entity types.

Entity F1 is the number papers quote; the token-level report (with and without ``O``) is the one tutorials print,
and is kept separate so nobody mistakes one for the other. On B/I/O tags seqeval's default chunking is conlleval's,
entity for entity (tests/unit/code/test_conlleval.py checks it against :mod:`electra_model.tasks.ner.conlleval`).
"""

from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics import classification_report as entity_report
from sklearn.metrics import classification_report as token_report
from sklearn.metrics import confusion_matrix


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
