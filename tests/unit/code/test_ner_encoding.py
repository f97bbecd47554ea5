"""The word <-> sub-token alignment shared by training, evaluation and serving."""

from __future__ import annotations

import numpy as np
import pytest

from electra_model.client.ner_encoding import (
    IGNORE_INDEX,
    EncodedSentence,
    Example,
    encode_examples,
    encode_words,
    merge_word_scores,
    pad_batch,
    plan_cores,
    word_pieces,
    word_log_probs,
)
from electra_model.data.tokenizer import train_wordpiece


@pytest.fixture(scope="module")
def tok():
    lines = ["Johannesburg is a city", "Alice met Bob in Johannesburg", "a city of gold"] * 20
    return train_wordpiece(lines, vocab_size=120, min_frequency=1, lowercase=False)


def test_label_sits_on_first_subtoken_and_the_rest_are_ignored(tok):
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


def test_words_past_max_len_are_marked_cut_off(tok):
    encoded = encode_words(tok, ["city"] * 10, max_len=6, tag_ids=[0] * 10)
    assert len(encoded.input_ids) == 6
    assert encoded.first_subtoken[:4] == [1, 2, 3, 4] and encoded.first_subtoken[4:] == [-1] * 6


def test_padding_and_word_scores_round_trip(tok):
    short = encode_words(tok, ["Alice"], max_len=16, tag_ids=[1])
    long = encode_words(tok, ["Alice", "met", "Bob"], max_len=16, tag_ids=[1, 0, 1])
    batch = pad_batch([short, long], pad_id=0)
    assert batch["attention_mask"].sum(1).tolist() == [len(short.input_ids), len(long.input_ids)]
    logits = np.zeros((2, batch["input_ids"].shape[1], 2))
    for row, encoded in enumerate([short, long]):
        for position, label in enumerate(encoded.labels):
            if label != IGNORE_INDEX:
                logits[row, position, label] = 1.0
    scores = word_log_probs(logits, [short, long])
    assert [row.argmax(-1).tolist() for row in scores] == [[1], [1, 0, 1]]
    assert all(np.allclose(np.exp(row).sum(-1), 1.0) for row in scores)


def test_a_word_cut_off_gets_a_uniform_row(tok):
    encoded = encode_words(tok, ["city"] * 10, max_len=6)
    [scores] = word_log_probs(np.random.default_rng(0).normal(size=(1, 6, 3)), [encoded])
    assert scores.shape == (10, 3) and np.allclose(scores[4:], np.log(1 / 3))


# ------------------------------------------------------------------------------------- examples and windows
def labelled_words(examples, n_sentences):
    """For each sentence, word index -> (label, token id at its first sub-token), from every example."""
    seen: list[dict[int, tuple[int, int]]] = [{} for _ in range(n_sentences)]
    for example in examples:
        for offset, position in enumerate(example.encoded.first_subtoken):
            word = example.start + offset
            assert word not in seen[example.sentence], "a word is labelled twice"
            seen[example.sentence][word] = (example.encoded.labels[position], example.encoded.input_ids[position])
        positions = set(example.encoded.first_subtoken)
        assert all(label == IGNORE_INDEX for i, label in enumerate(example.encoded.labels) if i not in positions)
    return seen


def test_a_sentence_that_fits_is_one_example_like_encode_words(tok):
    words = ["Alice", "Bobcity", "Johannesburg"]
    [example] = encode_examples(tok, [words], max_len=64, tag_ids=[[1, 0, 2]])
    assert (example.sentence, example.start) == (0, 0)
    assert example.encoded == encode_words(tok, words, max_len=64, tag_ids=[1, 0, 2])


def test_a_1000_word_sentence_is_labelled_word_for_word_in_overlapping_windows(tok):
    rng = np.random.default_rng(0)
    words = [str(w) for w in rng.choice(["Alice", "Bobcity", "Johannesburg", "a", "city", "gold"], 1000)]
    tags = [int(t) for t in rng.integers(0, 5, 1000)]
    pieces = word_pieces(tok, words)
    examples = encode_examples(tok, [words], max_len=32, tag_ids=[tags])
    assert len(examples) > 1000 * 1.5 / 30
    assert all(len(example.encoded.input_ids) <= 32 for example in examples)
    seen = labelled_words(examples, 1)[0]
    assert sorted(seen) == list(range(1000))
    assert [seen[i] for i in range(1000)] == [(tags[i], pieces[i][0]) for i in range(1000)]
    inner = [e for e in examples if e.start > 0 and e.start + len(e.encoded.first_subtoken) < 1000]
    for example in inner:
        last_word = example.start + len(example.encoded.first_subtoken) - 1
        core_end = example.encoded.first_subtoken[-1] + len(pieces[last_word])
        assert example.encoded.first_subtoken[0] > 1, "context on the left"
        assert core_end < len(example.encoded.input_ids) - 1, "context on the right"
    assert all(len(e.encoded.input_ids) == 32 for e in inner), "context fills the window"


def test_a_word_longer_than_the_window_keeps_its_first_subtoken(tok):
    long_word = "Johannesburgcitygold" * 5
    examples = encode_examples(tok, [["a", long_word, "city"]], max_len=8, tag_ids=[[0, 3, 0]])
    seen = labelled_words(examples, 1)[0]
    assert sorted(seen) == [0, 1, 2] and seen[1][0] == 3
    assert all(len(e.encoded.input_ids) <= 8 for e in examples)


def test_a_word_the_normalizer_erases_still_gets_a_label(tok):
    [example] = encode_examples(tok, [["Alice", "\x00", "Bob"]], max_len=16, tag_ids=[[1, 2, 0]])
    position = example.encoded.first_subtoken[1]
    assert example.encoded.input_ids[position] == tok.token_to_id("[UNK]") and example.encoded.labels[position] == 2


def test_document_context_adds_neighbours_of_the_same_document_only(tok):
    sentences = [["gold"], ["Alice", "met", "Bob"], ["a", "city"], ["Johannesburg"]]
    documents = [0, 1, 1, 2]
    plain = encode_examples(tok, sentences, max_len=64, documents=documents)
    wide = encode_examples(tok, sentences, max_len=64, documents=documents, document_context=True)
    assert [e.encoded for e in plain] == [encode_words(tok, s, 64) for s in sentences]
    flat = [word_pieces(tok, s) for s in sentences]
    ids = lambda row: [t for w in flat[row] for t in w]  # noqa: E731
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    assert wide[0].encoded.input_ids == [cls, *ids(0), sep]
    assert wide[1].encoded.input_ids == [cls, *ids(1), *ids(2), sep]
    assert wide[2].encoded.input_ids == [cls, *ids(1), *ids(2), sep]
    assert wide[2].encoded.first_subtoken[0] == 1 + len(ids(1))
    assert labelled_words(wide, 4) == labelled_words(plain, 4)


def test_plan_cores_and_merge_word_scores():
    assert plan_cores([1, 2, 3, 1, 9, 1], budget=4) == [(0, 2), (2, 4), (4, 5), (5, 6)]
    assert plan_cores([], budget=4) == []
    unused = EncodedSentence([], [], [])
    examples = [Example(0, 0, unused), Example(0, 2, unused), Example(1, 0, unused)]
    rows = np.eye(3)
    merged = merge_word_scores(examples, [rows[[1, 2]], rows[[0]], rows[[1]]], [3, 1])
    assert [m.argmax(-1).tolist() for m in merged] == [[1, 2, 0], [1]]
