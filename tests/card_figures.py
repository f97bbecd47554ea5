"""Reading a model card's figures back, to compare each with what the run recorded (unit and e2e card tests).

A figure is a number standing on its own in the card's text (not part of a word such as ``fp32`` or a hash);
text in double quotes is a recorded string shown verbatim (a device name, the served variant's reason, an entity
from the error report) and is left out. A figure printed with ``d`` decimals matches a recorded value ``v`` when it
equals ``round(v, d)``: the card rounds, it never invents."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

QUOTED = re.compile(r'"[^"\n]*"')
FIGURE = re.compile(r"(?<![\w.\-/+])[-+]?\d+(?:\.\d+)?(?![\w.]*\w)")


def figures(card: str) -> list[str]:
    """Every figure in ``card``, as printed."""
    return FIGURE.findall(QUOTED.sub('""', card))


def numbers(value: Any) -> Iterable[float]:
    """Every number in a JSON-like value (and every string that is one, as MLflow params are)."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, str):
        try:
            yield float(value)
        except ValueError:
            return
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from numbers(item)


def matches(figure: str, recorded: Iterable[float]) -> bool:
    """A whole number must be recorded as it is (a count); a decimal, rounded to its printed decimals."""
    value = float(figure)
    if "." not in figure:
        return any(value == candidate for candidate in recorded)
    decimals = len(figure.split(".")[1])
    return any(value == round(candidate, decimals) for candidate in recorded)


def unrecorded(card: str, *records: Any) -> list[str]:
    """The card's figures that match no number in ``records``."""
    recorded = [number for record in records for number in numbers(record)]
    return [figure for figure in figures(card) if not matches(figure, recorded)]
