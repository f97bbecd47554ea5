"""NER's part of the model card (:class:`electra_model.tasks.spec.TaskCard`): test scores per entity type, on the
gold words and on raw text, and the failure modes from the evaluate stage's error analysis (``errors.json``).

Torch-free: it reads only what the evaluate stage recorded, so the card stage needs no model code."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from electra_model.errors import ElectraError
from electra_model.tasks.spec import Cell, TaskCard

ERROR_REPORT = "errors.json"
CONFUSIONS_SHOWN = 3
OUTCOMES = {  # errors.json's categories (tasks/ner/error_analysis.py), as a reader of the card needs them said
    "type": "right words, wrong type",
    "boundary": "right type, wrong span",
    "boundary_type": "wrong span and wrong type",
    "spurious": "found where the text has no entity",
    "missed": "an entity the model did not find at all",
}
HEADER = ("entity type", "test entities", "precision", "recall", "F1 (gold words)", "F1 (raw text)")


def results(evaluation: Mapping[str, Any]) -> tuple[tuple[Cell, ...], ...]:
    """One row per entity type, then the micro average (``overall``): the gold-word scores and the raw-text F1
    (each sentence typed as plain text through the client, its entities mapped back onto the gold words)."""
    entity, raw = evaluation["entity"], evaluation.get("raw_text_entity", {})
    kinds = sorted(key for key in entity if key not in ("overall", "macro")) + ["overall"]
    return tuple(
        (kind, entity[kind]["support"], entity[kind]["precision"], entity[kind]["recall"], entity[kind]["f1"],
         raw[kind]["f1"] if kind in raw else "not recorded")
        for kind in kinds
    )


def failure_modes(reports: Path) -> tuple[str, ...]:
    """One line per kind of error: how many, and the confusions that made most of them."""
    path = reports / ERROR_REPORT
    if not path.is_file():
        raise ElectraError(f"{path} is missing: the evaluate stage writes it; run `dvc repro evaluate`")
    analysis = json.loads(path.read_text(encoding="utf-8"))
    lines = []
    for category, meaning in OUTCOMES.items():
        common = analysis["most_common"].get(category, [])[:CONFUSIONS_SHOWN]
        examples = "; ".join(f"{entry['entity']} ({entry['count']} {'time' if entry['count'] == 1 else 'times'})" for entry in common) or "none listed"
        lines.append(f"{category.replace('_', ' + ')} ({meaning}): {analysis['counts'][category]} entities; "
                     f"most often {examples}")
    return tuple(lines)


def ner_card(evaluation: Mapping[str, Any], reports: Path) -> TaskCard:
    """The card hook of :data:`electra_model.tasks.ner.spec.NER`."""
    overall = evaluation["entity"]["overall"]
    kinds = sorted(key for key in evaluation["entity"] if key not in ("overall", "macro"))
    headline = [("f1", "entity F1 (gold words)", overall["f1"]), ("precision", "entity precision", overall["precision"]),
                ("recall", "entity recall", overall["recall"])]
    if "raw_text_entity_f1" in evaluation:
        headline.append(("f1", "entity F1 (raw text)", evaluation["raw_text_entity_f1"]))
    crf = evaluation.get("head") == "crf"
    loading = (
        "Its head is a CRF (`ElectraCRFForTokenClassification`), which `transformers` does not know: "
        "`pipeline(\"token-classification\", model=FOLDER)` would load it as a plain softmax head and drop the "
        "learned transitions. Load it with `electra_model.tasks.ner.heads.load_finetuned(FOLDER)`."
        if crf else
        "`transformers.pipeline(\"token-classification\", model=FOLDER, aggregation_strategy=\"first\")` loads it."
    )
    return TaskCard(
        pipeline_tag="token-classification",
        purpose=(f"Finds named entities of the types {', '.join(kinds)} in text and gives each its type, "
                 "character offsets and a score."),
        results_header=HEADER,
        results=results(evaluation),
        headline=tuple(headline),
        failure_modes=failure_modes(reports),
        checkpoint_loading=loading,
    )
