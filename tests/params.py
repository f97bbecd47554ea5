"""Params for tests, built the one way the pipeline builds them: params.yaml as committed, plus the overrides a test
names (dotted keys, as ``dvc exp run -S``). The config declares no defaults, so this is also the only way."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from electra_model.config import Params, load_params

PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"


def params(overrides: Mapping[str, Any] | None = None, /, **keys: Any) -> Params:
    """params.yaml with ``overrides`` and ``keys`` applied; ``keys`` are for top-level sections or flat keys
    (``params(seed=7)``), ``overrides`` for dotted ones (``params({"finetune.epochs": 1})``)."""
    return load_params(PARAMS_FILE, {**(overrides or {}), **keys})


def section(name: str, **keys: Any) -> Any:
    """One section of params.yaml with ``keys`` of it changed, e.g. ``section("export", min_f1=0.5)``: what a
    section built in code used to be, now with every other value from the file."""
    return getattr(params({f"{name}.{key}": value for key, value in keys.items()}), name)
