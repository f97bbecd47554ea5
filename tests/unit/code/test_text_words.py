"""Text <-> words by CoNLL-2003's rules: what the client cuts must be the words the model was trained on.

The sentences are invented, in the shape of CoNLL-2003's (no real data is in the repository)."""

from __future__ import annotations

import pytest

from electra_model.client.text_words import detokenize, split_words


def words_of(text: str) -> list[str]:
    spans = split_words(text)
    assert all(text[start:end] == word for word, start, end in spans)
    return [word for word, _, _ in spans]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("The U.S. Treasury said.", ["The", "U.S.", "Treasury", "said", "."]),
        ("Jean-Marie Le Pen's party won't go.", ["Jean-Marie", "Le", "Pen", "'s", "party", "wo", "n't", "go", "."]),
        ("Profit rose 5% to $1,234.50 (from 1996-12-06).",
         ["Profit", "rose", "5", "%", "to", "$", "1,234.50", "(", "from", "1996-12-06", ")", "."]),
        ('He said "no comment" to Reuters.', ["He", "said", '"', "no", "comment", '"', "to", "Reuters", "."]),
        ("See www.reuters.com or http://x.org/a?b=1, mail a.b@c.com.",
         ["See", "www.reuters.com", "or", "http://x.org/a?b=1", ",", "mail", "a.b@c.com", "."]),
        ("Acme Inc. and J. Smith met Sen. Dole", ["Acme", "Inc.", "and", "J.", "Smith", "met", "Sen.", "Dole"]),
        ("It was founded by Acme Inc.", ["It", "was", "founded", "by", "Acme", "Inc", "."]),
        ("1. Ivanisevic ( Croatia ) 2-1", ["1.", "Ivanisevic", "(", "Croatia", ")", "2-1"]),
        ("Wait... «Paris»!", ["Wait", "...", "«", "Paris", "»", "!"]),
        ("O'Neill scored.", ["O'Neill", "scored", "."]),
    ],
)
def test_text_is_cut_into_conll_words(text, words):
    assert words_of(text) == words


def test_detokenize_types_what_a_person_would():
    words = ["He", "said", '"', "yes", '"', "(", "twice", ")", ",", "did", "n't", "he", "'s", "5", "%", "?"]
    text, spans = detokenize(words)
    assert text == 'He said "yes" (twice), didn\'t he\'s 5%?'
    assert [text[start:end] for _, start, end in spans] == words


@pytest.mark.parametrize(
    "words",
    [
        ["Ostland", "'s", "envoy", "to", "the", "Northern", "League", "'s", "board", "."],
        ["Ortana", "Velsk"],
        ["KARVI", ",", "Northern", "Ostland", "2031-04-09"],
        ["The", "U.S.", "florin", "fell", "to", "1.5", "crowns", "(", "$", "1", ")", "on", "Friday", "."],
        ["--", "Velsk", "Newsroom", "+44", "171", "555", "0100"],
    ],
)
def test_detokenized_conll_sentences_split_back_into_their_words(words):
    text, _ = detokenize(words)
    assert words_of(text) == words


def test_blank_text_has_no_words():
    assert split_words("") == [] and split_words(" \t\n") == []
