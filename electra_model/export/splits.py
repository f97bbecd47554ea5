"""The labelled split the export stage checks the ONNX variants on, read by its suffix, for either task.

The task data stage writes NER splits as CoNLL files (``valid.txt``) and a classifier's as JSON lines
(``valid.jsonl``, one ``{"text", "pair", "label"}`` per line, ``pair`` null for single texts). The export stage
finds a split in the data folder by name whatever its suffix, so it works however the folder is named, and
refuses data of the other task by name, since an NER model cannot be scored on labelled texts nor the reverse::

    examples = read_split(split_path(Path("data/task"), "valid"), task="classification")
"""

from __future__ import annotations

from pathlib import Path

from electra_model.errors import ElectraError
from electra_model.tasks.classification.data import TextExample, file_records, normalized_columns, to_examples
from electra_model.tasks.ner.conll import Sentence, read_conll

SUFFIXES = {".txt": "ner", ".jsonl": "classification"}
"""What each task's split file is called: CoNLL text for NER, JSON lines for a classifier."""


def split_path(data_dir: Path, split: str) -> Path:
    """``data_dir/<split>.txt`` or ``data_dir/<split>.jsonl``, whichever exists (exactly one must)."""
    found = [data_dir / f"{split}{suffix}" for suffix in SUFFIXES if (data_dir / f"{split}{suffix}").is_file()]
    if len(found) != 1:
        names = " or ".join(f"{split}{suffix}" for suffix in SUFFIXES)
        problem = "neither" if not found else "both"
        raise ElectraError(f"{data_dir}: has {problem} of {names}; run `dvc repro` up to the task data stage")
    return found[0]


def read_split(path: Path, task: str) -> list[Sentence] | list[TextExample]:
    """The split's examples for a model of ``task``: CoNLL sentences (IOB2) or labelled texts and pairs."""
    kind = SUFFIXES.get(path.suffix)
    if kind != task:
        expected = next(suffix for suffix, name in SUFFIXES.items() if name == task)
        raise ElectraError(
            f"{path}: the model is a {task} model, which is checked on a {expected} split; pass the task's own "
            "data (--data or --valid)"
        )
    if task == "ner":
        return read_conll(path, scheme="iob2")
    records = list(file_records(path))
    has_pairs = any(record.get("pair") is not None for _, record in records)
    examples = to_examples(records, normalized_columns(has_pairs))
    if not examples:
        raise ElectraError(f"{path}: no examples; the split needs labelled texts")
    return examples
