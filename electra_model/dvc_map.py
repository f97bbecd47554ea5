"""dvc.yaml read as the map of the pipeline's paths: the flows (and the benchmarks' defaults) take a stage's outs,
metrics and plots from here instead of restating them, so that a path changed in dvc.yaml changes everywhere.
It only reads the YAML file; nothing here imports DVC::

    from electra_model.dvc_map import stage_path
    stage_path("export", "outs")                     # Path("models/onnx")
    stage_path("evaluate", "plots", suffix=".csv")   # Path("plots/evaluate_confusion.csv")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from electra_model.errors import ElectraError

DVC_FILE = Path("dvc.yaml")
Kind = Literal["deps", "outs", "metrics", "plots"]


def read_dvc_file(dvc_file: Path | str = DVC_FILE) -> dict[str, Any]:
    """The parsed dvc.yaml; run from the project root, where DVC runs the stages too."""
    path = Path(dvc_file)
    if not path.is_file():
        raise ElectraError(f"{path} not found in {Path.cwd()}; run from the project root")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def stages(dvc_file: Path | str = DVC_FILE) -> dict[str, Any]:
    """Every stage, in dvc.yaml's order."""
    return read_dvc_file(dvc_file)["stages"]


def stage_paths(stage: str, kind: Kind, dvc_file: Path | str = DVC_FILE) -> list[Path]:
    """The paths a stage declares as ``kind``: an entry is a path, or a one-key mapping of a path to its options."""
    entries = stages(dvc_file)[stage].get(kind, [])
    return [Path(next(iter(entry)) if isinstance(entry, dict) else entry) for entry in entries]


def stage_path(stage: str, kind: Kind, suffix: str = "", dvc_file: Path | str = DVC_FILE) -> Path:
    """The one path of ``kind`` of ``stage`` whose name ends in ``suffix``; more or fewer is dvc.yaml's mistake."""
    found = [path for path in stage_paths(stage, kind, dvc_file) if path.name.endswith(suffix)]
    if len(found) != 1:
        raise ElectraError(f"{dvc_file}: stage {stage!r} declares {len(found)} {kind} ending in {suffix!r}, not one")
    return found[0]


def plot_file(name: str, values: Mapping[str, Any], dvc_file: Path | str = DVC_FILE) -> Path:
    """The data file of the top-level plot ``name``, its ``${key}`` templates filled from ``values``
    (``{"tune.study": "demo"}``), as DVC fills them from params.yaml."""
    for entry in read_dvc_file(dvc_file).get("plots", []):
        if name in entry:
            (template,) = entry[name]["y"]
            for key, value in values.items():
                template = template.replace("${" + key + "}", str(value))
            return Path(template)
    raise ElectraError(f"{dvc_file}: no top-level plot {name!r}")
