"""Load whichever client an exported model needs, decided by the model itself.

``model_meta.json``, written by the export stage beside the ONNX graphs, names the predictor kind and the labels;
the kind is looked up in :data:`CLIENTS`, the client's table of :class:`~electra_model.client.spec.ClientSpec` by
kind (token tagging, text classification, ...), never by task name, so the CLI, the MLflow pyfunc and scripts load
any exported model the same way and never need a flag that could disagree with it::

    predictor = load_predictor("models:/electra-classifier@champion")   # or a directory, or models:/NAME/VERSION
    spec = client_for_dir("models/onnx")                               # how to feed and print it

The table starts with the predictors this package ships and grows through
:func:`electra_model.tasks.registry.register_task`, which adds a task's client here; the light client, installed
alone, serves every model whose task uses a shipped predictor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from electra_model.client.classifier import CLASSIFIER
from electra_model.client.exported import find_onnx_dir, local_model, read_meta
from electra_model.client.ner import NER
from electra_model.client.spec import ClientSpec, Predictor
from electra_model.errors import ElectraError

CLIENTS: dict[str, ClientSpec] = {spec.kind: spec for spec in (NER, CLASSIFIER)}


def add_client(spec: ClientSpec) -> None:
    """Serve models whose ``model_meta.json`` names predictor ``spec.kind`` with ``spec`` (see the module docstring)."""
    CLIENTS[spec.kind] = spec


def client_for(kind: str, where: Path | str) -> ClientSpec:
    """The client of predictor ``kind``, refused by name when this client does not serve it."""
    if kind not in CLIENTS:
        raise ElectraError(
            f"{where}: model_meta.json names predictor {kind!r}, which this client does not serve "
            f"({sorted(CLIENTS)}); install or register the task that serves it, or re-export the model"
        )
    return CLIENTS[kind]


def client_for_dir(onnx_dir: Path | str) -> ClientSpec:
    """The client of the exported directory ``onnx_dir`` (or of the MLflow model that holds one)."""
    onnx_dir = find_onnx_dir(Path(onnx_dir))
    return client_for(read_meta(onnx_dir)["predictor"], onnx_dir)


def predictor_for_dir(onnx_dir: Path | str, **options: Any) -> Predictor:
    """The predictor for the exported directory ``onnx_dir``; ``options`` go to the predictor's ``from_dir``."""
    onnx_dir = find_onnx_dir(Path(onnx_dir))
    return client_for_dir(onnx_dir).load(onnx_dir, **options)


def load_served(
    uri_or_path: str | Path, tracking_uri: str | None = None, **options: Any
) -> tuple[ClientSpec, Predictor]:
    """The model's client spec and its predictor, from a ``models:/`` URI or a directory: what a caller that feeds
    and prints any task's model (the CLI) needs; ``options`` go to the predictor's ``from_dir``."""
    with local_model(uri_or_path, tracking_uri) as local:
        onnx_dir = find_onnx_dir(local)
        spec = client_for_dir(onnx_dir)
        return spec, spec.load(onnx_dir, **options)


def load_predictor(uri_or_path: str | Path, tracking_uri: str | None = None, **options: Any) -> Predictor:
    """Load from a ``models:/`` URI or a directory; ``options`` go to the predictor's ``from_dir``."""
    return load_served(uri_or_path, tracking_uri, **options)[1]
