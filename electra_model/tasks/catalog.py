"""Which task ``params.yaml``'s ``task`` names: the built-in tasks' data, or a plug-in's (its spec's ``data``,
:mod:`electra_model.tasks.plugins`)::

    task = task_for(load_params())
"""

from __future__ import annotations

from electra_model.config import Params
from electra_model.tasks.base import Task
from electra_model.tasks.classification.task import ClassificationTask
from electra_model.tasks.ner.task import NerTask
from electra_model.tasks.plugins import plugin_part

TASKS: dict[str, Task] = {task.name: task for task in (NerTask(), ClassificationTask())}


def task_for(params: Params) -> Task:
    """The task the params select; a name that is no task, built-in or plug-in, is refused listing them."""
    if params.task in TASKS:
        return TASKS[params.task]
    return plugin_part(params, "data", TASKS)
