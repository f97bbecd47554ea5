"""How unsure the exported model is of one input: the scores active learning ranks unlabelled texts by.

Higher means less sure, so the texts worth labelling first sort to the top. numpy only, so the torch-free client
(``electra select``) and the simulated-annotator benchmark (benchmarks/active_learning.py) score alike.

Token tagging (NER):

* ``marginal`` -- the expected number of words whose most probable tag is wrong, ``sum_t (1 - max_y P(y_t | x))``,
  with the per-word marginals from forward-backward over the word scores and, for a CRF head, the learned chain
  (:class:`~electra_model.client.tag_decoding.Chain`). The sum is over the tag sequences the IOB2 scheme allows,
  the same sequences the decoder (:func:`~electra_model.client.tag_decoding.viterbi`) chooses among, so these are
  the marginals of the distribution whose best path the client outputs. The client's per-word scores are
  log-softmaxed emissions; that shifts every path's score by the same constant per word, which cancels in the
  normalisation, so the marginals are the CRF's own. A sum rather than a mean, because a sentence costs its
  annotator per word and a long sentence with many unsure words teaches more than a two-word headline.
* ``sequence`` -- one minus the probability of the decoded sequence: ``1 - exp(score(best) - log Z)`` under a CRF's
  chain, and for a head without one (per-word softmax) ``1 - prod_t max_y p_t(y)``.

Text classification: ``margin`` (one minus the gap between the two most probable labels) and ``entropy`` (of the
label distribution).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from electra_model.client.tag_decoding import Chain, TagScheme, viterbi


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp)) along ``axis``, exact for rows that are all ``-inf`` (a tag the scheme rules out there)."""
    top = values.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(values - top).sum(axis=axis)) + top.squeeze(axis)


def _chain_scores(scheme: TagScheme, chain: Chain | None, labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transition, start and end scores of the decoder: the scheme's bans as ``-inf``, plus the chain if any."""
    moves = np.where(scheme.may_follow, 0.0, -np.inf)
    start = np.where(scheme.may_start, 0.0, -np.inf)
    end = np.zeros(labels)
    if chain is not None:
        if chain.num_labels != labels:
            raise ValueError(f"the chain scores {chain.num_labels} labels, the word scores {labels}")
        moves, start, end = moves + chain.transitions, start + chain.start, end + chain.end
    return moves, start, end


def forward_backward(
    log_probs: np.ndarray, scheme: TagScheme, chain: Chain | None = None
) -> tuple[np.ndarray, float]:
    """Per-word tag marginals ``(words, labels)`` and ``log Z`` of the linear chain over one sentence's word
    scores, restricted to the sequences ``scheme`` allows (see the module docstring)."""
    words, labels = log_probs.shape
    if words == 0:
        return np.zeros((0, labels)), 0.0
    moves, start, end = _chain_scores(scheme, chain, labels)
    alpha = np.empty((words, labels))
    beta = np.empty((words, labels))
    alpha[0] = start + log_probs[0]
    for position in range(1, words):
        alpha[position] = _logsumexp(alpha[position - 1][:, None] + moves, axis=0) + log_probs[position]
    beta[-1] = end
    for position in range(words - 2, -1, -1):
        beta[position] = _logsumexp(moves + (log_probs[position + 1] + beta[position + 1])[None, :], axis=1)
    log_z = float(_logsumexp(alpha[-1] + end, axis=0))
    with np.errstate(invalid="ignore"):
        marginals = np.exp(alpha + beta - log_z)
    return np.nan_to_num(marginals, nan=0.0), log_z


def path_score(log_probs: np.ndarray, path: np.ndarray, scheme: TagScheme, chain: Chain | None) -> float:
    """The unnormalised log-score of one tag sequence under the decoder's chain (what Viterbi maximises)."""
    moves, start, end = _chain_scores(scheme, chain, log_probs.shape[1])
    steps = np.arange(len(path))
    return float(
        start[path[0]] + log_probs[steps, path].sum() + moves[path[:-1], path[1:]].sum() + end[path[-1]]
    )


def marginal_uncertainty(log_probs: np.ndarray, scheme: TagScheme, chain: Chain | None) -> float:
    """Expected number of words whose most probable tag is wrong (``marginal``, see the module docstring)."""
    marginals, _ = forward_backward(log_probs, scheme, chain)
    return float((1.0 - marginals.max(axis=1)).sum()) if len(marginals) else 0.0


def sequence_uncertainty(log_probs: np.ndarray, scheme: TagScheme, chain: Chain | None) -> float:
    """One minus the decoded sequence's probability (``sequence``): under the chain for a CRF, else the product
    of each word's largest softmax probability."""
    if len(log_probs) == 0:
        return 0.0
    if chain is None:
        return float(1.0 - np.exp(log_probs.max(axis=1).sum()))
    _, log_z = forward_backward(log_probs, scheme, chain)
    best = viterbi(log_probs, scheme, chain)
    return float(1.0 - np.exp(path_score(log_probs, best, scheme, chain) - log_z))


def margin_uncertainty(probabilities: np.ndarray) -> float:
    """One minus the gap between the two most probable labels: 1 for a tie, 0 for a certain answer."""
    top_two = np.sort(probabilities)[-2:]
    return float(1.0 - (top_two[-1] - top_two[0])) if len(top_two) == 2 else 0.0


def entropy_uncertainty(probabilities: np.ndarray) -> float:
    """Entropy (nats) of the label distribution: uncertainty spread over all labels, not just the top two."""
    positive = probabilities[probabilities > 0]
    return float(-(positive * np.log(positive)).sum())


TaggingMeasure = Callable[[np.ndarray, TagScheme, "Chain | None"], float]
ClassifierMeasure = Callable[[np.ndarray], float]

TAGGING_MEASURES: Mapping[str, TaggingMeasure] = {"marginal": marginal_uncertainty, "sequence": sequence_uncertainty}
CLASSIFIER_MEASURES: Mapping[str, ClassifierMeasure] = {"margin": margin_uncertainty, "entropy": entropy_uncertainty}
