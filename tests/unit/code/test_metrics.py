"""Entity scores follow conlleval's chunking; token scores are reported separately."""

from __future__ import annotations

import pytest

from electra_model.tasks.ner.conll import Sentence
from electra_model.tasks.ner.error_analysis import analyse, render
from electra_model.plots import save_confusion_png
from electra_model.tasks.ner.metrics import entity_scores, token_scores, type_confusion


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



def test_type_confusion_counts_tokens_by_gold_and_predicted_type():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "B-LOC", "O", "O"], ["B-ORG", "B-PER"]]
    confusion = type_confusion(gold, pred)
    assert confusion["labels"] == ["LOC", "ORG", "PER", "O"]
    assert confusion["matrix"] == [[0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1]]


def test_confusion_png_is_written(tmp_path):
    path = tmp_path / "confusion.png"
    save_confusion_png(type_confusion([["B-PER", "O"]], [["B-LOC", "O"]]), path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def sentence(words: str, tags: str) -> Sentence:
    return Sentence(tuple(words.split()), tuple(tags.split()))


def test_error_analysis_puts_each_wrong_entity_in_one_class():
    sentences = [
        sentence("John Smith met Anna in New York", "B-PER I-PER O B-PER O B-LOC I-LOC"),
        sentence("Reuters said Monday", "B-ORG O O"),
        sentence("the EU and Bonn", "O B-ORG O B-LOC"),
    ]
    predicted = [
        "B-PER I-PER O B-LOC O B-LOC O".split(),  # correct, type (Anna), boundary (New York -> New)
        "O O B-MISC".split(),  # missed (Reuters), spurious (Monday)
        "B-LOC I-LOC O B-LOC".split(),  # boundary + type (the EU), correct
    ]
    analysis = analyse(sentences, predicted, top=5)
    expected = {"correct": 2, "type": 1, "boundary": 1, "boundary_type": 1, "spurious": 1, "missed": 1}
    assert analysis["counts"] == expected
    assert analysis["per_type"]["PER"] == {**dict.fromkeys(expected, 0), "correct": 1, "type": 1}
    common = {category: [e["entity"] for e in entries] for category, entries in analysis["most_common"].items()}
    assert common["type"] == ['"Anna" PER -> LOC']
    assert common["boundary"] == ['"New York" LOC -> "New" LOC']
    assert common["boundary_type"] == ['"EU" ORG -> "the EU" LOC']
    assert common["missed"] == ['"Reuters" ORG -> O'] and common["spurious"] == ['"Monday" O -> MISC']
    assert "boundary + type" in render(analysis)


def test_most_confused_strings_are_ranked_by_count():
    sentences = [sentence("Washington", "B-LOC")] * 3 + [sentence("Paris", "B-LOC")]
    analysis = analyse(sentences, [["B-PER"]] * 4, top=1)
    assert analysis["most_common"]["type"] == [{"entity": '"Washington" LOC -> PER', "count": 3}]
