"""The registered model's MLflow pyfunc: the ONNX NER model behind MLflow's standard loading and serving.

:func:`electra_model.registry.register` logs this file as an MLflow "model from code": MLflow runs it whenever the
model is loaded, with the ``electra_model`` package shipped alongside as a code path and the exported directory as
the artifact ``onnx_dir``. So any MLflow client can use the champion without this repository::

    model = mlflow.pyfunc.load_model("models:/electra-ner@champion")
    model.predict(["Angela Merkel visited Paris."])     # [[{"type": "PER", "text": "Angela Merkel", ...}, ...]]

or serve it over HTTP with ``mlflow models serve -m models:/electra-ner@champion``. Input: a list of texts, a
DataFrame with a ``text`` column, or a dict ``{"text": str | list[str]}``; output: one list of entity dicts per text.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel, PythonModelContext

from electra_model.errors import ElectraError
from electra_model.inference import NerPredictor


def as_texts(model_input: Any) -> list[str]:
    """The texts in any input shape MLflow clients send: REST requests arrive as DataFrames or lists."""
    if hasattr(model_input, "columns"):  # a pandas DataFrame; pandas itself is only needed by whoever sent it
        columns = list(model_input.columns)
        if "text" not in columns and len(columns) != 1:
            raise ElectraError(f"input DataFrame needs a 'text' column; it has {columns}")
        return [str(text) for text in model_input["text" if "text" in columns else columns[0]]]
    if isinstance(model_input, dict):
        if "text" not in model_input:
            raise ElectraError(f"input dict needs a 'text' key; it has {sorted(model_input)}")
        return as_texts(model_input["text"])
    if isinstance(model_input, str):
        return [model_input]
    return [str(text) for text in model_input]


class NerModel(PythonModel):
    """Texts to entity dicts with character offsets, on onnxruntime."""

    def load_context(self, context: PythonModelContext) -> None:
        self.predictor = NerPredictor.from_dir(context.artifacts["onnx_dir"])

    def predict(
        self, context: PythonModelContext, model_input, params: dict[str, Any] | None = None
    ) -> list[list[dict[str, Any]]]:
        """``model_input`` has no type hint on purpose: MLflow would coerce every input to the hinted type, and
        this model accepts several shapes (MLflow says once per process that it would like a hint)."""
        results = self.predictor.predict(as_texts(model_input))
        return [[entity.to_dict() for entity in entities] for entities in results]


mlflow.models.set_model(NerModel())
