"""Pull a Label Studio project's finished annotations into the task's own data file, listing every task left out.

:func:`convert_tasks` is the pure part (exported tasks in, records and skips out); :func:`fetch` reads and converts,
:func:`write` writes (the labelling round, ``flows/labelling.py``, calls the two itself to decide between them);
:func:`pull` does both and writes the folder atomically: ``<data_file>`` (NER: ``annotations.txt``, CoNLL IOB2;
classification: ``annotations.jsonl``) and ``skipped.txt`` (one ``task ID: reason`` line per task left out,
unannotated ones included). A pull that finds no
finished annotation writes nothing, so a good earlier pull is never replaced by an empty one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from electra_model.annotate.convert import Converter, Skipped, chosen_annotation, config_labels
from electra_model.annotate.studio import LabelStudio
from electra_model.errors import ElectraError
from electra_model.io import atomic_dir

if TYPE_CHECKING:
    from electra_model.config import Params

SKIP_REPORT = "skipped.txt"


@dataclass(frozen=True)
class Pulled:
    """The records of the annotated tasks, in import order, and ``(task id, reason)`` for every other task."""

    records: list[Any]
    skipped: list[tuple[int, str]]

    def report(self) -> str:
        return "".join(f"task {task}: {reason}\n" for task, reason in self.skipped)


def convert_tasks(tasks: Sequence[Mapping[str, Any]], converter: Converter, known: Sequence[str]) -> Pulled:
    """Each exported task as one record of the task's data, or a skip with its reason."""
    records, skipped = [], []
    for task in sorted(tasks, key=lambda task: task["id"]):
        try:
            result = chosen_annotation(task)
            if result is None:
                skipped.append((task["id"], "not annotated yet"))
                continue
            records.append(converter.record(task.get("data") or {}, result, known))
        except Skipped as reason:
            skipped.append((task["id"], str(reason)))
    return Pulled(records, skipped)


def fetch(studio: LabelStudio, project: str, converter: Converter) -> Pulled:
    """``project``'s tasks as records and skips, read from the server; nothing is written."""
    project_id = studio.require_project(project)
    details = studio.call("GET", f"/api/projects/{project_id}")
    known = config_labels(details["label_config"], f"Label Studio project {project!r}")
    return convert_tasks(studio.export(project_id), converter, known)


def write(pulled: Pulled, out: Path, params: Params, converter: Converter) -> None:
    """``out`` replaced as a whole, atomically, by the records' data file and the skip report."""
    with atomic_dir(out) as staging:
        converter.write(pulled.records, staging / converter.data_file, params)
        (staging / SKIP_REPORT).write_text(pulled.report(), encoding="utf-8")


def pull(studio: LabelStudio, project: str, out: Path, params: Params, converter: Converter) -> Pulled:
    """Write ``project``'s finished annotations into ``out`` (replaced as a whole, atomically)."""
    pulled = fetch(studio, project, converter)
    if not pulled.records:
        reasons = "; ".join(f"task {task}: {reason}" for task, reason in pulled.skipped[:3])
        raise ElectraError(
            f"Label Studio project {project!r} has no finished annotation to pull ({len(pulled.skipped)} tasks "
            f"left out{': ' + reasons if reasons else ''}); annotate some tasks first. {out} is left as it was"
        )
    write(pulled, out, params, converter)
    return pulled
