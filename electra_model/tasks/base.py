"""The task interface: what a fine-tuning task gives the download, finetune and evaluate stages, so that one
pipeline (the same stages, the same paths in dvc.yaml) serves every task ``params.yaml``'s ``task`` can name.

A :class:`Task` reads its data from the configured source and writes it to the stage's task folder in its own
normalized form (NER: CoNLL ``.txt`` in IOB2; classification: ``.jsonl``); its :class:`Trainer` fine-tunes a model
on the train split with model selection on valid; its :class:`Evaluator` scores a split with the task's metrics and
reports. They are three objects so that a stage's DVC deps hold only what the stage runs: editing the training code
must not re-run the download, nor editing an error report fine-tuning. The implementations live in each task's room
(``tasks/ner/{task,trainer,evaluation}.py``, ``tasks/classification/{task,trainer,evaluation}.py``), and
:func:`electra_model.tasks.catalog.task_for`, :func:`electra_model.tasks.trainers.trainer_for` and
:func:`electra_model.tasks.evaluators.evaluator_for` pick them::

    task = task_for(params)
    splits = task.load_data(params, cache_dir)           # checked; written by the download stage
    finetuned = trainer_for(params).finetune(params, Path("models/pretrained"), Path("data/task"), on_log)
    metrics = evaluator_for(params).evaluate(params, Path("models/finetuned"), Path("data/task/test.txt"), "test",
                                             reports, confusion_csv)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedModel

    from electra_model.config import Params
    from electra_model.data.sources import TaskSplits

MetricsCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Finetuned:
    """A fine-tuned model with the tokenizer it was trained with, and the summary the finetune stage writes to its
    metrics: ``best_valid_<metric>`` (the validation score the kept epoch was chosen on), ``best_epoch``,
    ``epochs_run`` and ``steps``."""

    model: PreTrainedModel
    tokenizer: Tokenizer
    summary: dict[str, float]


class Task(Protocol):
    """One fine-tuning task's data, as the stages use it."""

    name: str
    """The ``task`` value in params.yaml; also names the task's part of the download summary."""
    title: str
    """A human name for plot titles."""
    valid_curve: tuple[str, ...]
    """The per-epoch validation metrics fine-tuning logs (to MLflow and as columns of the validation curve CSV);
    ``tune.pruning.curve`` can name any of them."""

    def load_data(self, params: Params, cache_dir: Path) -> TaskSplits:
        """The train, valid and test splits from ``data.source``, read and checked before anything is written."""
        ...

    def split_path(self, folder: Path, split: str) -> Path:
        """Where the download stage wrote ``split`` in ``folder``."""
        ...


class Trainer(Protocol):
    """How one task fine-tunes a model."""

    def finetune(self, params: Params, pretrained_dir: Path, data_dir: Path, on_log: MetricsCallback) -> Finetuned:
        """Train on ``data_dir``'s train split, keep the epoch best on its valid split; test is never read."""
        ...


class Evaluator(Protocol):
    """How one task scores a fine-tuned model on a held-out split."""

    def evaluate(
        self, params: Params, model_dir: Path, split_path: Path, split: str, reports: Path, confusion: Path
    ) -> dict[str, Any]:
        """Score the model on ``split`` (the file ``split_path`` the download stage wrote): write the task's reports into ``reports`` (a staging folder), the
        ``actual,predicted`` rows of the confusion plot to ``confusion`` (a PNG of it beside), and return the
        metrics."""
        ...
