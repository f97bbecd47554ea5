"""What one request to the served model may cost: bytes, texts, and characters per text.

The limits are params (``export.limits`` in params.yaml) that the export stage records in ``model_meta.json``, so
they travel with the registered model and every server of it enforces the same ones: the pyfunc counts texts and
characters (also under a plain ``mlflow models serve``), and :mod:`electra_model.serving.guarded_app` refuses an
oversized body before MLflow reads it, and JSON nested past Python's recursion limit before MLflow parses it. A
model exported before the limits existed has none in its meta and is refused by name, so no server runs unbounded
by accident. Torch-free and mlflow-free: the light client and the pyfunc share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from electra_model.errors import ElectraError

META_KEY = "limits"


class RequestTooLarge(ElectraError):
    """A request over one of the limits: the server answers HTTP 413, not 400, so a client knows to split it."""


@dataclass(frozen=True)
class RequestLimits:
    """The bounds on one request; see ``export.limits`` in params.yaml for what each one protects."""

    max_request_bytes: int
    max_texts: int
    max_text_chars: int

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], where: Path) -> RequestLimits:
        """The limits recorded by the export stage; their absence (an older export) is named, with the fix."""
        recorded = meta.get(META_KEY)
        names = set(cls.__dataclass_fields__)
        if not isinstance(recorded, Mapping) or set(recorded) != names or not all(
            isinstance(recorded[name], int) and recorded[name] > 0 for name in names
        ):
            raise ElectraError(
                f"{where}: model_meta.json has no valid {META_KEY!r} ({sorted(names)}, positive integers); "
                "re-export the model with `dvc repro export` so the server knows what one request may cost"
            )
        return cls(**{name: recorded[name] for name in names})

    def as_meta(self) -> dict[str, int]:
        return asdict(self)

    def check_texts(self, texts: Sequence[str]) -> None:
        """Refuse a batch with too many texts or an over-long text before any work is done on it."""
        if len(texts) > self.max_texts:
            raise RequestTooLarge(
                f"{len(texts)} texts in one request; the limit is {self.max_texts} (export.limits.max_texts): "
                "send them in smaller batches"
            )
        for number, text in enumerate(texts):
            if len(text) > self.max_text_chars:
                raise RequestTooLarge(
                    f"text {number} has {len(text)} characters; the limit is {self.max_text_chars} "
                    "(export.limits.max_text_chars): split it into shorter texts"
                )
