"""params.yaml is the one source of defaults: a default in the typed config that disagrees with it is a bug."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from electra_model.config import RECIPE_KEYS, Params

PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"


def disagreements(model: type[BaseModel], committed: dict[str, Any], prefix: str = "") -> list[str]:
    """Every key whose code default differs from params.yaml, or which params.yaml does not state."""
    found = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if name not in committed:
            found.append(f"{key}: not in params.yaml")
            continue
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found += disagreements(field.annotation, committed[name] or {}, f"{key}.")
            continue
        if field.is_required():
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, dict):  # e.g. finetune.presets: named sections, as params.yaml writes them
            default = {k: v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v for k, v in default.items()}
        value = committed[name]
        if name in RECIPE_KEYS and value is None:  # null: the chosen preset's recipe value, else the code default
            value = committed["presets"][committed["preset"]].get(name, default)
        if default != value:
            found.append(f"{key}: code default {default!r}, params.yaml {value!r}")
    return found


def test_code_defaults_agree_with_params_yaml() -> None:
    assert disagreements(Params, yaml.safe_load(PARAMS.read_text(encoding="utf-8"))) == []
