"""Load whichever client an exported model needs: the NER predictor or the classifier, decided by the model itself.

``model_meta.json``, written by the export stage beside the ONNX graphs, names the task (``ner`` or
``classification``) and the labels, so the CLI, the MLflow pyfunc and scripts load any exported model the same
way and never need a flag that could disagree with it::

    predictor = load_predictor("models:/electra-classifier@champion")   # or a directory, or models:/NAME/VERSION
    isinstance(predictor, ClassifierPredictor)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeAlias

from electra_model.errors import ElectraError
from electra_model.serving.classifier import CLASSIFICATION_TASK, ClassifierPredictor
from electra_model.serving.predictor import NER_TASK, NerPredictor, find_onnx_dir, local_model, read_meta, task_of

Predictor: TypeAlias = NerPredictor | ClassifierPredictor
PREDICTORS: dict[str, type[NerPredictor] | type[ClassifierPredictor]] = {
    NER_TASK: NerPredictor,
    CLASSIFICATION_TASK: ClassifierPredictor,
}


def predictor_for_dir(onnx_dir: Path | str, **options: Any) -> Predictor:
    """The client for the exported directory ``onnx_dir`` (or the MLflow model that holds one)."""
    onnx_dir = find_onnx_dir(Path(onnx_dir))
    task = task_of(read_meta(onnx_dir))
    if task not in PREDICTORS:
        raise ElectraError(
            f"{onnx_dir}: model_meta.json names task {task!r}, which this client does not serve "
            f"({sorted(PREDICTORS)}); update the client or re-export the model"
        )
    return PREDICTORS[task].from_dir(onnx_dir, **options)


def load_predictor(uri_or_path: str | Path, tracking_uri: str | None = None, **options: Any) -> Predictor:
    """Load from a ``models:/`` URI or a directory; ``options`` go to the predictor's ``from_dir``."""
    with local_model(uri_or_path, tracking_uri) as local:
        return predictor_for_dir(local, **options)
