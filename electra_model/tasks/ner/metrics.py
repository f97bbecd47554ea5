"""NER scores: entity-level precision/recall/F1 (conlleval's chunking and counts), a token-level report and a
confusion matrix over entity types.

Entity F1 is the number papers quote, as ``conlleval.pl`` counts it (:mod:`electra_model.tasks.ner.conlleval`, the
script rule for rule); the token-level report (with and without ``O``) is the one tutorials print, and is kept
separate so nobody mistakes one for the other. seqeval's default mode scores B/I/O tags alike
(tests/unit/code/test_conlleval.py checks it, entity for entity); it is not imported here because it loads
scikit-learn and SciPy (about a second) into every stage that scores entities: fine-tuning each epoch, export's
checks. scikit-learn is imported only by the two token-level reports, which the evaluate stage alone writes.
"""

from __future__ import annotations

from collections.abc import Sequence

from electra_model.tasks.ner.conlleval import count_chunks, sequence_rows


def _scores(correct: int, guessed: int, gold: int) -> dict[str, float]:
    """Precision, recall and F1 as fractions; a ratio with nothing to divide by is 0 (seqeval's zero_division=0)."""
    precision = correct / guessed if guessed else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": gold}


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """Entity-level P/R/F1 per type (every type in gold or predictions), ``overall`` (micro: conlleval's totals) and
    ``macro`` (the unweighted mean over types, its support the number of gold entities)."""
    counts = count_chunks(sequence_rows(gold, predicted))
    kinds = sorted(set(counts.gold) | set(counts.guessed))
    scores = {kind: _scores(counts.correct[kind], counts.guessed[kind], counts.gold[kind]) for kind in kinds}
    total = _scores(*(sum(found.values()) for found in (counts.correct, counts.guessed, counts.gold)))
    if kinds:
        scores["macro"] = {key: sum(scores[kind][key] for kind in kinds) / len(kinds)
                           for key in ("precision", "recall", "f1")}
        scores["macro"]["support"] = total["support"]
    scores["overall"] = total
    return scores


def token_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, str | float]:
    """Token-level classification report as text, with and without ``O``, and token accuracy."""
    from sklearn.metrics import classification_report as token_report  # see the module docstring: only evaluate

    flat_gold = [tag for sentence in gold for tag in sentence]
    flat_predicted = [tag for sentence in predicted for tag in sentence]
    labels = sorted(set(flat_gold) | set(flat_predicted), key=lambda tag: (tag == "O", tag[2:], tag))
    entity_labels = [tag for tag in labels if tag != "O"]
    correct = sum(g == p for g, p in zip(flat_gold, flat_predicted))
    return {
        "accuracy": correct / max(1, len(flat_gold)),
        "report_with_o": token_report(flat_gold, flat_predicted, labels=labels, digits=4, zero_division=0),
        "report_without_o": token_report(
            flat_gold, flat_predicted, labels=entity_labels, digits=4, zero_division=0
        )
        if entity_labels
        else "",
    }


def entity_type(tag: str) -> str:
    """``B-PER`` and ``I-PER`` -> ``PER``; ``O`` stays ``O``."""
    return tag if tag == "O" else tag[2:]


def type_confusion(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, list]:
    """Token counts of gold type (rows) against predicted type (columns), entity types sorted and ``O`` last: the
    off-diagonal cells show which types the model mixes up, and the ``O`` row and column what it misses or invents."""
    from sklearn.metrics import confusion_matrix  # see the module docstring: only evaluate

    flat_gold = [entity_type(tag) for sentence in gold for tag in sentence]
    flat_predicted = [entity_type(tag) for sentence in predicted for tag in sentence]
    labels = sorted((set(flat_gold) | set(flat_predicted)) - {"O"}) + ["O"]
    matrix = confusion_matrix(flat_gold, flat_predicted, labels=labels)
    return {"labels": labels, "matrix": matrix.tolist()}
