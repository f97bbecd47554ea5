"""Classification scores and reports against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from electra_model.errors import ElectraError
from electra_model.tasks.classification.data import TextExample
from electra_model.tasks.classification.metrics import (
    classification_scores,
    confident_mistakes,
    confusion_counts,
    confusion_plot_rows,
)

LABELS = ["neg", "neu", "pos"]
GOLD = ["pos", "pos", "pos", "neg", "neg", "neu"]
PREDICTED = ["pos", "pos", "neg", "neg", "pos", "pos"]


def test_scores_by_hand() -> None:
    scores = classification_scores(GOLD, PREDICTED, LABELS)
    assert scores["accuracy"] == pytest.approx(3 / 6)
    # pos: 2 of 4 predictions right, 2 of 3 found; neg: 1 of 2 right, 1 of 2 found; neu: never predicted
    assert scores["per_class"]["pos"] == pytest.approx({"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "support": 3})
    assert scores["per_class"]["neg"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert scores["per_class"]["neu"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["macro_f1"] == pytest.approx((4 / 7 + 0.5 + 0.0) / 3)
    assert scores["examples"] == 6


def test_a_constant_classifier_has_a_low_macro_f1() -> None:
    scores = classification_scores(["pos", "pos", "neg"], ["pos", "pos", "pos"], ["neg", "pos"])
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["macro_f1"] == pytest.approx((0 + 0.8) / 2)


def test_confusion_counts_and_plot_rows() -> None:
    assert confusion_counts(GOLD, PREDICTED, LABELS) == {
        "labels": LABELS,
        "matrix": [[1, 0, 1], [0, 0, 1], [1, 0, 2]],
    }
    rows = confusion_plot_rows(GOLD, PREDICTED)
    assert rows[2] == {"actual": "pos", "predicted": "neg"} and len(rows) == 6


def test_empty_split_is_a_user_error() -> None:
    with pytest.raises(ElectraError, match="no examples"):
        classification_scores([], [], LABELS)


def test_most_confident_mistakes_first() -> None:
    examples = [
        TextExample("fine", None, "pos", "f:2"),
        TextExample("awful", None, "neg", "f:3"),
        TextExample("so-so", "really", "neu", "f:4"),
        TextExample("great", None, "pos", "f:5"),
    ]
    probabilities = np.array([[0.1, 0.1, 0.8], [0.2, 0.1, 0.7], [0.05, 0.05, 0.9], [0.6, 0.1, 0.3]])
    mistakes = confident_mistakes(examples, probabilities, LABELS, top=2)
    assert mistakes == [
        {"text": "so-so", "pair": "really", "gold": "neu", "predicted": "pos", "probability": 0.9, "where": "f:4"},
        {"text": "awful", "gold": "neg", "predicted": "pos", "probability": 0.7, "where": "f:3"},
    ]
    assert len(confident_mistakes(examples, probabilities, LABELS, top=10)) == 3
