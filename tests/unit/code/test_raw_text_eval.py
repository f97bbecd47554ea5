"""Entities found in typed text are scored on the data's own words: character spans back to word tags."""

from __future__ import annotations

from electra_model.client.ner import Entity
from electra_model.tasks.ner.raw_text_eval import tags_on_words
from electra_model.client.text_words import detokenize


def test_entity_spans_become_tags_of_the_words_they_cover():
    words = ["Ortana", "Velsk", "visited", "New", "Karvi", "'s", "port", "."]
    text, spans = detokenize(words)
    assert text == "Ortana Velsk visited New Karvi's port."
    entities = [Entity("PER", "Ortana Velsk", 0, 12, 0.9), Entity("LOC", "New Karvi", 21, 30, 0.8)]
    assert tags_on_words(spans, entities) == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O", "O"]


def test_an_entity_that_covers_part_of_a_word_tags_the_whole_word_once():
    text, spans = detokenize(["Jean-Marie", "Ostland", "met", "Karvi"])
    entities = [Entity("PER", "Jean", 0, 4, 0.5), Entity("LOC", "Marie Ostland", 5, 18, 0.5)]
    # the first entity that reaches a word claims it; a later one starts on the first word it still can claim
    assert tags_on_words(spans, entities) == ["B-PER", "B-LOC", "O", "O"]
    assert tags_on_words(spans, []) == ["O"] * 4
