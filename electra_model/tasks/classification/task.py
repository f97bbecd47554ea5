"""Sequence classification's data as a pipeline task (:class:`electra_model.tasks.base.Task`): labelled texts or
text pairs normalized to ``{train,valid,test}.jsonl``. Its fine-tuning is
:class:`electra_model.tasks.classification.trainer.ClassificationTrainer`, selected on the validation
``classification.selection_metric`` (summary key ``best_valid_accuracy`` or ``best_valid_macro_f1``; per epoch
``valid_accuracy`` and ``valid_macro_f1``); its evaluation (accuracy, macro-F1, per class)
:class:`electra_model.tasks.classification.evaluation.ClassificationEvaluator`."""

from __future__ import annotations

from pathlib import Path

from electra_model.config import Params
from electra_model.tasks.classification.data import ClassificationSplits, load_task_data


class ClassificationTask:
    name = "classification"
    title = "Sequence classification"
    valid_curve = ("valid_accuracy", "valid_macro_f1")

    def load_data(self, params: Params, cache_dir: Path) -> ClassificationSplits:
        return load_task_data(params.classification, params.data, params.seed, cache_dir)

    def split_path(self, folder: Path, split: str) -> Path:
        return Path(folder) / f"{split}.jsonl"
