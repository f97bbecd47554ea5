"""Reading the files a data source points at, shared by the corpus and every task's reader: local paths named by a
params key, and their lines (plain or gzip), each with its number so that a problem is reported at ``file:line``::

    from electra_model.data.files import local_file, read_lines
    path = local_file(params.ner.local.train, "ner.local.train")
    for number, line in read_lines(path): ...
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from electra_model.errors import ElectraError


def local_file(value: str | None, key: str) -> Path:
    """The file a params key names, which must exist: a missing one names the key, so the user knows what to fix."""
    if value is None:
        raise ElectraError(f"{key} is not set; give the path of the file")
    path = Path(value).expanduser()
    if not path.is_file():
        raise ElectraError(f"{key}: {str(path)!r} is not a file (relative paths start at {Path.cwd()}); fix the path")
    return path


def read_lines(path: Path | str) -> Iterator[tuple[int, str]]:
    """Stream ``(line number, text)`` from a UTF-8 file, gzip when the name ends in ``.gz``, any newline style.

    Lines are decoded one at a time so that a bad byte (or a byte-order mark past the file's start) is reported
    with its line, and a file of any size is read without holding it in memory.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
                except UnicodeDecodeError as error:
                    raise ElectraError(
                        f"{path}:{number}: not valid UTF-8 ({error.reason}); re-encode the file as UTF-8"
                    ) from None
                if "\ufeff" in line:  # kept, it would become part of a word: "\ufeff-DOCSTART-" a training token
                    raise ElectraError(
                        f"{path}:{number}: a byte-order mark (U+FEFF) inside the file, as left by concatenating "
                        "files; delete it (only the file's very start may hold one)"
                    )
                yield number, line
    except FileNotFoundError:
        raise ElectraError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise ElectraError(f"{path}: is a directory, not a file; pass the file inside it") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ElectraError(
            f"{path}: not a readable gzip file ({error}); re-download it or drop the .gz suffix if it is plain text"
        ) from None
