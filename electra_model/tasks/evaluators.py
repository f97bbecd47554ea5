"""How the task ``params.yaml``'s ``task`` names is evaluated: registered here beside
:mod:`electra_model.tasks.catalog` (kept apart so that the finetune stage's DVC deps do not hold evaluation code)::

    metrics = evaluator_for(params).evaluate(params, model_dir, split_path, "test", reports, confusion_csv)
"""

from __future__ import annotations

from electra_model.config import Params
from electra_model.tasks.base import Evaluator
from electra_model.tasks.classification.evaluation import ClassificationEvaluator
from electra_model.tasks.ner.evaluation import NerEvaluator
from electra_model.tasks.plugins import plugin_part

EVALUATORS: dict[str, Evaluator] = {"ner": NerEvaluator(), "classification": ClassificationEvaluator()}


def evaluator_for(params: Params) -> Evaluator:
    """The evaluator of the task the params select (a plug-in's through its spec, :mod:`electra_model.tasks.plugins`)."""
    if params.task in EVALUATORS:
        return EVALUATORS[params.task]
    return plugin_part(params, "evaluator", EVALUATORS)
