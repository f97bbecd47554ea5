"""The embedded demo data for sequence classification: generated review-style sentences with a sentiment label,
so ``task: classification`` runs offline like the NER demo.

Built from the review templates and word lists of :mod:`electra_model.data.demo` with a seeded
``random.Random``: the same seed gives the same data::

    from electra_model.data.demo import derive_seed
    train = demo_sentiment(1500, seed=derive_seed(1234, "classification/train"))
    # [("The hotel in Lisbon was wonderful .", "positive"), ...]
    pairs = demo_sentiment_pairs(200, seed=derive_seed(1234, "classification-pairs/train"))
    # [("The film was dull .", "I found the film superb .", "disagree"), ...]

Three labels, ``negative``, ``neutral`` and ``positive``. The sentiment is carried by an opinion word, not by one
fixed sentence: subjects, cities and opinion words combine freely (test sentences are new combinations); about one
in six opinionated sentences negates a word of the other polarity (``was not great`` is negative), which a bag of
words gets wrong; half the neutral sentences put a descriptive word where the opinion word would be (``was long``).
The demo corpus holds pages of such reviews (unlabelled), so the tokenizer and the pretrained model know the words.
The pair variant asks whether two reviews agree in sentiment.
"""

from __future__ import annotations

import random

from electra_model.data.demo import SENTIMENTS, review

LABELS = SENTIMENTS


def demo_sentiment(n_texts: int, seed: int) -> list[tuple[str, str]]:
    """``(text, label)`` pairs, the three labels about equally often."""
    rng = random.Random(seed)
    labelled = []
    for _ in range(n_texts):
        label = rng.choice(LABELS)
        labelled.append((review(rng, label), label))
    return labelled


def demo_sentiment_pairs(n_pairs: int, seed: int) -> list[tuple[str, str, str]]:
    """``(first, second, label)``: two opinionated reviews, ``agree`` when their sentiments match, else
    ``disagree`` -- a task only a model that reads both texts can solve."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n_pairs):
        first, second = rng.choice(("negative", "positive")), rng.choice(("negative", "positive"))
        pairs.append((review(rng, first), review(rng, second), "agree" if first == second else "disagree"))
    return pairs
