"""A task as one plug-in: the torch-free spec the export stage, the registry, the client, the CLI and the flows read
instead of branching on task names.

A task's folder declares one :class:`TaskSpec` (``tasks/<name>/spec.py``) and :func:`electra_model.tasks.registry.
register_task` makes it known. The spec holds facts (its files, metric, registered name, ONNX inputs: data, so
importing it costs nothing) and its :class:`~electra_model.client.spec.ClientSpec` (how its exported model is
served); the torch side of its export (loading the fine-tuned model, reading a split, checking and scoring every
ONNX variant) is an :class:`Exporter` the spec makes on demand, so nothing here imports torch until an export runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from electra_model.client.spec import ClientSpec

if TYPE_CHECKING:
    from pydantic import BaseModel
    from transformers import PreTrainedModel

    from electra_model.tasks.base import Evaluator, Task, Trainer


class Exporter(Protocol):
    """The torch side of a task's export (:mod:`electra_model.export.build` and ``choose`` call it)."""

    def load_model(self, model_dir: Path, **options: Any) -> PreTrainedModel:
        """The fine-tuned model the finetune stage saved; ``options`` go to ``from_pretrained``."""
        ...

    def extra_files(self, model: PreTrainedModel, labels: Sequence[str]) -> dict[str, Any]:
        """JSON files the client needs beside the graphs, by file name (NER's CRF chain; usually none)."""
        ...

    def read_split(self, path: Path) -> Sequence[Any]:
        """The labelled examples of a split file the task's download wrote."""
        ...

    def check_variants(
        self, model: PreTrainedModel, onnx_dir: Path, examples: Sequence[Any], batch_size: int
    ) -> dict[str, dict[str, Any]]:
        """Per variant: ``max_abs_logit_diff`` and ``labels_identical`` against ``model`` (torch), and the spec's
        :attr:`TaskSpec.scores`, on the selection split."""
        ...

    def score_variants(self, onnx_dir: Path, examples: Sequence[Any], batch_size: int) -> dict[str, dict[str, float]]:
        """Per variant, the spec's :attr:`TaskSpec.scores` on a reporting split, through the client as served."""
        ...


Cell = str | int | float


@dataclass(frozen=True)
class TaskCard:
    """A task's own part of its model card (:mod:`electra_model.tracking.card_render` writes the rest): what the
    model is for, its test results in the task's terms and its failure modes, read from what the evaluate stage
    recorded. Numbers stay numbers here, so the card formats every figure one way and a test can read them back.

    ``pipeline_tag`` is the Hugging Face hub's task name (None: the hub's inference widget stays off);
    ``results`` is a table (``header`` then rows, e.g. per entity type or per class); ``headline`` the
    ``(metric type, metric name, value)`` triples of the hub's ``model-index``; ``checkpoint_loading`` says how
    ``transformers`` loads the saved checkpoint (a CRF head is not a class ``pipeline`` knows)."""

    pipeline_tag: str | None
    purpose: str
    results_header: tuple[str, ...]
    results: tuple[tuple[Cell, ...], ...]
    headline: tuple[tuple[str, str, float], ...]
    failure_modes: tuple[str, ...]
    checkpoint_loading: str


CardHook = Callable[[Mapping[str, Any], Path], TaskCard]
"""A task's card hook: the evaluate stage's metrics (``metrics/evaluate.json``) and its reports folder in, the
task's part of the card out."""


@dataclass(frozen=True)
class TaskSpec:
    """One task, as everything after fine-tuning sees it.

    ``name`` is ``params.yaml``'s ``task`` value and ``model_meta.json``'s ``task``; ``client`` the predictor that
    serves its exported model (``model_meta.json``'s ``predictor``, the client dispatches on it, never on the name);
    ``split_suffix`` is how its download names split files (``valid`` + suffix); ``quality_metric`` is the score
    (one of ``scores``) the variant choice and the registry's gate read, ``higher_is_better`` its direction (a
    correlation rises as the model improves, an error falls), and ``scores`` all that the export check records per
    variant; ``model_name`` is the registered model's name when ``export.model_name`` is null; ``architectures``
    are the ``config.json`` architectures its fine-tuned models are saved with (how the export stage knows a model's
    task without a param); ``exporter`` makes its :class:`Exporter`.

    A plug-in task (one the stages find through ``params.yaml``'s ``plugins`` or the ``electra_model.tasks`` entry
    points, :mod:`electra_model.tasks.plugins`) also gives the stages its halves here: ``data``, ``trainer`` and
    ``evaluator`` make its :class:`~electra_model.tasks.base.Task`, ``Trainer`` and ``Evaluator``, and
    ``params_model`` validates its own ``params.yaml`` section (the one named after it). The built-in tasks leave
    them ``None``: their halves are in the stages' own tables (:mod:`electra_model.tasks.catalog`, ``trainers``,
    ``evaluators``), so that each stage's DVC deps hold only the code it runs.

    ``card`` (a :data:`CardHook`) gives the model card its task-specific parts; a task without it still gets a
    generic card (:func:`electra_model.tracking.card_task.generic_task_card`)."""

    name: str
    client: ClientSpec
    split_suffix: str
    quality_metric: str
    higher_is_better: bool
    scores: tuple[str, ...]
    model_name: str
    architectures: tuple[str, ...]
    exporter: Callable[[], Exporter]
    data: Callable[[], Task] | None = None
    trainer: Callable[[], Trainer] | None = None
    evaluator: Callable[[], Evaluator] | None = None
    params_model: type[BaseModel] | None = None
    card: CardHook | None = None

