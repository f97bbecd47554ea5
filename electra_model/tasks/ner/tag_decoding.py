"""Word scores to a valid IOB2 tag sequence: constrained Viterbi decoding over the tag scheme.

A per-word argmax can produce sequences no annotator would write (``O I-PER``, ``B-ORG I-LOC``), and conlleval
counts each such ``I-`` as the start of an extra entity, which costs precision (see benchmarks/RESULTS.md, "NER
decoding"). Viterbi over the per-word log-probabilities, with the transitions the scheme forbids removed, returns
the most probable *valid* sequence instead: an ``I-X`` only after ``B-X`` or ``I-X``, never first in a sentence.
There are no learned transition scores: the model's own probabilities decide, the scheme only rules out.

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


def viterbi(log_probs: np.ndarray, scheme: TagScheme) -> np.ndarray:
    """Label ids of the most probable sequence that the scheme allows, for one sentence's ``(words, labels)``
    log-probabilities. ``O`` is always allowed, so a valid sequence always exists."""
    words = log_probs.shape[0]
    if words == 0:
        return np.zeros(0, dtype=np.int64)
    forbidden = np.where(scheme.may_follow, 0.0, -np.inf)
    score = np.where(scheme.may_start, log_probs[0], -np.inf)
    backpointers = np.zeros((words, log_probs.shape[1]), dtype=np.int64)
    for position in range(1, words):
        candidates = score[:, None] + forbidden  # (previous, next)
        backpointers[position] = candidates.argmax(0)
        score = candidates.max(0) + log_probs[position]
    path = np.empty(words, dtype=np.int64)
    path[-1] = int(score.argmax())
    for position in range(words - 1, 0, -1):
        path[position - 1] = backpointers[position, path[position]]
    return path


def decode(log_probs: np.ndarray, scheme: TagScheme, decoding: str = CONSTRAINED) -> np.ndarray:
    """Label ids for one sentence, by constrained Viterbi or by per-word argmax (kept to report what it costs)."""
    if decoding == CONSTRAINED:
        return viterbi(log_probs, scheme)
    if decoding == ARGMAX:
        return log_probs.argmax(-1) if len(log_probs) else np.zeros(0, dtype=np.int64)
    raise ValueError(f"decoding must be one of {DECODINGS}, not {decoding!r}")


def decode_tags(
    sentence_log_probs: Sequence[np.ndarray], labels: Sequence[str], decoding: str = CONSTRAINED
) -> list[list[str]]:
    """Tags of every sentence from its per-word log-probabilities."""
    scheme = TagScheme.iob2(labels)
    return [[scheme.labels[i] for i in decode(scores, scheme, decoding)] for scores in sentence_log_probs]
