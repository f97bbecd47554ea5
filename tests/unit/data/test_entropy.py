"""The token stream's unigram and bigram entropies, on streams small enough to work out by hand, and their cache."""

from __future__ import annotations

import math

import numpy as np
import pytest

from electra_model.data import entropy
from electra_model.data.entropy import cached_token_entropies, token_entropies

A, B, C, SEP = 1, 2, 3, 9
VOCAB = 10


def test_a_stream_that_alternates_two_tokens_has_unigram_log_2_and_bigram_0():
    """A B A B ...: each token is as frequent as the other, and the previous one always says what comes next."""
    result = token_entropies(np.array([A, B] * 50, dtype=np.uint16), VOCAB, [SEP])
    assert result["unigram_entropy"] == pytest.approx(math.log(2))
    assert result["bigram_entropy"] == pytest.approx(0.0, abs=1e-12)
    assert result["entropy_tokens"] == 100


def test_a_stream_where_each_token_is_followed_by_either_with_equal_counts_has_bigram_log_2():
    """A A B B A A B B ... A: the pairs AA, AB, BB, BA each occur k times, so after either token both are equally
    likely; the unigram counts are 2k + 1 and 2k."""
    k = 25
    result = token_entropies(np.array([A, A, B, B] * k + [A], dtype=np.uint16), VOCAB, [SEP])
    assert result["bigram_entropy"] == pytest.approx(math.log(2))
    p = (2 * k + 1) / (4 * k + 1)
    assert result["unigram_entropy"] == pytest.approx(-p * math.log(p) - (1 - p) * math.log(1 - p))


def test_special_tokens_are_never_predicted_but_condition_the_next_token():
    """SEP A SEP B ...: only A and B are predicted (unigram log 2), and a SEP says nothing about which follows
    (bigram log 2); a stream of A SEP A SEP ... is certain after SEP and has one predicted token (both 0)."""
    mixed = token_entropies(np.array([SEP, A, SEP, B] * 20, dtype=np.uint16), VOCAB, [SEP])
    assert mixed["unigram_entropy"] == pytest.approx(math.log(2))
    assert mixed["bigram_entropy"] == pytest.approx(math.log(2))
    assert mixed["entropy_tokens"] == 40
    certain = token_entropies(np.array([A, SEP] * 20, dtype=np.uint16), VOCAB, [SEP])
    assert certain["unigram_entropy"] == pytest.approx(0.0) and certain["bigram_entropy"] == pytest.approx(0.0)


def test_counting_in_chunks_loses_no_pair_across_a_chunk_boundary(monkeypatch):
    stream = np.random.default_rng(0).integers(0, VOCAB, 1000).astype(np.uint16)
    whole = token_entropies(stream, VOCAB, [SEP])
    monkeypatch.setattr(entropy, "CHUNK_TOKENS", 7)
    assert token_entropies(stream, VOCAB, [SEP]) == pytest.approx(whole)


def test_a_uniform_random_stream_approaches_log_of_its_vocabulary_in_both():
    stream = np.random.default_rng(1).integers(0, 4, 200_000).astype(np.uint16)
    result = token_entropies(stream, 4, [])
    assert result["unigram_entropy"] == pytest.approx(math.log(4), abs=1e-3)
    assert result["bigram_entropy"] == pytest.approx(math.log(4), abs=1e-3)


def test_the_entropies_are_computed_once_per_corpus_and_tokenizer(tmp_path, monkeypatch):
    stream = np.array([A, B] * 10, dtype=np.uint16)
    first = cached_token_entropies(stream, VOCAB, [SEP], tmp_path / "tokens-key")
    assert [p.name for p in tmp_path.iterdir()] == [f"tokens-key.entropy-{entropy.ENTROPY_FORMAT}.json"]

    def must_not_count(*_):
        raise AssertionError("the cached entropies were computed again")

    monkeypatch.setattr(entropy, "token_entropies", must_not_count)
    assert cached_token_entropies(stream, VOCAB, [SEP], tmp_path / "tokens-key") == first
