"""What the ``electra`` commands read from the user: a file of texts, classifier pairs in it, and the MLflow store
that holds the registry. Shared by ``electra predict``, ``electra select`` and ``electra annotate push``, so each
refuses a bad file with the same line."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from electra_model.errors import ElectraError
from electra_model.client.store import refuse_credentials, resolve_tracking_uri


def read_texts(path: Path) -> list[str]:
    """The non-empty lines of ``path`` (``-`` reads stdin), kept verbatim so offsets index the line as written.

    A UTF-8 byte-order mark (Windows editors and PowerShell pipes write one) is not text: left in, it would become
    part of the first word and of any entity that starts the first line."""
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as error:
        raise ElectraError(f"{path}: cannot read it ({error.strerror}); pass a text file, one text per line") from None
    try:
        content = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ElectraError(
            f"{path}, line {line}: not UTF-8 text (byte {error.start} is {raw[error.start]:#04x}); convert it to UTF-8"
        ) from None
    texts = [line for line in content.splitlines() if line.strip()]
    if not texts:
        raise ElectraError(f"{path}: no non-empty lines; put one text per line")
    return texts


def project_tracking_uri(explicit: str | None, params_file: Path = Path("params.yaml")) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else ``tracking.uri`` of ``params.yaml`` when run in a
    project, else the default store -- the same store the pipeline wrote. Only the ``tracking`` section is read."""
    if explicit or os.environ.get("MLFLOW_TRACKING_URI") or not params_file.is_file():
        return refuse_credentials(resolve_tracking_uri(explicit))
    from electra_model.config import load_tracking_params

    return resolve_tracking_uri(configured=load_tracking_params(params_file).uri)


def split_pairs(lines: Sequence[str], path: Path) -> tuple[list[str], list[str] | None]:
    """A classifier's input file: single texts, or, when the lines hold a tab, ``first<TAB>second`` pairs (all of
    them: one batch is either pairs or single texts, as the model was trained)."""
    if not any("\t" in line for line in lines):
        return list(lines), None
    firsts, seconds = [], []
    for number, line in enumerate(lines, start=1):
        if "\t" not in line:
            raise ElectraError(
                f"{path}: non-empty line {number} has no tab but others do; give every line 'first<TAB>second'"
            )
        first, second = line.split("\t", 1)
        firsts.append(first)
        seconds.append(second)
    return firsts, seconds
