"""The one registry of tasks: every task's :class:`~electra_model.tasks.spec.TaskSpec` by name, the single place a
task is registered (README, "Adding a task"); plug-ins outside the package are added by :func:`register_plugins`.

The export stage, the registry's gate and model names and the flows' registry reconciliation look a task up here by
the name ``model_meta.json`` or ``metrics/export.json`` records, and hold no task names themselves; the client, the
pyfunc and the CLI look up the predictor kind instead, in the table :func:`register_task` hands each task's client to
(:mod:`electra_model.client.loader`). A task outside this package registers itself with one call, or is found by
the stages through params.yaml's ``plugins`` or an entry point (:func:`register_plugins`)::

    register_task(TaskSpec(name="my_task", client=ClientSpec(kind="my_prediction", ...), split_suffix=".jsonl", ...))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from electra_model.client.loader import add_client
from electra_model.config import ExportParams
from electra_model.errors import ElectraError
from electra_model.tasks.classification.spec import CLASSIFICATION
from electra_model.tasks.ner.spec import NER
from electra_model.tasks.plugins import find_plugins
from electra_model.tasks.spec import TaskSpec

TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> None:
    """Make ``spec`` known to the pipeline and its client to the loader (a later spec of the same name replaces it)."""
    TASKS[spec.name] = spec
    add_client(spec.client)


for _builtin in (NER, CLASSIFICATION):
    register_task(_builtin)


def register_plugins(references: Sequence[str]) -> None:
    """Register the installed plug-in tasks and those params.yaml's ``plugins`` names
    (:func:`electra_model.tasks.plugins.find_plugins`): what a stage that reads a model's task from the model
    itself (export) calls first, so a plug-in's model is known without editing this file."""
    for spec in find_plugins(references).values():
        register_task(spec)


def spec_for(task: str) -> TaskSpec:
    """The spec of the task named ``task``."""
    if task not in TASKS:
        raise ElectraError(f"no task {task!r} is registered ({sorted(TASKS)}); register it with register_task")
    return TASKS[task]


def spec_for_architectures(architectures: Sequence[str], where: Path) -> TaskSpec:
    """The task whose fine-tuned models are saved with one of ``architectures`` (a ``config.json``'s list)."""
    found = [spec for spec in TASKS.values() if set(spec.architectures) & set(architectures)]
    if not found:
        known = sorted(name for spec in TASKS.values() for name in spec.architectures)
        raise ElectraError(
            f"{where}: architectures {list(architectures)} is no fine-tuned model of a registered task "
            f"({', '.join(known)}); point at the folder the finetune stage wrote"
        )
    return found[0]


def registered_name(export: ExportParams, task: str) -> str:
    """The registered model's name for a model of ``task``: ``export.model_name`` when set, else the task's."""
    return export.model_name or spec_for(task).model_name
