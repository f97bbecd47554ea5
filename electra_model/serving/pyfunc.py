"""The registered model's MLflow pyfunc: the ONNX model (NER or classifier) behind MLflow's standard loading and
serving.

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

A classifier (``models:/electra-classifier@champion``; the exported ``model_meta.json`` says which task) takes the
same inputs, plus a ``pair`` column or key for text pairs (``{"text": [...], "pair": [...]}``), and answers
``{"label", "score", "scores": {label: probability}}`` per text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import REQUEST_LIMIT_EXCEEDED
from mlflow.pyfunc import PythonModel, PythonModelContext

from electra_model.errors import ElectraError
from electra_model.client.exported import check_texts, find_onnx_dir, read_meta
from electra_model.client.limits import RequestLimits, RequestTooLarge
from electra_model.client.loader import client_for_dir

PAIR = "pair"


def as_texts(model_input: Any) -> list[str]:
    """The texts in any input shape MLflow clients send: REST requests arrive as DataFrames, lists or arrays.
    Anything that is not a string (a null, a number, a nested list) is refused by name, not stringified."""
    if hasattr(model_input, "columns"):  # a pandas DataFrame; pandas itself is only needed by whoever sent it
        if "text" not in model_input.columns:  # another column taken for the text would tag ids or labels without a word
            raise ElectraError(f"input DataFrame needs a 'text' column; it has {list(model_input.columns)}")
        return check_texts(list(model_input["text"]))
    if isinstance(model_input, dict):
        if "text" not in model_input:
            raise ElectraError(f"input dict needs a 'text' key; it has {sorted(model_input)}")
        return as_texts(model_input["text"])
    if getattr(model_input, "ndim", None) == 0:  # MLflow parses {"inputs": "a text"} into a 0-d numpy array
        model_input = model_input.item()
    if isinstance(model_input, str):
        return [model_input]
    try:
        items = list(model_input)
    except TypeError:
        raise ElectraError(
            f"input is {type(model_input).__name__} {str(model_input)[:50]!r}; send a text or a list of texts"
        ) from None
    return check_texts(items)


def as_pairs(model_input: Any) -> list[str] | None:
    """The second texts of a pair input (a ``pair`` column or key), or None for single texts."""
    if hasattr(model_input, "columns"):
        return check_texts(list(model_input[PAIR])) if PAIR in model_input.columns else None
    if isinstance(model_input, dict) and PAIR in model_input:
        pairs = model_input[PAIR]
        return [pairs] if isinstance(pairs, str) else check_texts(list(pairs))
    return None


class ElectraModel(PythonModel):
    """Texts to entity dicts (NER), to labels with probabilities (classifier), or to whatever a registered task's
    client answers, on onnxruntime, in the variant the export chose for the device; the task is the exported
    model's own (``model_meta.json``), its :class:`~electra_model.client.spec.ClientSpec` says how to feed it."""

    def load_context(self, context: PythonModelContext) -> None:
        onnx_dir = find_onnx_dir(Path(context.artifacts["onnx_dir"]))
        self.limits = RequestLimits.from_meta(read_meta(onnx_dir), onnx_dir)
        self.spec = client_for_dir(onnx_dir)
        self.predictor = self.spec.load(onnx_dir)

    def predict(
        self, context: PythonModelContext, model_input, params: dict[str, Any] | None = None
    ) -> list[Any]:
        """``model_input`` has no type hint on purpose: MLflow would coerce every input to the hinted type, and
        this model accepts several shapes (MLflow says once per process that it would like a hint). A bad input
        becomes an MLflow "invalid parameter" error, which the scoring server answers with HTTP 400 and the message;
        a batch over the model's limits is refused before any work with a "request limit" error (HTTP 413 from
        :mod:`electra_model.serving.guarded_app`, 429 from a plain MLflow server)."""
        try:
            texts, pairs = as_texts(model_input), as_pairs(model_input)
            self.limits.check_texts(texts + (pairs or []))
            if pairs is not None and not self.spec.takes_pairs:
                raise ElectraError(f"this is a {self.spec.kind} model, which takes single texts; send no 'pair'")
            results = self.predictor.predict(texts, pairs) if self.spec.takes_pairs else self.predictor.predict(texts)
        except RequestTooLarge as error:
            raise MlflowException(str(error), error_code=REQUEST_LIMIT_EXCEEDED) from None
        except ElectraError as error:
            raise MlflowException.invalid_parameter_value(str(error)) from None
        return [self.spec.to_json(result) for result in results]


mlflow.models.set_model(ElectraModel())
