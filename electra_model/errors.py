"""The one exception type for errors a user can cause and fix.

A user error (bad file, bad param, missing data, missing model) raises :class:`ElectraError` with a message that
names the file and line, or the param key, and says what to do. The CLI and the stages print that message alone
and exit non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

T = TypeVar("T")


class ElectraError(Exception):
    """A problem in the user's input or environment, explained in the message."""


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Turn an :class:`ElectraError` into one clear line on stderr and exit code 2, without a traceback."""

    @wraps(main)
    def wrapper(*args: object, **kwargs: object) -> T:
        try:
            return main(*args, **kwargs)
        except ElectraError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
