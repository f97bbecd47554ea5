"""Which task ``params.yaml``'s ``task`` names: the one place a new task is registered (see README, "Adding a
task")::

    task = task_for(load_params())
"""

from __future__ import annotations

from electra_model.config import Params
from electra_model.tasks.base import Task
from electra_model.tasks.classification.task import ClassificationTask
from electra_model.tasks.ner.task import NerTask

TASKS: dict[str, Task] = {task.name: task for task in (NerTask(), ClassificationTask())}


def task_for(params: Params) -> Task:
    """The task the params select (config.py has already checked that ``task`` is one of :data:`TASKS`)."""
    return TASKS[params.task]
