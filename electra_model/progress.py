"""Progress for long loops: a live bar on a terminal, plain periodic lines in CI logs."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def is_interactive() -> bool:
    """A bar only helps a person watching a terminal; in CI it floods the log with carriage returns."""
    return sys.stderr.isatty()


def progress(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar on a terminal; elsewhere yield them unchanged (callers log plain lines)."""
    if is_interactive():
        yield from tqdm(items, total=total, desc=description, dynamic_ncols=True)
    else:
        yield from items


def log_line(message: str) -> None:
    """One plain progress line, flushed at once so CI shows it live."""
    print(message, file=sys.stderr, flush=True)
