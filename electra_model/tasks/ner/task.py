"""NER's data as a pipeline task (:class:`electra_model.tasks.base.Task`): CoNLL splits in IOB2, read from the
``ner`` section's source (:mod:`electra_model.tasks.ner.data`). Its fine-tuning is
:class:`electra_model.tasks.ner.trainer.NerTrainer`, selected on validation entity F1 (``best_valid_f1``, per-epoch
``valid_f1``); its evaluation :class:`electra_model.tasks.ner.evaluation.NerEvaluator`."""

from __future__ import annotations

from pathlib import Path

from electra_model.config import Params
from electra_model.tasks.ner.data import NerSplits, load_ner


class NerTask:
    name = "ner"
    title = "NER"
    valid_curve = ("valid_f1",)

    def load_data(self, params: Params, cache_dir: Path) -> NerSplits:
        return load_ner(params.ner, params.data, params.seed, cache_dir)

    def split_path(self, folder: Path, split: str) -> Path:
        return Path(folder) / f"{split}.txt"
