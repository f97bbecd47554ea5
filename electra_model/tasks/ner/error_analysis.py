"""Where entity F1 is lost: each wrong entity put in one class, and the entity strings most often confused.

Every predicted entity that is not an exact match is a *type* error (same words, other type), a *boundary* error
(overlaps a gold entity of its type with other boundaries), a *boundary + type* error (overlaps one of another type)
or *spurious* (overlaps none); every gold entity that no prediction overlaps is *missed*. So a low F1 says whether
the model finds entities but mislabels them, finds them but cuts them wrongly, or does not find them at all.
Chunking is conlleval's (:func:`electra_model.tasks.ner.conlleval.chunks`), the same as the scores'.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from electra_model.tasks.ner.conll import Sentence
from electra_model.tasks.ner.conlleval import chunks

CATEGORIES = ("correct", "type", "boundary", "boundary_type", "spurious", "missed")


@dataclass(frozen=True)
class Span:
    """An entity: its type and words ``start .. end - 1`` of a sentence."""

    type: str
    start: int
    end: int

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def text(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens[self.start : self.end])


def spans(tags: Sequence[str]) -> list[Span]:
    """The entities of one sentence's tags."""
    return [Span(kind, start, end) for kind, start, end in chunks(tags)]


def classify(gold: Sequence[Span], predicted: Sequence[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """``(category, gold span, predicted span)`` for every entity of one sentence (see the module docstring); a
    wrong prediction is paired with the gold entity it overlaps most."""
    gold_set = set(gold)
    outcomes: list[tuple[str, Span | None, Span | None]] = []
    for guess in predicted:
        if guess in gold_set:
            outcomes.append(("correct", guess, guess))
            continue
        overlapping = [g for g in gold if g.overlaps(guess)]
        if not overlapping:
            outcomes.append(("spurious", None, guess))
            continue
        best = max(overlapping, key=lambda g: (min(g.end, guess.end) - max(g.start, guess.start), g.type == guess.type))
        same_words = (best.start, best.end) == (guess.start, guess.end)
        category = "type" if same_words else "boundary" if best.type == guess.type else "boundary_type"
        outcomes.append((category, best, guess))
    for entity in gold:
        if not any(entity.overlaps(guess) for guess in predicted):
            outcomes.append(("missed", entity, None))
    return outcomes


def analyse(sentences: Sequence[Sentence], predicted: Sequence[Sequence[str]], top: int) -> dict:
    """Counts per error class (overall and per gold or predicted type) and the ``top`` most frequent strings of
    each error class, e.g. ``"Washington" LOC -> PER``."""
    counts: Counter[str] = Counter()
    by_type: dict[str, Counter[str]] = {}
    examples: dict[str, Counter[str]] = {category: Counter() for category in CATEGORIES[1:]}
    for sentence, tags in zip(sentences, predicted, strict=True):
        for category, gold, guess in classify(spans(sentence.tags), spans(tags)):
            counts[category] += 1
            kind = (gold or guess).type
            by_type.setdefault(kind, Counter())[category] += 1
            if category != "correct":
                examples[category][_describe(category, gold, guess, sentence.tokens)] += 1
    return {
        "counts": {category: counts[category] for category in CATEGORIES},
        "per_type": {kind: {c: found[c] for c in CATEGORIES} for kind, found in sorted(by_type.items())},
        "most_common": {
            category: [{"entity": text, "count": n} for text, n in found.most_common(top)]
            for category, found in examples.items()
        },
    }


def _describe(category: str, gold: Span | None, guess: Span | None, tokens: Sequence[str]) -> str:
    if gold is None:
        return f'"{guess.text(tokens)}" O -> {guess.type}'
    if guess is None:
        return f'"{gold.text(tokens)}" {gold.type} -> O'
    if category == "type":
        return f'"{gold.text(tokens)}" {gold.type} -> {guess.type}'
    return f'"{gold.text(tokens)}" {gold.type} -> "{guess.text(tokens)}" {guess.type}'


def render(analysis: dict) -> str:
    """The analysis as a short text report for people (errors.txt)."""
    counts = analysis["counts"]
    lines = ["entity outcomes: " + ", ".join(f"{category} {counts[category]}" for category in CATEGORIES), ""]
    for category, entries in analysis["most_common"].items():
        lines.append(f"most common {category.replace('_', ' + ')} errors:")
        lines += [f"  {entry['count']:5d}  {entry['entity']}" for entry in entries] or ["  (none)"]
        lines.append("")
    return "\n".join(lines)
