"""What the export stage measured and chose, as one typed record: the stage writes it to ``metrics/export.json``,
the registry's gate and tags read it, and ``registry_sync`` reads it back from that file. Imports nothing heavy,
so the registry (and the Prefect flow through it) can use it without torch or onnxruntime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from electra_model.errors import ElectraError


def at_least_as_good(score: float, bar: float, higher_is_better: bool) -> bool:
    """``score >= bar`` for a metric that rises as a model improves, ``score <= bar`` for one that falls."""
    return score >= bar if higher_is_better else score <= bar


@dataclass(frozen=True)
class ExportQuality:
    """The served variant's validation scores and the fp32 graphs' parity with torch, with what they were chosen on.

    ``task`` is the model's; ``metric`` names the task's quality score
    (:attr:`~electra_model.tasks.spec.TaskSpec.quality_metric`), ``higher_is_better`` its direction (the spec's),
    ``score`` is its value for the served variant and
    ``scores`` all of that variant's task scores (:attr:`~electra_model.tasks.spec.TaskSpec.scores`). ``variants``
    holds each variant's checks (those scores, ``max_abs_logit_diff``, ``labels_identical``) and batch-1 latency
    (``latency_ms_b1``, ``latency_ms_b1_p95``);
    ``selection_split`` is the split all of them were measured on (validation: the gate never reads test)."""

    task: str
    metric: str
    higher_is_better: bool
    score: float
    scores: dict[str, float]
    serve_variant: str
    serve_reason: str
    max_abs_logit_diff: float
    labels_identical: bool
    parity_passed: bool
    parity_atol: float
    variants: dict[str, dict[str, Any]]
    fused_operators: dict[str, int]
    selection_split: str

    def reaches(self, bar: float) -> bool:
        """Whether :attr:`score` is at least as good as ``bar``: no lower when higher is better, no higher when lower
        is (an error such as MSE)."""
        return at_least_as_good(self.score, bar, self.higher_is_better)

    def to_dict(self) -> dict[str, Any]:
        """The record, with the served variant's scores also at the top level (``f1`` or ``accuracy``), where
        ``dvc metrics show`` and ``dvc exp show`` list them."""
        return {**self.scores, **asdict(self)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], where: str) -> ExportQuality:
        """The record inside a larger mapping (``metrics/export.json`` holds more keys); ``where`` names the source
        in the error a record written by older code (lacking a field) raises."""
        names = [field.name for field in fields(cls)]
        missing = [name for name in names if name not in record]
        if missing:
            raise ElectraError(f"{where}: lacks {missing}; re-run `dvc repro export` to record them")
        return cls(**{name: record[name] for name in names})
