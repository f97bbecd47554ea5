"""Word scores to a valid IOB2 tag sequence: constrained Viterbi decoding over the tag scheme, with the model's
learned chain scores when it has a CRF head.

A per-word argmax can produce sequences no annotator would write (``O I-PER``, ``B-ORG I-LOC``), and conlleval
counts each such ``I-`` as the start of an extra entity, which costs precision (see benchmarks/RESULTS.md, "NER
decoding"). Viterbi over the per-word log-probabilities, with the transitions the scheme forbids removed, returns
the best *valid* sequence instead: an ``I-X`` only after ``B-X`` or ``I-X``, never first in a sentence.
A model with a CRF head (:mod:`electra_model.tasks.ner.crf`, the default) also learned transition, start and end
scores (a :class:`Chain`); they are added to the path's score, and the scheme still rules out what it forbids --
CRF plus constraints decoded best on validation (benchmarks/RESULTS.md, "CRF head vs constrained decoding").
Per-word log-softmax scores differ from a CRF's emissions by one constant per word, which adds the same to every
path, so Viterbi over them finds the CRF's best path. A softmax-head model has no chain: its probabilities decide.

numpy only, so the torch-free client (and therefore ``electra predict`` and the served model) decodes exactly as
evaluation does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONSTRAINED = "constrained"
ARGMAX = "argmax"
DECODINGS = (CONSTRAINED, ARGMAX)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-probabilities, computed stably (float64, so the Viterbi sums do not lose the small terms)."""
    shifted = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@dataclass(frozen=True)
class Chain:
    """A CRF head's learned scores, added to a path's score: ``transitions[previous, next]`` for each step,
    ``start[label]`` for the first word and ``end[label]`` for the last. All finite; the scheme forbids separately."""

    transitions: np.ndarray  # (L, L) float64
    start: np.ndarray  # (L,)
    end: np.ndarray  # (L,)

    @classmethod
    def from_lists(cls, transitions: Sequence[Sequence[float]], start: Sequence[float], end: Sequence[float]) -> Chain:
        """From nested lists (as stored in JSON), checked to be square, of one size and finite."""
        chain = cls(*(np.asarray(values, dtype=np.float64) for values in (transitions, start, end)))
        labels = chain.start.shape[0] if chain.start.ndim == 1 else -1
        if chain.transitions.shape != (labels, labels) or chain.end.shape != (labels,):
            raise ValueError(
                f"transitions {chain.transitions.shape}, start {chain.start.shape} and end {chain.end.shape} "
                "do not describe one set of labels"
            )
        if not all(np.isfinite(values).all() for values in (chain.transitions, chain.start, chain.end)):
            raise ValueError("chain scores must be finite numbers")
        return chain

    def to_lists(self) -> dict[str, list]:
        """The scores as JSON-ready lists (Python floats keep float64 exactly)."""
        return {"transitions": self.transitions.tolist(), "start": self.start.tolist(), "end": self.end.tolist()}

    @property
    def num_labels(self) -> int:
        return int(self.start.shape[0])


@dataclass(frozen=True)
class TagScheme:
    """Which tags may start a sentence and which may follow which, for a list of IOB2 labels."""

    labels: tuple[str, ...]
    may_start: np.ndarray  # (L,) bool
    may_follow: np.ndarray  # (L, L) bool: may_follow[previous, next]

    @classmethod
    def iob2(cls, labels: Sequence[str]) -> TagScheme:
        """IOB2 rules: ``I-X`` continues ``B-X`` or ``I-X`` only; ``O`` and every ``B-`` may go anywhere."""
        labels = tuple(labels)
        count = len(labels)
        may_start = np.array([not label.startswith("I-") for label in labels])
        may_follow = np.ones((count, count), dtype=bool)
        for after, label in enumerate(labels):
            if label.startswith("I-"):
                kind = label[2:]
                may_follow[:, after] = [previous in (f"B-{kind}", f"I-{kind}") for previous in labels]
        return cls(labels, may_start, may_follow)


def viterbi(log_probs: np.ndarray, scheme: TagScheme, chain: Chain | None = None) -> np.ndarray:
    """Label ids of the best sequence that the scheme allows, for one sentence's ``(words, labels)``
    log-probabilities, plus the ``chain``'s scores when given. ``O`` is always allowed, so a valid sequence always
    exists."""
    words = log_probs.shape[0]
    if words == 0:
        return np.zeros(0, dtype=np.int64)
    moves = np.where(scheme.may_follow, 0.0, -np.inf)
    start = np.where(scheme.may_start, 0.0, -np.inf)
    end = np.zeros(log_probs.shape[1])
    if chain is not None:
        if chain.num_labels != log_probs.shape[1]:
            raise ValueError(f"the chain scores {chain.num_labels} labels, the word scores {log_probs.shape[1]}")
        moves, start, end = moves + chain.transitions, start + chain.start, end + chain.end
    score = start + log_probs[0]
    backpointers = np.zeros((words, log_probs.shape[1]), dtype=np.int64)
    for position in range(1, words):
        candidates = score[:, None] + moves  # (previous, next)
        backpointers[position] = candidates.argmax(0)
        score = candidates.max(0) + log_probs[position]
    path = np.empty(words, dtype=np.int64)
    path[-1] = int((score + end).argmax())
    for position in range(words - 1, 0, -1):
        path[position - 1] = backpointers[position, path[position]]
    return path


def decode(
    log_probs: np.ndarray, scheme: TagScheme, decoding: str = CONSTRAINED, chain: Chain | None = None
) -> np.ndarray:
    """Label ids for one sentence, by constrained Viterbi (with the chain's scores when given) or by per-word
    argmax (kept to report what it costs; it ignores the chain)."""
    if decoding == CONSTRAINED:
        return viterbi(log_probs, scheme, chain)
    if decoding == ARGMAX:
        return log_probs.argmax(-1) if len(log_probs) else np.zeros(0, dtype=np.int64)
    raise ValueError(f"decoding must be one of {DECODINGS}, not {decoding!r}")


def decode_tags(
    sentence_log_probs: Sequence[np.ndarray],
    labels: Sequence[str],
    decoding: str = CONSTRAINED,
    chain: Chain | None = None,
) -> list[list[str]]:
    """Tags of every sentence from its per-word log-probabilities (and the model's chain, for a CRF head)."""
    scheme = TagScheme.iob2(labels)
    return [[scheme.labels[i] for i in decode(scores, scheme, decoding, chain)] for scores in sentence_log_probs]
