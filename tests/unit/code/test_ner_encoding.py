"""The word <-> sub-token alignment shared by training, evaluation and serving."""

from __future__ import annotations

import numpy as np

from electra_model.ner_encoding import IGNORE_INDEX, encode_words, pad_batch, word_tags
from electra_model.tokenizer import train_wordpiece


def tokenizer():
    lines = ["Johannesburg is a city", "Alice met Bob in Johannesburg", "a city of gold"] * 20
    return train_wordpiece(lines, vocab_size=120, min_frequency=1, lowercase=False)


def test_label_sits_on_first_subtoken_and_the_rest_are_ignored():
    tok = tokenizer()
    words = ["Alice", "Bobcity", "Johannesburg"]
    encoded = encode_words(tok, words, max_len=64, tag_ids=[1, 0, 2])
    assert encoded.input_ids[0] == tok.token_to_id("[CLS]") and encoded.input_ids[-1] == tok.token_to_id("[SEP]")
    pieces = tok.encode(words, is_pretokenized=True, add_special_tokens=False)
    assert len(encoded.input_ids) == len(pieces.ids) + 2 > len(words) + 2  # "Bobcity" splits into pieces
    labelled = [label for label in encoded.labels if label != IGNORE_INDEX]
    assert labelled == [1, 0, 2]
    for word_index, position in enumerate(encoded.first_subtoken):
        assert pieces.word_ids[position - 1] == word_index
        assert encoded.labels[position] == [1, 0, 2][word_index]


def test_words_past_max_len_are_marked_cut_off():
    tok = tokenizer()
    encoded = encode_words(tok, ["city"] * 10, max_len=6, tag_ids=[0] * 10)
    assert len(encoded.input_ids) == 6
    assert encoded.first_subtoken[:4] == [1, 2, 3, 4] and encoded.first_subtoken[4:] == [-1] * 6


def test_padding_and_word_tags_round_trip():
    tok = tokenizer()
    short = encode_words(tok, ["Alice"], max_len=16, tag_ids=[1])
    long = encode_words(tok, ["Alice", "met", "Bob"], max_len=16, tag_ids=[1, 0, 1])
    batch = pad_batch([short, long], pad_id=0)
    assert batch["attention_mask"].sum(1).tolist() == [len(short.input_ids), len(long.input_ids)]
    logits = np.zeros((2, batch["input_ids"].shape[1], 2))
    for row, encoded in enumerate([short, long]):
        for position, label in enumerate(encoded.labels):
            if label != IGNORE_INDEX:
                logits[row, position, label] = 1.0
    assert word_tags(logits, [short, long], {0: "O", 1: "B-PER"}) == [["B-PER"], ["B-PER", "O", "B-PER"]]
