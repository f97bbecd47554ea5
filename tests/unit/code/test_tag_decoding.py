"""Constrained decoding: the best valid IOB2 sequence, never an invalid one, with or without a CRF's chain."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from electra_model.client.tag_decoding import (
    ARGMAX,
    CONSTRAINED,
    Chain,
    TagScheme,
    decode,
    decode_tags,
    log_softmax,
    viterbi,
)

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def is_valid(tags: list[str]) -> bool:
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def scores_for(rows: list[dict[str, float]]) -> np.ndarray:
    """Log-probabilities from per-word probability dicts (unlisted labels share what is left)."""
    out = np.full((len(rows), len(LABELS)), 1e-3)
    for i, row in enumerate(rows):
        for label, p in row.items():
            out[i, LABELS.index(label)] = p
    return np.log(out / out.sum(1, keepdims=True))


def test_scheme_forbids_exactly_the_invalid_transitions():
    scheme = TagScheme.iob2(LABELS)
    assert scheme.may_start.tolist() == [True, True, False, True, False]
    allowed = {(a, b) for a, b in itertools.product(LABELS, LABELS) if scheme.may_follow[LABELS.index(a), LABELS.index(b)]}
    assert ("B-PER", "I-PER") in allowed and ("I-PER", "I-PER") in allowed
    assert ("O", "I-PER") not in allowed and ("B-LOC", "I-PER") not in allowed and ("I-LOC", "I-PER") not in allowed
    assert all((a, b) in allowed for a in LABELS for b in ("O", "B-PER", "B-LOC"))


def test_an_orphan_inside_tag_is_repaired_by_the_more_probable_reading():
    # argmax says O I-PER: either "B-PER" for word 2 or extend the entity back to word 1, whichever is likelier
    scores = scores_for([{"O": 0.6, "B-PER": 0.35}, {"I-PER": 0.7, "B-PER": 0.25}])
    assert decode_tags([scores], LABELS, ARGMAX) == [["O", "I-PER"]]
    assert decode_tags([scores], LABELS, CONSTRAINED) == [["B-PER", "I-PER"]]  # 0.35*0.7 > 0.6*0.25
    scores = scores_for([{"O": 0.9, "B-PER": 0.05}, {"I-PER": 0.6, "B-PER": 0.35}])
    assert decode_tags([scores], LABELS, CONSTRAINED) == [["O", "B-PER"]]  # 0.9*0.35 > 0.05*0.6


def test_a_type_change_inside_an_entity_is_not_allowed():
    scores = scores_for([{"B-LOC": 0.9}, {"I-PER": 0.5, "I-LOC": 0.4}])
    assert decode_tags([scores], LABELS, CONSTRAINED) == [["B-LOC", "I-LOC"]]


@pytest.mark.parametrize("seed", range(30))
def test_viterbi_is_the_best_valid_sequence_by_brute_force(seed):
    rng = np.random.default_rng(seed)
    words = int(rng.integers(1, 5))
    log_probs = log_softmax(rng.normal(scale=3.0, size=(words, len(LABELS))))
    path = viterbi(log_probs, TagScheme.iob2(LABELS))
    best = max(
        (seq for seq in itertools.product(range(len(LABELS)), repeat=words) if is_valid([LABELS[i] for i in seq])),
        key=lambda seq: log_probs[np.arange(words), list(seq)].sum(),
    )
    assert path.tolist() == list(best)


def test_decoding_never_yields_an_invalid_sequence_and_keeps_valid_argmax():
    rng = np.random.default_rng(0)
    for _ in range(200):
        log_probs = log_softmax(rng.normal(scale=4.0, size=(int(rng.integers(0, 12)), len(LABELS))))
        [tags] = decode_tags([log_probs], LABELS, CONSTRAINED)
        assert is_valid(tags)
        [argmax] = decode_tags([log_probs], LABELS, ARGMAX)
        if is_valid(argmax):
            assert tags == argmax


def test_an_unknown_decoding_is_refused():
    with pytest.raises(ValueError, match="decoding must be one of"):
        decode(np.zeros((1, 5)), TagScheme.iob2(LABELS), "beam")


def random_chain(rng: np.random.Generator, labels: int = len(LABELS)) -> Chain:
    return Chain.from_lists(rng.normal(size=(labels, labels)), rng.normal(size=labels), rng.normal(size=labels))


@pytest.mark.parametrize("seed", range(30))
def test_viterbi_with_a_learned_chain_is_the_best_valid_sequence_by_brute_force(seed):
    """CRF decoding: emissions + transitions + start + end scores, over the sequences the IOB2 scheme allows."""
    rng = np.random.default_rng(seed)
    words = int(rng.integers(1, 5))
    log_probs = log_softmax(rng.normal(scale=3.0, size=(words, len(LABELS))))
    chain = random_chain(rng)

    def score(seq: tuple[int, ...]) -> float:
        moves = sum(chain.transitions[a, b] for a, b in zip(seq, seq[1:]))
        return log_probs[np.arange(words), list(seq)].sum() + moves + chain.start[seq[0]] + chain.end[seq[-1]]

    valid = [seq for seq in itertools.product(range(len(LABELS)), repeat=words) if is_valid([LABELS[i] for i in seq])]
    path = viterbi(log_probs, TagScheme.iob2(LABELS), chain)
    assert path.tolist() == list(max(valid, key=score))
    [tags] = decode_tags([log_probs], LABELS, CONSTRAINED, chain)
    assert tags == [LABELS[i] for i in path]


def test_the_chain_changes_the_path_and_a_zero_chain_changes_nothing():
    scores = scores_for([{"B-PER": 0.6, "O": 0.3}, {"I-PER": 0.6, "O": 0.3}])
    assert decode_tags([scores], LABELS, CONSTRAINED) == [["B-PER", "I-PER"]]
    discouraged = np.zeros((len(LABELS), len(LABELS)))
    discouraged[LABELS.index("B-PER"), LABELS.index("I-PER")] = -5.0
    chain = Chain.from_lists(discouraged, np.zeros(len(LABELS)), np.zeros(len(LABELS)))
    assert decode_tags([scores], LABELS, CONSTRAINED, chain) == [["B-PER", "O"]]  # 0.6*0.3 beats O O and B-PER B-PER
    assert decode_tags([scores], LABELS, ARGMAX, chain) == [["B-PER", "I-PER"]]  # argmax reads the words alone
    zero = Chain.from_lists(np.zeros((len(LABELS),) * 2), np.zeros(len(LABELS)), np.zeros(len(LABELS)))
    rng = np.random.default_rng(3)
    for _ in range(20):
        log_probs = np.log(rng.dirichlet(np.ones(len(LABELS)), size=int(rng.integers(1, 9))))
        scheme = TagScheme.iob2(LABELS)
        assert viterbi(log_probs, scheme, zero).tolist() == viterbi(log_probs, scheme).tolist()


def test_a_chain_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="one set of labels"):
        Chain.from_lists(np.zeros((3, 3)), np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        Chain.from_lists([[0.0, float("inf")], [0.0, 0.0]], [0.0, 0.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="chain scores 3 labels"):
        viterbi(np.zeros((2, len(LABELS))), TagScheme.iob2(LABELS), random_chain(np.random.default_rng(0), 3))
    chain = random_chain(np.random.default_rng(1))
    again = Chain.from_lists(**chain.to_lists())
    assert np.array_equal(again.transitions, chain.transitions) and np.array_equal(again.end, chain.end)
