"""Keep a project's local MLflow store pointing inside the project after the project folder is moved or copied.

MLflow's sqlite store records every artifact location as an absolute path or ``file://`` URI (experiments, runs,
logged models, model versions; each ``MLmodel`` file its own too). A copied checkout would therefore log, register
and serve through the original's ``mlartifacts/`` folder, and a moved one would point at a folder that is gone.
:func:`follow_moved_root` notices that the experiment's recorded artifact location is not where params.yaml's
``tracking.artifact_location`` puts it now, works out the old and new project roots from the part both share
(``mlartifacts``), and rewrites the old root to the new one throughout the store and the ``MLmodel`` files, saying
so on stderr. Where that cannot be done (a store that is not a sqlite file, an artifact folder that was renamed)
it stops with a message saying what to do.
"""

from __future__ import annotations

import sqlite3
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from electra_model.client.store import SQLITE
from electra_model.errors import ElectraError
from electra_model.io import atomic_file


def uri_path(location: str) -> Path:
    """The local path of a ``file://`` URI or a plain path."""
    parts = urllib.parse.urlsplit(location)
    return Path(urllib.request.url2pathname(parts.path)) if parts.scheme == "file" else Path(location)


def moved_roots(recorded: Path, expected: Path) -> tuple[Path, Path] | None:
    """(old root, new root) when ``recorded`` and ``expected`` differ only above a common tail, else None."""
    tail = 0
    while tail < min(len(recorded.parts), len(expected.parts)) and (
        recorded.parts[-1 - tail] == expected.parts[-1 - tail]
    ):
        tail += 1
    if tail == 0:
        return None
    return Path(*recorded.parts[:-tail]), Path(*expected.parts[:-tail])


def rewrite_store(database: Path, old_root: str, new_root: str) -> int:
    """Replace ``old_root`` by ``new_root`` in every text value of the sqlite store; the number of values changed.
    Only values that contain ``old_root`` followed by a path separator (or ending there) are touched."""
    changed = 0
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]:
                cursor = connection.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                    f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                    (old_root + "/", new_root + "/", old_root + "/"),
                )
                changed += cursor.rowcount
    connection.close()
    return changed


def follow_moved_root(tracking_uri: str, recorded_location: str, expected_location: str) -> None:
    """Rewrite a local store whose experiment keeps its artifacts outside the project's own folder (see the module
    docstring); do nothing when the recorded location is where params.yaml puts it."""
    recorded, expected = uri_path(recorded_location), uri_path(expected_location)
    if recorded == expected:
        return
    roots = moved_roots(recorded, expected)
    if not tracking_uri.startswith(SQLITE) or roots is None:
        raise ElectraError(
            f"the MLflow store {tracking_uri} keeps this experiment's artifacts at {recorded_location}, not in "
            f"this project ({expected_location}); point tracking.uri / MLFLOW_TRACKING_URI at a store of this "
            "project, or set tracking.artifact_location to where its artifacts are"
        )
    old_root, new_root = (str(root) for root in roots)
    database = Path(tracking_uri.removeprefix(SQLITE).split("?", 1)[0])
    changed = rewrite_store(database, old_root, new_root)
    for model_file in expected.rglob("MLmodel"):
        text = model_file.read_text(encoding="utf-8")
        if old_root + "/" in text:
            with atomic_file(model_file) as output:
                output.write(text.replace(old_root + "/", new_root + "/"))
    missing = "" if expected.is_dir() else f"; {expected} does not exist, so artifacts logged before the move are gone"
    print(
        f"MLflow store {database}: the project moved from {old_root} to {new_root}; {changed} recorded artifact "
        f"locations now point into it{missing}",
        file=sys.stderr,
    )
