"""What the client needs to know about a task to serve its exported model: the torch-free half of a task's spec.

Each predictor module declares one :class:`ClientSpec` for the kind of prediction it makes
(:data:`electra_model.client.ner.NER`: token tagging, :data:`electra_model.client.classifier.CLASSIFIER`: text
classification); a task's full spec in its own folder (:class:`electra_model.tasks.spec.TaskSpec`) names the one it
is served by, the export stage records its ``kind`` as ``model_meta.json``'s ``predictor``, and the loader
(:mod:`electra_model.client.loader`), the pyfunc and the CLI look that kind up. Nothing here names a task: a new
task served by an existing predictor needs no client change, and the light client serves it as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class Predictor(Protocol):
    """A loaded exported model: inputs in, one prediction per text (or text pair) out."""

    variant: str

    def predict(self, texts: Sequence[str], *args: Any, **kwargs: Any) -> list[Any]: ...


class PredictorFactory(Protocol):
    """How a task's predictor opens an exported directory (the predictor class itself, via ``from_dir``)."""

    def __call__(self, onnx_dir: Path | str, **options: Any) -> Predictor: ...


@dataclass(frozen=True)
class ClientSpec:
    """The torch-free face of a task: one kind of predictor.

    ``kind`` names the prediction (``token_tagging``, ``text_classification``, a plug-in's own), as
    ``model_meta.json``'s ``predictor`` records it; ``inputs`` are the ONNX graph's input names in order (the export traces them, the client feeds them);
    ``logit_axes`` the dynamic axes of its ``logits`` output (``{0: "batch"}`` for one row per text,
    ``{0: "batch", 1: "sequence"}`` for one per token). ``takes_pairs`` says whether ``predict`` accepts a second
    text per text (``pairs=``). ``to_json`` turns one prediction into what the MLflow pyfunc answers; ``json_key``,
    when set, is the key ``electra predict --json`` nests that value under (else the value, a mapping, is merged into
    the row); ``human`` gives the CLI's lines for one prediction."""

    kind: str
    load: PredictorFactory
    inputs: tuple[str, ...]
    logit_axes: Mapping[int, str]
    takes_pairs: bool
    to_json: Callable[[Any], Any]
    human: Callable[[Any], list[str]]
    json_key: str | None = None

    @property
    def per_token(self) -> bool:
        """Whether the graph scores every token (a sequence axis on the logits) rather than every text."""
        return 1 in self.logit_axes
