"""The token stream's unigram and bigram entropies: the two reference lines a masked-LM loss is read against.

A masked-LM loss (mean cross-entropy in nats at the masked positions) that sits at the **unigram entropy** means
the model predicts only how frequent each token is; one that has not gone below the **bigram entropy** means it
has not yet learned even what a left neighbour says about a token (DESIGN.md, "Facts worth knowing"). With context
on both sides a trained MLM ends well below both.

How they are estimated, from counts over the training token stream (the whole tokenized corpus, in order):

- the predicted tokens are those masking may pick: every token but the special ones ([CLS], [SEP], [PAD], [MASK]),
  so the reference is over the same population as the loss; a [SEP] (a document break) still counts as the
  previous token of the one after it;
- unigram: ``H(X) = -sum_x p(x) log p(x)``, with ``p`` the predicted tokens' relative frequencies;
- bigram: the conditional entropy ``H(next | previous) = -sum_{a,b} p(a, b) log p(b | a)`` over every adjacent pair
  ``(a, b)`` of the stream whose ``b`` is a predicted token, with ``p(b | a) = c(a, b) / c(a, .)``.

Both are plug-in (maximum-likelihood) estimates. The bigram one is biased low when the stream is short for its
vocabulary (a pair seen once looks certain), so on a small corpus it is an optimistic floor for a left-to-right
bigram model; the unigram one is close to exact for any real corpus.

The stream is read in chunks, so a corpus of hundreds of millions of tokens needs memory in proportion to its
distinct pairs, not its length. :func:`cached_token_entropies` computes them once per corpus and tokenizer (the
cache path carries their content key, as the token stream's does) and reads them back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from electra_model.io import read_json, write_json
from electra_model.progress import log_line

# Part of a cached result's file name: change it whenever what token_entropies computes changes.
ENTROPY_FORMAT = "maskable-v1"
CHUNK_TOKENS = 1 << 24  # tokens per counting pass: bounds the memory of the pair codes


def entropy_nats(counts: np.ndarray) -> float:
    """Shannon entropy in nats of the distribution proportional to ``counts`` (zeros ignored)."""
    counts = counts[counts > 0].astype(np.float64)
    total = counts.sum()
    return float(-(counts / total * np.log(counts / total)).sum()) if total else 0.0


def _pair_counts(stream: np.ndarray, vocab_size: int, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``previous * vocab_size + next`` codes of the stream's adjacent pairs whose next token is predicted,
    with their counts; chunk by chunk, each chunk overlapping the last by one token so no pair is lost."""
    codes, counts = [], []
    for start in range(1, len(stream), CHUNK_TOKENS):
        window = np.asarray(stream[start - 1 : start + CHUNK_TOKENS]).astype(np.int64)
        previous, following = window[:-1], window[1:]
        keep = predicted[following]
        chunk_codes, chunk_counts = np.unique(previous[keep] * vocab_size + following[keep], return_counts=True)
        codes.append(chunk_codes)
        counts.append(chunk_counts)
    if not codes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    merged, inverse = np.unique(np.concatenate(codes), return_inverse=True)
    return merged, np.bincount(inverse, weights=np.concatenate(counts)).astype(np.int64)


def token_entropies(stream: np.ndarray, vocab_size: int, special_ids: Iterable[int]) -> dict[str, float]:
    """``unigram_entropy`` and ``bigram_entropy`` (nats) of the stream's predicted tokens, and how many there were."""
    predicted = np.ones(vocab_size, dtype=bool)
    predicted[list(special_ids)] = False
    unigrams = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(stream), CHUNK_TOKENS):
        unigrams += np.bincount(np.asarray(stream[start : start + CHUNK_TOKENS]), minlength=vocab_size)
    unigrams[~predicted] = 0
    codes, counts = _pair_counts(stream, vocab_size, predicted)
    previous_counts = np.bincount(codes // vocab_size, weights=counts, minlength=vocab_size)
    # H(next | previous) = H(previous, next) - H(previous), both over the counted pairs
    bigram = entropy_nats(counts) - entropy_nats(previous_counts) if len(counts) else 0.0
    return {"unigram_entropy": entropy_nats(unigrams), "bigram_entropy": max(0.0, bigram),
            "entropy_tokens": int(unigrams.sum())}


def cached_token_entropies(
    stream: np.ndarray, vocab_size: int, special_ids: Iterable[int], path_stem: Path
) -> dict[str, float]:
    """:func:`token_entropies` of the stream, read from ``path_stem`` + :data:`ENTROPY_FORMAT` + ``.json`` when an
    earlier run wrote it there. ``path_stem`` must carry the corpus and tokenizer's content key (the token stream's
    stem does), so a cached result is never stale."""
    path = path_stem.with_name(f"{path_stem.name}.entropy-{ENTROPY_FORMAT}.json")
    if path.is_file():
        return read_json(path)
    entropies = token_entropies(stream, vocab_size, special_ids)
    write_json(path, entropies)
    log_line(
        f"token stream entropies (nats): unigram {entropies['unigram_entropy']:.3f}, bigram "
        f"{entropies['bigram_entropy']:.3f} over {entropies['entropy_tokens']:,} tokens: {path}"
    )
    return entropies

