"""The uncertainty measures active learning ranks by: CRF marginals against brute-force enumeration, and the
classifier measures on probability vectors whose order is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from electra_model.client.tag_decoding import Chain, TagScheme, viterbi
from electra_model.client.uncertainty import (
    entropy_uncertainty,
    forward_backward,
    margin_uncertainty,
    marginal_uncertainty,
    path_score,
    sequence_uncertainty,
)

LABELS = ("O", "B-PER", "I-PER")


def random_crf(seed: int) -> tuple[np.ndarray, Chain]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 3)), Chain(rng.normal(size=(3, 3)), rng.normal(size=3), rng.normal(size=3))


def enumerate_paths(emissions: np.ndarray, scheme: TagScheme, chain: Chain) -> tuple[np.ndarray, dict]:
    """Marginals and every allowed path's probability, by scoring all 3**3 sequences one by one."""
    scores = {}
    for path in itertools.product(range(3), repeat=len(emissions)):
        allowed = scheme.may_start[path[0]] and all(scheme.may_follow[a, b] for a, b in zip(path, path[1:]))
        if allowed:
            scores[path] = path_score(emissions, np.array(path), scheme, chain)
    total = np.logaddexp.reduce(list(scores.values()))
    probabilities = {path: np.exp(score - total) for path, score in scores.items()}
    marginals = np.zeros_like(emissions)
    for path, probability in probabilities.items():
        marginals[np.arange(len(path)), path] += probability
    return marginals, probabilities


def unconstrained(labels: tuple[str, ...]) -> TagScheme:
    size = len(labels)
    return TagScheme(labels, np.ones(size, dtype=bool), np.ones((size, size), dtype=bool))


@pytest.mark.parametrize("scheme", [TagScheme.iob2(LABELS), unconstrained(LABELS)], ids=["iob2", "any"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_marginals_equal_brute_force_enumeration(scheme: TagScheme, seed: int) -> None:
    emissions, chain = random_crf(seed)
    marginals, log_z = forward_backward(emissions, scheme, chain)
    expected, probabilities = enumerate_paths(emissions, scheme, chain)
    np.testing.assert_allclose(marginals, expected, atol=1e-12)
    np.testing.assert_allclose(marginals.sum(axis=1), 1.0)
    assert marginal_uncertainty(emissions, scheme, chain) == pytest.approx((1 - expected.max(axis=1)).sum())
    best = tuple(viterbi(emissions, scheme, chain))
    assert probabilities[best] == max(probabilities.values())
    assert sequence_uncertainty(emissions, scheme, chain) == pytest.approx(1 - probabilities[best])


def test_a_per_word_shift_of_the_scores_changes_no_marginal() -> None:
    """The client feeds log-softmaxed emissions; the CRF's marginals must be those of the raw emissions."""
    emissions, chain = random_crf(3)
    shifted = emissions - np.array([[5.0], [-2.0], [0.3]])
    scheme = TagScheme.iob2(LABELS)
    expected, _ = forward_backward(emissions, scheme, chain)
    np.testing.assert_allclose(forward_backward(shifted, scheme, chain)[0], expected)


def test_without_a_chain_the_sequence_measure_is_one_minus_the_product_of_word_maxima() -> None:
    probabilities = np.array([[0.9, 0.05, 0.05], [0.5, 0.3, 0.2]])
    score = sequence_uncertainty(np.log(probabilities), TagScheme.iob2(LABELS), None)
    assert score == pytest.approx(1 - 0.9 * 0.5)


def test_a_sure_sentence_scores_lower_than_an_unsure_one() -> None:
    scheme = TagScheme.iob2(LABELS)
    sure = np.log(np.array([[0.98, 0.01, 0.01]] * 4))
    unsure = np.log(np.array([[0.4, 0.35, 0.25]] * 4))
    for measure in (marginal_uncertainty, sequence_uncertainty):
        assert measure(sure, scheme, None) < measure(unsure, scheme, None)
    assert marginal_uncertainty(np.zeros((0, 3)), scheme, None) == 0.0


def test_margin_and_entropy_rank_known_probability_vectors() -> None:
    certain, close_call, spread = np.array([0.97, 0.02, 0.01]), np.array([0.48, 0.47, 0.05]), np.full(3, 1 / 3)
    two_way = np.array([0.5, 0.5, 0.0])
    assert margin_uncertainty(certain) < margin_uncertainty(close_call) < margin_uncertainty(spread) == 1.0
    assert margin_uncertainty(two_way) == 1.0  # a tie between two labels is as unsure as margin can say
    assert entropy_uncertainty(certain) < entropy_uncertainty(two_way) < entropy_uncertainty(spread)
    assert entropy_uncertainty(spread) == pytest.approx(np.log(3))
