"""Sequence classification as a pipeline task (:class:`electra_model.tasks.base.Task`): labelled texts or text
pairs normalized to ``{train,valid,test}.jsonl``, ``ElectraForSequenceClassification`` fine-tuning selected on the
validation ``classification.selection_metric`` (summary key ``best_valid_accuracy`` or ``best_valid_macro_f1``;
per epoch ``valid_accuracy`` and ``valid_macro_f1``). Its evaluation (accuracy, macro-F1, per class) is
:class:`electra_model.tasks.classification.evaluation.ClassificationEvaluator`."""

from __future__ import annotations

from pathlib import Path

from electra_model.config import Params
from electra_model.tasks.base import Finetuned, MetricsCallback
from electra_model.tasks.classification.data import ClassificationSplits, load_task_data, read_normalized
from electra_model.tasks.classification.train import finetune_classifier


class ClassificationTask:
    name = "classification"
    title = "Sequence classification"
    valid_curve = ("valid_accuracy", "valid_macro_f1")

    def load_data(self, params: Params, cache_dir: Path) -> ClassificationSplits:
        return load_task_data(params.classification, params.data, params.seed, cache_dir)

    def split_path(self, folder: Path, split: str) -> Path:
        return Path(folder) / f"{split}.jsonl"

    def finetune(self, params: Params, pretrained_dir: Path, data_dir: Path, on_log: MetricsCallback) -> Finetuned:
        train = read_normalized(self.split_path(data_dir, "train"), params.classification)
        valid = read_normalized(self.split_path(data_dir, "valid"), params.classification)
        return Finetuned(*finetune_classifier(
            params.finetune, params.classification, params.seed, pretrained_dir, train, valid, on_log
        ))
