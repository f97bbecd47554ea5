"""Token tagging (NER) in Label Studio: entity types as ``<Labels>`` over a ``<Text>``, entities as character spans,
and annotated spans back to CoNLL IOB2 sentences.

A task's text is cut into words when it is pushed, by the rules the raw-text path cuts with
(:func:`electra_model.client.text_words.split_words`), and the cut travels in the task's data as ``words``
(``[start, end]`` per word): a gold sentence pushed from a CoNLL file keeps its own words that way, so pushing gold
labels and pulling them back gives the same file. A task without ``words`` (imported by hand) is cut on pull.
An annotated span must cover whole words (surrounding spaces are trimmed); a span that cuts a word in two, spans
that overlap and labels the project does not allow make the whole task a listed skip, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from electra_model.annotate.convert import FROM_NAME, TO_NAME, Skipped, result_labels
from electra_model.client.ner import Entity, entity_spans
from electra_model.client.text_words import detokenize, split_words
from electra_model.tasks.ner.conll import Sentence, entity_types, read_conll, write_conll

if TYPE_CHECKING:
    from electra_model.config import Params

Span = tuple[int, int]


def span_item(kind: str, covered: str, start: int, end: int, score: float | None = None) -> dict[str, Any]:
    """One labelled span (``covered`` is its text) as a Label Studio result item."""
    value = {"start": start, "end": end, "text": covered, "labels": [kind]}
    return {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels", "value": value,
            **({"score": score} if score is not None else {})}


def words_of(data: Mapping[str, Any]) -> list[Span]:
    """The task's words as ``(start, end)``: the cut pushed with it, else the raw-text path's cut of its text."""
    text = data.get(TO_NAME)
    if not isinstance(text, str):
        raise Skipped(f"its data has no text under {TO_NAME!r} (keys: {sorted(data)})")
    if "words" not in data:
        return [(start, end) for _, start, end in split_words(text)]
    words, position = [], 0
    for item in data["words"]:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(n, int) for n in item)
                and position <= item[0] < item[1] <= len(text) and not any(c.isspace() for c in text[item[0]:item[1]])):
            raise Skipped(f"its data's 'words' entry {item!r} is not a [start, end] word of the text in order")
        words.append((item[0], item[1]))
        position = item[1]
    return words


def _trimmed(text: str, start: int, end: int) -> Span:
    """A span without the spaces an annotator's selection often takes in at its edges."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def tags_for(text: str, words: Sequence[Span], spans: Sequence[tuple[str, int, int]]) -> list[str]:
    """IOB2 tags of ``words`` from labelled character spans ``(type, start, end)``; :class:`Skipped` names a span
    that cuts a word, lies between words or overlaps another."""
    starts = {start: index for index, (start, _) in enumerate(words)}
    ends = {end: index for index, (_, end) in enumerate(words)}
    tags = ["O"] * len(words)
    placed: list[tuple[int, int, str]] = []
    for kind, raw_start, raw_end in sorted(spans, key=lambda span: (span[1], span[2])):
        start, end = _trimmed(text, raw_start, raw_end)
        if start not in starts or end not in ends or starts[start] > ends[end]:
            inside = [text[s:e] for s, e in words if s < end and e > start and (s < start or e > end)]
            where = f"cuts the word {inside[0]!r} in two" if inside else "covers no whole word"
            raise Skipped(f"the {kind} span {text[raw_start:raw_end]!r} ({raw_start}-{raw_end}) {where}; "
                          "move its edges to word boundaries")
        first, last = starts[start], ends[end]
        if placed and first <= placed[-1][1]:
            other = placed[-1]
            raise Skipped(f"the {kind} span {text[start:end]!r} overlaps the {other[2]} span "
                          f"{text[words[other[0]][0]:words[other[1]][1]]!r}; keep one of them")
        placed.append((first, last, kind))
        tags[first:last + 1] = [f"B-{kind}"] + [f"I-{kind}"] * (last - first)
    return tags


class SpanConverter:
    """Token tagging's converter (:class:`electra_model.annotate.convert.Converter`)."""

    kind = "token_tagging"
    data_file = "annotations.txt"

    def label_names(self, labels: Sequence[str]) -> list[str]:
        return sorted({label[2:] for label in labels if label != "O"})

    def label_config(self, names: Sequence[str], pairs: bool) -> str:
        if pairs:
            raise ValueError("a token tagger labels single texts")
        labels = "".join(f"<Label value={quoteattr(name)}/>" for name in names)
        return (f'<View><Labels name="{FROM_NAME}" toName="{TO_NAME}">{labels}</Labels>'
                f'<Text name="{TO_NAME}" value="${TO_NAME}"/></View>')

    def task_data(self, text: str, pair: str | None) -> dict[str, Any]:
        return {TO_NAME: text, "words": [[start, end] for _, start, end in split_words(text)]}

    def prediction(self, predicted: Sequence[Entity], model_version: str) -> dict[str, Any]:
        """The entities with their scores; the task's score is its least sure entity's (none: no score), so that
        sorting by it in Label Studio puts the doubtful ones first."""
        result = [span_item(entity.type, entity.text, entity.start, entity.end, entity.score) for entity in predicted]
        scores = [entity.score for entity in predicted]
        return {"model_version": model_version, "result": result, **({"score": min(scores)} if scores else {})}

    def read_gold(self, path: Path, params: Params) -> tuple[list[str], list[dict[str, Any]]]:
        sentences = read_conll(path, params.ner.scheme)
        tasks = []
        for sentence in sentences:
            text, placed = detokenize(sentence.tokens)
            result = []
            for kind, first, last in entity_spans(sentence.tags):
                start, end = placed[first][1], placed[last - 1][2]
                result.append(span_item(kind, text[start:end], start, end))
            data = {TO_NAME: text, "words": [[start, end] for _, start, end in placed]}
            tasks.append({"data": data, "annotations": [{"result": result}]})
        return sorted(entity_types(sentences)), tasks

    def record(self, data: Mapping[str, Any], result: Sequence[Mapping[str, Any]], known: Sequence[str]) -> Sentence:
        words = words_of(data)
        if not words:
            raise Skipped("its text is empty (no words to tag)")
        text = str(data[TO_NAME])
        spans = []
        for item in result:
            if item.get("type") != "labels":
                raise Skipped(f"it holds a {item.get('type')!r} result; a token tagging project takes labelled spans")
            labels, value = result_labels(item, "labels"), item.get("value") or {}
            if len(labels) != 1:
                raise Skipped(f"the span {value.get('text')!r} has {len(labels)} labels {labels}; give it one")
            if labels[0] not in known:
                raise Skipped(f"the span {value.get('text')!r} has the label {labels[0]!r}, which the project does "
                              f"not list ({', '.join(known)}); relabel it or add the label")
            spans.append((labels[0], int(value["start"]), int(value["end"])))
        tokens = tuple(text[start:end] for start, end in words)
        return Sentence(tokens, tuple(tags_for(text, words, spans)))

    def write(self, records: Sequence[Sentence], path: Path, params: Params) -> None:
        write_conll(path, records)

