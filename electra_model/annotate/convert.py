"""Between Label Studio's JSON and a task's data: what every converter shares (the table of converters by predictor
kind is :mod:`electra_model.annotate.converters`).

What every kind shares lives here: which annotation of a task counts (:func:`chosen_annotation`), the labels a
project's labelling configuration allows (:func:`config_labels`), and :class:`Skipped`, the reason a task is left
out of a pull, which the pull lists instead of dropping the task silently.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from electra_model.errors import ElectraError

if TYPE_CHECKING:
    from electra_model.config import Params

FROM_NAME = "label"  # the control's name in every labelling configuration this project writes
TO_NAME = "text"  # the <Text> it labels; a task's data holds the text under the same key


class Skipped(Exception):
    """A task a pull cannot turn into training data, with the reason a person can act on."""


class Converter(Protocol):
    """A predictor kind's half of the round trip: its labelling configuration, its pre-annotations, its gold data
    as annotated tasks, and an annotation back to one record of the task's data file."""

    kind: str
    data_file: str  # the file ``pull`` writes into its folder, in the task's own format

    def label_names(self, labels: Sequence[str]) -> list[str]:
        """The names an annotator picks from, from the model's labels (NER: entity types of its IOB2 tags)."""
        ...

    def label_config(self, names: Sequence[str], pairs: bool) -> str:
        """The project's labelling configuration (XML) for these names."""
        ...

    def task_data(self, text: str, pair: str | None) -> dict[str, Any]:
        """A task's ``data`` for one text (and its second text)."""
        ...

    def prediction(self, predicted: Any, model_version: str) -> dict[str, Any]:
        """One of the client's predictions as a Label Studio prediction (result items with scores)."""
        ...

    def read_gold(self, path: Path, params: Params) -> tuple[list[str], list[dict[str, Any]]]:
        """A labelled file of the task's format as label names and tasks with their annotation."""
        ...

    def record(self, data: Mapping[str, Any], result: Sequence[Mapping[str, Any]], known: Sequence[str]) -> Any:
        """One record of the task's data from a task's ``data`` and chosen annotation; :class:`Skipped` if none."""
        ...

    def write(self, records: Sequence[Any], path: Path, params: Params) -> None:
        """The records as the file the task's ``local`` source reads."""
        ...


def chosen_annotation(task: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The result of the annotation that counts for ``task``: one marked ground truth, else the latest submitted;
    ``None`` while nobody has annotated it; :class:`Skipped` when every annotator skipped (cancelled) it."""
    annotations = task.get("annotations") or []
    if not annotations:
        return None
    submitted = [annotation for annotation in annotations if not annotation.get("was_cancelled")]
    if not submitted:
        raise Skipped("skipped by the annotator (every annotation of it is cancelled)")
    chosen = max(submitted, key=lambda a: (bool(a.get("ground_truth")), a.get("updated_at") or "", a.get("id", 0)))
    return list(chosen.get("result") or [])


def config_labels(label_config: str, where: str) -> list[str]:
    """The label names a labelling configuration allows (its ``<Label>`` and ``<Choice>`` values), in order."""
    try:
        root = ElementTree.fromstring(label_config)
    except ElementTree.ParseError as error:
        raise ElectraError(f"{where}: the labelling configuration is not XML ({error}); fix it in Label Studio") from None
    return [node.attrib["value"] for node in root.iter() if node.tag in ("Label", "Choice") and "value" in node.attrib]


def result_labels(item: Mapping[str, Any], key: str) -> list[str]:
    """The labels of one result item (``key``: ``labels`` for spans, ``choices`` for choices)."""
    value = item.get("value") or {}
    return [str(label) for label in value.get(key) or []]
