"""How the task ``params.yaml``'s ``task`` names is fine-tuned: registered here beside
:mod:`electra_model.tasks.catalog` (kept apart so that the download stage's DVC deps do not hold training code)::

    finetuned = trainer_for(params).finetune(params, pretrained_dir, data_dir, on_log)
"""

from __future__ import annotations

from electra_model.config import Params
from electra_model.tasks.base import Trainer
from electra_model.tasks.classification.trainer import ClassificationTrainer
from electra_model.tasks.ner.trainer import NerTrainer
from electra_model.tasks.plugins import plugin_part

TRAINERS: dict[str, Trainer] = {"ner": NerTrainer(), "classification": ClassificationTrainer()}


def trainer_for(params: Params) -> Trainer:
    """The trainer of the task the params select (a plug-in's through its spec, :mod:`electra_model.tasks.plugins`)."""
    if params.task in TRAINERS:
        return TRAINERS[params.task]
    return plugin_part(params, "trainer", TRAINERS)
