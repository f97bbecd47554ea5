"""The labelled split the export stage checks the ONNX variants on, found and read as the model's task says.

Each task's download names its split files ``<split><suffix>`` (:attr:`electra_model.tasks.spec.TaskSpec.
split_suffix`: NER's CoNLL ``valid.txt``, a classifier's ``valid.jsonl``) and its exporter reads them. A split of
another task is refused by name, since an NER model cannot be scored on labelled texts nor the reverse::

    examples = read_split(split_path(Path("data/task"), "valid", spec), spec)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from electra_model.errors import ElectraError
from electra_model.tasks.spec import TaskSpec


def split_path(data_dir: Path, split: str, spec: TaskSpec) -> Path:
    """``data_dir/<split><suffix>`` of ``spec``'s task; a missing file is named with what to run."""
    path = data_dir / f"{split}{spec.split_suffix}"
    if not path.is_file():
        raise ElectraError(
            f"{data_dir}: has no {path.name}, the {spec.name} model's {split} split; run `dvc repro` up to the task "
            "data stage, or pass the task's own data (--data or --valid)"
        )
    return path


def read_split(path: Path, spec: TaskSpec) -> Sequence[Any]:
    """The split's examples for a model of ``spec``'s task, read by the task's exporter."""
    if not path.name.endswith(spec.split_suffix):
        raise ElectraError(
            f"{path}: the model is a {spec.name} model, which is checked on a {spec.split_suffix} split; pass the "
            "task's own data (--data or --valid)"
        )
    return spec.exporter().read_split(path)
