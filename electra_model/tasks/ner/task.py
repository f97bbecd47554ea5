"""NER as a pipeline task (:class:`electra_model.tasks.base.Task`): CoNLL splits in IOB2, token-classification
fine-tuning selected on validation entity F1 (``best_valid_f1``, per-epoch ``valid_f1``). Its evaluation is
:class:`electra_model.tasks.ner.evaluation.NerEvaluator`."""

from __future__ import annotations

from pathlib import Path

from electra_model.config import Params
from electra_model.data.conll import check_labels_known, read_conll
from electra_model.data.sources import NerSplits, load_ner
from electra_model.tasks.base import Finetuned, MetricsCallback
from electra_model.tasks.ner.finetune import finetune


class NerTask:
    name = "ner"
    title = "NER"
    valid_curve = ("valid_f1",)

    def load_data(self, params: Params, cache_dir: Path) -> NerSplits:
        return load_ner(params.data, params.seed, cache_dir)

    def split_path(self, folder: Path, split: str) -> Path:
        return Path(folder) / f"{split}.txt"

    def finetune(self, params: Params, pretrained_dir: Path, data_dir: Path, on_log: MetricsCallback) -> Finetuned:
        train = read_conll(self.split_path(data_dir, "train"), scheme="iob2")
        valid_path = self.split_path(data_dir, "valid")
        valid = read_conll(valid_path, scheme="iob2")
        check_labels_known(train, valid, valid_path)
        return Finetuned(*finetune(params.finetune, params.seed, pretrained_dir, train, valid, on_log))
