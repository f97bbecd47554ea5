"""params.yaml is the one source of values: the typed config declares types and constraints, never a default, so
no value can come from code and disagree with the file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from electra_model.config import FinetuneRecipe, Params, SearchDimension, leaf_types

PARTIAL = (FinetuneRecipe, SearchDimension)
"""Models whose keys may be left out, where ``None`` means "not given": a preset's partial recipe and a search
dimension's unused form. They hold no value of their own either."""


def models(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> Iterator[type[BaseModel]]:
    """``model`` and every section model it reaches through its fields (nested, in lists or in dicts)."""
    seen = set() if seen is None else seen
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        for kind in _nested(field.annotation):
            yield from models(kind, seen)


def _nested(annotation: Any) -> set[type[BaseModel]]:
    found = set()
    for leaf in leaf_types(annotation):
        for candidate in (leaf, *getattr(leaf, "__args__", ())):
            found |= {kind for kind in leaf_types(candidate) if isinstance(kind, type) and issubclass(kind, BaseModel)}
    return found


def defaults(model: type[BaseModel]) -> list[str]:
    """``Model.field = default`` for every field that may be left out of params.yaml, partial models' None excepted."""
    found = []
    for name, field in model.model_fields.items():
        if field.is_required():
            continue
        default = field.get_default(call_default_factory=True)
        if model in PARTIAL and default is None:
            continue
        found.append(f"{model.__name__}.{name} = {default!r}")
    return found


def test_the_config_declares_no_defaults() -> None:
    reached = list(models(Params))
    assert FinetuneRecipe in reached and SearchDimension in reached  # the walk reaches nested dict values
    assert [problem for model in reached for problem in defaults(model)] == []
