"""Spread a batch of uncertain texts out, so that one labelling round is not spent on ten near-copies of one
headline: k-center greedy (Sener & Savarese, 2018) over cheap text features.

Features. The exported graphs output logits only (no pooled encoder state), so the model's own features are not
available to the torch-free client; adding a second graph output would change every export and the served model
for this one use. The features are instead the model's own sub-tokens: a bag of its tokenizer's ids, hashed into
``dimensions`` buckets and L2-normalised, so texts that share words (and word pieces) lie close. That costs one
tokenizer pass and no model run, and needs only numpy and the tokenizer the client already loads.

Choice. The ``candidates`` most uncertain texts are kept (uncertainty still decides what is worth labelling), and
k-center greedy picks ``k`` of them: first the most uncertain, then each time the candidate farthest from everything
picked so far. Ties go to the more uncertain, then to the earlier line, so the pick is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer


def token_features(tokenizer: Tokenizer, texts: Sequence[str], dimensions: int) -> np.ndarray:
    """Hashed, L2-normalised bags of sub-token ids, ``(texts, dimensions)`` (see the module docstring)."""
    features = np.zeros((len(texts), dimensions))
    for row, encoding in enumerate(tokenizer.encode_batch(list(texts), add_special_tokens=False)):
        np.add.at(features[row], np.asarray(encoding.ids, dtype=np.int64) % dimensions, 1.0)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


def k_center_greedy(features: np.ndarray, scores: np.ndarray, k: int) -> list[int]:
    """Rows of ``features`` picked one by one, each the farthest from those already picked (the first: the
    highest score); ties broken by higher score, then lower row (see the module docstring)."""
    count = len(features)
    if not 0 < k <= count:
        raise ValueError(f"k must be between 1 and {count}, not {k}")
    by_priority = np.lexsort((np.arange(count), -scores))  # highest score first, then first row
    rank = np.empty(count, dtype=np.int64)
    rank[by_priority] = np.arange(count)
    picked = [int(by_priority[0])]
    distance = np.linalg.norm(features - features[picked[0]], axis=1)
    distance[picked[0]] = -np.inf
    while len(picked) < k:
        farthest = distance.max()
        tied = np.flatnonzero(distance == farthest)
        chosen = int(tied[np.argmin(rank[tied])])
        picked.append(chosen)
        distance = np.minimum(distance, np.linalg.norm(features - features[chosen], axis=1))
        distance[picked] = -np.inf
    return picked
