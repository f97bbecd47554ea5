"""Push texts to Label Studio with a model's predictions as pre-annotations, or a labelled file as finished
annotations: the one entry point for anything that chooses texts to label (``electra annotate push``, and later a
selection of the texts the model is least sure of)::

    model = open_model("models:/electra-ner@champion", tracking_uri)
    push_texts(studio, "electra-ner", ["Angela Merkel visited Paris."], model)
    push_gold(studio, "electra-ner", Path("data/task/valid.txt"), params)

The project is created, or its labelling configuration updated, from the model's labels (or the file's); what is
done with the labels (spans or choices) is the converter of the model's predictor kind
(:mod:`electra_model.annotate.convert`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from electra_model.annotate.convert import Converter
from electra_model.annotate.converters import converter_for
from electra_model.annotate.studio import LabelStudio
from electra_model.client.exported import find_onnx_dir, local_model, read_meta
from electra_model.client.loader import client_for
from electra_model.client.spec import ClientSpec, Predictor
from electra_model.errors import ElectraError

if TYPE_CHECKING:
    from electra_model.config import Params

IMPORT_BATCH = 500  # tasks per import request: one request per batch keeps a large push within the HTTP timeout


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and what Label Studio records about it: its labels and ``model_version``."""

    client: ClientSpec
    predictor: Predictor
    labels: list[str]
    version: str


@contextmanager
def open_model(uri_or_path: str | Path, tracking_uri: str | None) -> Iterator[ServedModel]:
    """The model at a ``models:/`` URI or an exported directory, with its labels from ``model_meta.json``; the
    version recorded on each prediction is the URI (or directory) and the variant that ran."""
    with local_model(uri_or_path, tracking_uri) as local:
        onnx_dir = find_onnx_dir(Path(local))
        meta = read_meta(onnx_dir)
        client = client_for(meta["predictor"], onnx_dir)
        predictor = client.load(onnx_dir)
        yield ServedModel(client, predictor, list(meta["labels"]), f"{uri_or_path} ({predictor.variant})")


def _checked(texts: Sequence[str], pairs: Sequence[str] | None) -> None:
    """Refuse what would make an empty task, naming it."""
    if not texts:
        raise ElectraError("no texts to push; give at least one")
    for number, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ElectraError(f"text {number} is empty; an empty task has nothing to label, leave it out")
    if pairs is not None and len(pairs) != len(texts):
        raise ElectraError(f"{len(texts)} texts but {len(pairs)} second texts; give one second text per text")


def _import(studio: LabelStudio, project: int, tasks: list[dict[str, Any]]) -> int:
    return sum(studio.import_tasks(project, tasks[first:first + IMPORT_BATCH])
               for first in range(0, len(tasks), IMPORT_BATCH))


def push_texts(
    studio: LabelStudio, project: str, texts: Sequence[str], model: ServedModel, pairs: Sequence[str] | None = None
) -> int:
    """Add ``texts`` (and their second texts) to ``project`` with ``model``'s predictions as pre-annotations;
    returns how many tasks were added."""
    _checked(texts, pairs)
    if pairs is not None and not model.client.takes_pairs:
        raise ElectraError(f"the model is a {model.client.kind} model, which takes single texts; drop the pairs")
    converter = converter_for(model.client.kind)
    config = converter.label_config(converter.label_names(model.labels), pairs is not None)
    project_id = studio.ensure_project(project, config)
    predicted = model.predictor.predict(texts, pairs) if model.client.takes_pairs else model.predictor.predict(texts)
    tasks = [
        {"data": converter.task_data(text, pairs[index] if pairs is not None else None),
         "predictions": [converter.prediction(prediction, model.version)]}
        for index, (text, prediction) in enumerate(zip(texts, predicted, strict=True))
    ]
    return _import(studio, project_id, tasks)


def push_gold(studio: LabelStudio, project: str, path: Path, params: Params, converter: Converter) -> int:
    """Add the labelled examples of ``path`` (the task's own format) to ``project`` as finished annotations: to
    check a round trip, or to let annotators review labels made elsewhere; returns how many tasks were added."""
    names, tasks = converter.read_gold(path, params)
    pairs = any("pair" in task["data"] for task in tasks)
    project_id = studio.ensure_project(project, converter.label_config(names, pairs))
    return _import(studio, project_id, tasks)
