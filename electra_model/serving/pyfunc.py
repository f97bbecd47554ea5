"""The registered model's MLflow pyfunc: the ONNX NER model behind MLflow's standard loading and serving.

:func:`electra_model.tracking.registry.register` logs this file as an MLflow "model from code": MLflow runs it
whenever the
model is loaded, with the ``electra_model`` package shipped alongside as a code path and the exported directory as
the artifact ``onnx_dir``. So any MLflow client can use the champion without this repository::

    model = mlflow.pyfunc.load_model("models:/electra-ner@champion")
    model.predict(["Angela Merkel visited Paris."])     # [[{"type": "PER", "text": "Angela Merkel", ...}, ...]]

or serve it over HTTP with ``mlflow models serve -m models:/electra-ner@champion --env-manager local`` and POST
``{"inputs": ["text", ...]}`` (or ``dataframe_split`` / ``dataframe_records`` with a ``text`` column) to
``/invocations``. Input: a list of texts, a DataFrame with a ``text`` column, or a dict ``{"text": str | list[str]}``;
output: one list of entity dicts per text. Input that is not text is refused with HTTP 400 and a message saying
which item is wrong; the server keeps serving.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel, PythonModelContext

from electra_model.errors import ElectraError
from electra_model.serving.predictor import NerPredictor, check_texts


def as_texts(model_input: Any) -> list[str]:
    """The texts in any input shape MLflow clients send: REST requests arrive as DataFrames, lists or arrays.
    Anything that is not a string (a null, a number, a nested list) is refused by name, not stringified."""
    if hasattr(model_input, "columns"):  # a pandas DataFrame; pandas itself is only needed by whoever sent it
        columns = list(model_input.columns)
        if "text" not in columns and len(columns) != 1:
            raise ElectraError(f"input DataFrame needs a 'text' column; it has {columns}")
        return check_texts(list(model_input["text" if "text" in columns else columns[0]]))
    if isinstance(model_input, dict):
        if "text" not in model_input:
            raise ElectraError(f"input dict needs a 'text' key; it has {sorted(model_input)}")
        return as_texts(model_input["text"])
    if isinstance(model_input, str):
        return [model_input]
    return check_texts(list(model_input))


class NerModel(PythonModel):
    """Texts to entity dicts with character offsets, on onnxruntime, in the variant the export chose for the
    device (``model_meta.json``)."""

    def load_context(self, context: PythonModelContext) -> None:
        self.predictor = NerPredictor.from_dir(context.artifacts["onnx_dir"])

    def predict(
        self, context: PythonModelContext, model_input, params: dict[str, Any] | None = None
    ) -> list[list[dict[str, Any]]]:
        """``model_input`` has no type hint on purpose: MLflow would coerce every input to the hinted type, and
        this model accepts several shapes (MLflow says once per process that it would like a hint). A bad input
        becomes an MLflow "invalid parameter" error, which the scoring server answers with HTTP 400 and the message."""
        try:
            results = self.predictor.predict(as_texts(model_input))
        except ElectraError as error:
            raise MlflowException.invalid_parameter_value(str(error)) from None
        return [[entity.to_dict() for entity in entities] for entities in results]


mlflow.models.set_model(NerModel())
