"""NER fine-tuning as a pipeline trainer (:class:`electra_model.tasks.base.Trainer`): the ``finetune.head`` model
on the CoNLL train split, the epoch kept by validation entity F1."""

from __future__ import annotations

from pathlib import Path

from electra_model.config import Params
from electra_model.tasks.ner.conll import check_labels_known, read_conll
from electra_model.tasks.base import Finetuned, MetricsCallback
from electra_model.tasks.ner.finetune import finetune
from electra_model.tasks.ner.task import NerTask


class NerTrainer:
    def finetune(self, params: Params, pretrained_dir: Path, data_dir: Path, on_log: MetricsCallback) -> Finetuned:
        task = NerTask()
        train = read_conll(task.split_path(data_dir, "train"), scheme="iob2")
        valid_path = task.split_path(data_dir, "valid")
        valid = read_conll(valid_path, scheme="iob2")
        check_labels_known(train, valid, valid_path)
        return Finetuned(*finetune(params.finetune, params.seed, pretrained_dir, train, valid, on_log))
