"""Sequence-classification fine-tuning as a pipeline trainer (:class:`electra_model.tasks.base.Trainer`): on the
normalized train split, the epoch kept by the validation ``classification.selection_metric``."""

from __future__ import annotations

from pathlib import Path

from electra_model.config import Params
from electra_model.tasks.base import Finetuned, MetricsCallback
from electra_model.tasks.classification.data import read_normalized
from electra_model.tasks.classification.task import ClassificationTask
from electra_model.tasks.classification.train import finetune_classifier


class ClassificationTrainer:
    def finetune(self, params: Params, pretrained_dir: Path, data_dir: Path, on_log: MetricsCallback) -> Finetuned:
        task = ClassificationTask()
        train = read_normalized(task.split_path(data_dir, "train"), params.classification)
        valid = read_normalized(task.split_path(data_dir, "valid"), params.classification)
        return Finetuned(*finetune_classifier(
            params.finetune, params.classification, params.seed, pretrained_dir, train, valid, on_log
        ))
