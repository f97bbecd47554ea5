"""Entity scores follow conlleval's chunking; token scores are reported separately."""

from __future__ import annotations

import pytest

from electra_model.metrics import entity_scores, token_scores


def test_entity_scores_count_whole_entities():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    scores = entity_scores(gold, pred)
    assert scores["overall"]["precision"] == pytest.approx(2 / 3)
    assert scores["overall"]["recall"] == pytest.approx(2 / 3)
    assert scores["PER"]["f1"] == 1.0 and scores["LOC"]["f1"] == 0.0
    assert scores["macro"]["support"] == 3


def test_a_partial_entity_is_wrong():
    scores = entity_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])
    assert scores["overall"]["f1"] == 0.0


def test_all_o_baseline_scores_zero():
    assert entity_scores([["B-PER", "O"]], [["O", "O"]])["overall"]["f1"] == 0.0


def test_token_scores_with_and_without_o():
    scores = token_scores([["B-PER", "O", "O"]], [["B-PER", "O", "B-LOC"]])
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert " O " in scores["report_with_o"] and " O " not in scores["report_without_o"]

