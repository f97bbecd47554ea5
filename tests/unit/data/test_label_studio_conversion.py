"""Label Studio tasks to the task's data and back, without a server: every bad case is a listed skip or one line."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path
from typing import Any

import pytest

from electra_model.annotate.choices import ChoiceConverter, choice_item
from electra_model.annotate.convert import Skipped, config_labels
from electra_model.annotate.converters import converter_for
from electra_model.annotate.pull import convert_tasks
from electra_model.annotate.spans import SpanConverter, span_item
from electra_model.annotate.studio import LabelStudio
from electra_model.client.ner import Entity
from electra_model.errors import ElectraError
from electra_model.tasks.ner.conll import Sentence, read_conll, write_conll
from tests.params import params

CONLL = Path(__file__).resolve().parents[4] / "shared" / "data" / "conll2003" / "valid.txt.gz"
SPANS, CHOICES = SpanConverter(), ChoiceConverter()
TEXT = "Angela Merkel met U.S. officials in Paris."


def task(task_id: int, data: dict[str, Any], *annotations: dict[str, Any]) -> dict[str, Any]:
    return {"id": task_id, "data": data, "annotations": list(annotations)}


def done(*result: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": 1, "result": list(result), "was_cancelled": False, **fields}


def span(kind: str, start: int, end: int, text: str = TEXT) -> dict[str, Any]:
    return span_item(kind, text[start:end], start, end)


def tags(result: list[dict[str, Any]], text: str = TEXT) -> tuple[str, ...]:
    return SPANS.record(SPANS.task_data(text, None), result, ["PER", "LOC", "ORG"]).tags


def test_the_converters_are_found_by_predictor_kind() -> None:
    assert converter_for("token_tagging").data_file == "annotations.txt"
    assert converter_for("text_classification").data_file == "annotations.jsonl"
    with pytest.raises(ElectraError, match="no Label Studio converter for predictor kind 'parsing'"):
        converter_for("parsing")


def test_spans_become_iob2_tags_of_the_raw_text_words() -> None:
    # "U.S." stays one word, as the raw-text path cuts it; a selection's trailing space is trimmed
    assert tags([span("PER", 0, 14), span("LOC", 18, 22), span("LOC", 36, 41)]) == (
        "B-PER", "I-PER", "O", "B-LOC", "O", "O", "B-LOC", "O")


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ([span("PER", 0, 10)], r"the PER span 'Angela Mer' \(0-10\) cuts the word 'Merkel' in two"),
        ([span("PER", 0, 13), span("LOC", 7, 13)], "the LOC span 'Merkel' overlaps the PER span 'Angela Merkel'"),
        ([span("GPE", 36, 41)], "the label 'GPE', which the project does not list"),
        ([{**span("PER", 0, 6), "value": {**span("PER", 0, 6)["value"], "labels": ["PER", "LOC"]}}],
         "has 2 labels"),
        ([choice_item("positive")], "holds a 'choices' result"),
    ],
)
def test_a_bad_span_skips_the_task_with_its_reason(result: list[dict[str, Any]], reason: str) -> None:
    with pytest.raises(Skipped, match=reason):
        tags(result)


def test_pull_lists_every_task_it_leaves_out_and_keeps_the_rest() -> None:
    good = task(1, SPANS.task_data(TEXT, None), done(span("PER", 0, 13)))
    cancelled = task(2, SPANS.task_data(TEXT, None), done(was_cancelled=True))
    pending = task(3, SPANS.task_data(TEXT, None))
    empty = task(4, SPANS.task_data("   ", None), done())
    cut = task(5, SPANS.task_data(TEXT, None), done(span("PER", 0, 3)))
    pulled = convert_tasks([cut, empty, pending, cancelled, good], SPANS, ["PER", "LOC"])
    assert [sentence.tags[:2] for sentence in pulled.records] == [("B-PER", "I-PER")]
    assert [task_id for task_id, _ in pulled.skipped] == [2, 3, 4, 5]
    assert "skipped by the annotator" in pulled.skipped[0][1]
    assert pulled.skipped[1][1] == "not annotated yet"
    assert "empty" in pulled.skipped[2][1]
    assert "cuts the word 'Angela'" in pulled.report().splitlines()[3]


def test_the_annotation_that_counts_is_ground_truth_else_the_latest() -> None:
    older = done(span("PER", 0, 13), updated_at="2026-01-01T00:00:00Z")
    newer = done(span("LOC", 36, 41), updated_at="2026-02-01T00:00:00Z")
    data = SPANS.task_data(TEXT, None)
    assert convert_tasks([task(1, data, older, newer)], SPANS, ["PER", "LOC"]).records[0].tags[0] == "O"
    truth = {**older, "ground_truth": True}
    assert convert_tasks([task(1, data, truth, newer)], SPANS, ["PER", "LOC"]).records[0].tags[0] == "B-PER"


def test_a_task_without_a_pushed_word_cut_is_cut_as_raw_text_and_a_broken_cut_is_a_skip() -> None:
    assert tags([span("LOC", 18, 22)]) == SPANS.record({"text": TEXT}, [span("LOC", 18, 22)], ["LOC"]).tags
    with pytest.raises(Skipped, match="'words' entry"):
        SPANS.record({"text": TEXT, "words": [[0, 20]]}, [], ["LOC"])


def test_predictions_carry_offsets_scores_and_the_model_version() -> None:
    entities = [Entity("PER", "Angela Merkel", 0, 13, 0.9), Entity("LOC", "Paris", 36, 41, 0.6)]
    prediction = SPANS.prediction(entities, "models:/electra-ner@champion (int8)")
    assert prediction["model_version"] == "models:/electra-ner@champion (int8)"
    assert prediction["score"] == 0.6
    assert [item["value"] for item in prediction["result"]] == [
        {"start": 0, "end": 13, "text": "Angela Merkel", "labels": ["PER"]},
        {"start": 36, "end": 41, "text": "Paris", "labels": ["LOC"]},
    ]
    assert "score" not in SPANS.prediction([], "v")
    choice = CHOICES.prediction({"label": "positive", "score": 0.8, "scores": {}}, "v")
    assert choice["score"] == 0.8 and choice["result"][0]["value"] == {"choices": ["positive"]}


def test_the_labelling_configuration_lists_the_model_labels() -> None:
    names = SPANS.label_names(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    assert names == ["LOC", "PER"]
    assert config_labels(SPANS.label_config(names, False), "here") == ["LOC", "PER"]
    assert config_labels(CHOICES.label_config(["neg", 'a "quoted" one'], True), "here") == ["neg", 'a "quoted" one']
    with pytest.raises(ElectraError, match="here: the labelling configuration is not XML"):
        config_labels("<View>", "here")


@pytest.mark.skipif(not CONLL.is_file(), reason=f"{CONLL} not present")
def test_gold_conll_goes_out_and_comes_back_byte_identical(tmp_path: Path) -> None:
    slice_lines = gzip.open(CONLL, "rt", encoding="utf-8").read().splitlines()[:600]
    (tmp_path / "slice.txt").write_text("\n".join(slice_lines) + "\n", encoding="utf-8")
    write_conll(tmp_path / "gold.txt", read_conll(tmp_path / "slice.txt"))
    names, tasks = SPANS.read_gold(tmp_path / "gold.txt", params())
    exported = [{"id": number, **item} for number, item in enumerate(tasks, start=1)]
    pulled = convert_tasks(exported, SPANS, names)
    assert not pulled.skipped
    SPANS.write(pulled.records, tmp_path / "back.txt", params())
    assert (tmp_path / "back.txt").read_bytes() == (tmp_path / "gold.txt").read_bytes()


def test_classification_choices_round_trip_and_bad_choices_are_skips(tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"text": "a gripping film", "label": "positive"}\n{"text": "dull", "label": "negative"}\n',
                    encoding="utf-8")
    columns = params({"classification.text_column": "text"})
    names, tasks = CHOICES.read_gold(gold, columns)
    pulled = convert_tasks([{"id": n, **item} for n, item in enumerate(tasks)], CHOICES, names)
    CHOICES.write(pulled.records, tmp_path / "back.jsonl", columns)
    assert (tmp_path / "back.jsonl").read_bytes() == gold.read_bytes()
    data = CHOICES.task_data("fine", None)
    for result, reason in [([], "0 chosen labels"), ([choice_item("meh")], "'meh' is not one the project lists")]:
        with pytest.raises(Skipped, match=reason):
            CHOICES.record(data, result, names)


def test_a_server_that_is_down_is_named_with_the_command_that_starts_it() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    studio = LabelStudio(f"http://127.0.0.1:{port}", "token", timeout_s=5)
    with pytest.raises(ElectraError, match=rf"Label Studio at http://127.0.0.1:{port} does not answer .*make label-studio"):
        studio.find_project("electra-ner")


def test_sentences_pulled_are_sentences_the_pipeline_reads(tmp_path: Path) -> None:
    record = SPANS.record(SPANS.task_data(TEXT, None), [span("PER", 0, 13)], ["PER"])
    SPANS.write([record], tmp_path / "annotations.txt", params())
    assert read_conll(tmp_path / "annotations.txt") == [Sentence(record.tokens, record.tags)]
