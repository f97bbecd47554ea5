"""The task's part of a model card: its spec's card hook, or a generic one for a task that has none.

A plug-in task need not know about cards: :func:`generic_task_card` lists every number its evaluate stage recorded,
so its registered versions still get a card."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from electra_model.tasks.spec import TaskCard, TaskSpec
from electra_model.tracking.runs import flatten


def generic_task_card(spec: TaskSpec, evaluation: Mapping[str, Any]) -> TaskCard:
    """Every number in ``metrics/evaluate.json`` as a row, and the spec's quality metric as the headline."""
    numbers = {key: value for key, value in flatten(evaluation).items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    metric = spec.quality_metric
    headline = ((metric, metric, float(numbers[metric])),) if metric in numbers else ()
    return TaskCard(
        pipeline_tag=None,
        purpose=f"A fine-tuned ELECTRA model for the task `{spec.name}`.",
        results_header=("metric", "value"),
        results=tuple(sorted(numbers.items())),
        headline=headline,
        failure_modes=(f"the task `{spec.name}` gives its card no error report; see the evaluate stage's reports",),
        checkpoint_loading="`transformers.AutoModel.from_pretrained(FOLDER)` loads its encoder and head weights.",
    )


def task_card(spec: TaskSpec, evaluation: Mapping[str, Any], reports: Path) -> TaskCard:
    """The spec's own card hook when it has one, else :func:`generic_task_card`."""
    return spec.card(evaluation, reports) if spec.card is not None else generic_task_card(spec, evaluation)
