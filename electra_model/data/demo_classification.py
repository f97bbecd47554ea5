"""The embedded demo data for sequence classification: generated review-style sentences with a sentiment label,
so ``task: classification`` runs offline like the NER demo.

Built from templates and word lists with a seeded ``random.Random``: the same seed gives the same data::

    from electra_model.data.demo import derive_seed
    train = demo_sentiment(1500, seed=derive_seed(1234, "classification/train"))
    # [("The hotel in Lisbon was wonderful .", "positive"), ...]
    pairs = demo_sentiment_pairs(200, seed=derive_seed(1234, "classification-pairs/train"))
    # [("The film was dull .", "I found the film superb .", "disagree"), ...]

Three labels, ``negative``, ``neutral`` and ``positive``. The sentiment is carried by an opinion word from a
list, so a small model learns it within the demo budget, but not by one fixed word: sentences combine subjects,
cities and opinion words freely (test sentences are new combinations), and about one in six negates its opinion
word (``was not great`` is negative), which a bag of words gets wrong. Neutral sentences are factual statements
about the same subjects. The pair variant asks whether two reviews agree in sentiment.
"""

from __future__ import annotations

import random

from electra_model.data.demo import CITIES, DAYS, MONTHS

POSITIVE = (
    "excellent", "wonderful", "superb", "delightful", "brilliant", "great", "enjoyable", "charming", "impressive",
    "fantastic", "lovely", "moving", "gripping", "pleasant", "outstanding",
)
NEGATIVE = (
    "terrible", "awful", "dreadful", "boring", "disappointing", "poor", "dull", "clumsy", "mediocre", "painful",
    "tedious", "bland", "weak", "messy", "forgettable",
)
SUBJECTS = (
    "the film", "the new album", "this restaurant", "the hotel in {CITY}", "the match in {CITY}", "the service",
    "the book", "her performance", "the new phone", "the concert in {CITY}", "the museum", "the play",
    "the show", "the meal", "the trip to {CITY}", "his latest novel", "the exhibition", "the second season",
)
OPINION_TEMPLATES = (
    "{SUBJ} was {OP} .",
    "I found {subj} {OP} .",
    "Honestly , {subj} was {OP} from start to finish .",
    "Critics called {subj} {OP} , and I agree .",
    "We thought {subj} was {OP} and {OP} .",
    "After the visit on {DAY} , {subj} seemed {OP} to all of us .",
    "{SUBJ} is {OP} , says everyone who saw it .",
)
NEGATED_TEMPLATES = (
    "{SUBJ} was not {OP} at all .",
    "I would not call {subj} {OP} .",
    "Nobody found {subj} {OP} .",
)
NEUTRAL_TEMPLATES = (
    "{SUBJ} opens on {DAY} .",
    "{SUBJ} lasts about two hours .",
    "{SUBJ} was reviewed in {CITY} in {MONTH} .",
    "Tickets for {subj} go on sale in {MONTH} .",
    "{SUBJ} is listed in the guide for {CITY} .",
    "I read about {subj} on {DAY} .",
    "{SUBJ} will be discussed on the radio in {MONTH} .",
)
LABELS = ("negative", "neutral", "positive")
NEGATION_SHARE = 1 / 6


def _fill(template: str, rng: random.Random, opinion: tuple[str, ...] = ()) -> str:
    """Fill the slots; every ``{OP}`` draws an opinion word, and ``SUBJ`` is the subject capitalised."""
    subject = rng.choice(SUBJECTS).replace("{CITY}", rng.choice(CITIES))
    text = template.replace("{SUBJ}", subject[0].upper() + subject[1:]).replace("{subj}", subject)
    text = text.replace("{DAY}", rng.choice(DAYS)).replace("{MONTH}", rng.choice(MONTHS))
    text = text.replace("{CITY}", rng.choice(CITIES))
    while "{OP}" in text:
        text = text.replace("{OP}", rng.choice(opinion), 1)
    return text


def _review(rng: random.Random, label: str) -> str:
    """A sentence of sentiment ``label``: an opinion word of that polarity, or a negated word of the other."""
    if label == "neutral":
        return _fill(rng.choice(NEUTRAL_TEMPLATES), rng)
    same, other = (POSITIVE, NEGATIVE) if label == "positive" else (NEGATIVE, POSITIVE)
    if rng.random() < NEGATION_SHARE:
        return _fill(rng.choice(NEGATED_TEMPLATES), rng, other)
    return _fill(rng.choice(OPINION_TEMPLATES), rng, same)


def demo_sentiment(n_texts: int, seed: int) -> list[tuple[str, str]]:
    """``(text, label)`` pairs, the three labels about equally often."""
    rng = random.Random(seed)
    labelled = []
    for _ in range(n_texts):
        label = rng.choice(LABELS)
        labelled.append((_review(rng, label), label))
    return labelled


def demo_sentiment_pairs(n_pairs: int, seed: int) -> list[tuple[str, str, str]]:
    """``(first, second, label)``: two opinionated reviews, ``agree`` when their sentiments match, else
    ``disagree`` -- a task only a model that reads both texts can solve."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n_pairs):
        first, second = rng.choice(("negative", "positive")), rng.choice(("negative", "positive"))
        pairs.append((_review(rng, first), _review(rng, second), "agree" if first == second else "disagree"))
    return pairs
