"""The search space of ``electra tune``: checked against params.yaml and dvc.yaml before any trial, sampled with
Optuna, and turned into ``dvc exp run -S key=value`` arguments; and the study's results as files.

Why a space is checked here and not by the trials: a key that is misspelt, a range whose end a stage would refuse,
or a key that no stage of the trial reads would otherwise cost a whole study of identical or failing trials. Every
problem names its ``tune.space.<key>``. The driver (``flows/tune.py``) runs DVC; this module imports neither DVC nor
Prefect.
"""

from __future__ import annotations

import copy
import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import yaml

from electra_model.config import Params, SearchDimension, TuneParams, parse_params
from electra_model.errors import ElectraError
from electra_model.io import atomic_file, write_json

MISSING = object()


def lookup(raw: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted params key, or :data:`MISSING`."""
    value: Any = raw
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def with_value(raw: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of the params with one dotted key set, as `dvc exp run -S key=value` would."""
    changed = copy.deepcopy(dict(raw))
    target = changed
    *parents, last = key.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    return changed


def stage_order(stages: Mapping[str, Any], target: str) -> list[str]:
    """``target`` and every stage it depends on (through outs that are its deps), in dvc.yaml's order."""

    def outs(name: str) -> set[str]:
        found = set()
        for kind in ("outs", "metrics", "plots"):
            found |= {next(iter(item)) if isinstance(item, dict) else str(item) for item in stages[name].get(kind, [])}
        return found

    def feeds(path: str, dep: str) -> bool:
        return dep == path or dep.startswith(path.rstrip("/") + "/") or path.startswith(dep.rstrip("/") + "/")

    needed, todo = {target}, [target]
    while todo:
        deps = [str(dep) for dep in stages[todo.pop()].get("deps", [])]
        for name in stages:
            if name not in needed and any(feeds(out, dep) for out in outs(name) for dep in deps):
                needed.add(name)
                todo.append(name)
    return [name for name in stages if name in needed]


def readers(stages: Mapping[str, Any], key: str) -> list[str]:
    """The stages whose dvc.yaml ``params`` list covers ``key`` (``finetune`` covers ``finetune.learning_rate``)."""
    return [
        name
        for name, stage in stages.items()
        if any(key == str(entry) or key.startswith(f"{entry}.") for entry in stage.get("params", []))
    ]


def is_integer_key(current: Any, dimension: SearchDimension) -> bool:
    """A range searches whole numbers when the key holds one in params.yaml (``batch_size``, ``epochs``)."""
    return dimension.choices is None and isinstance(current, int) and not isinstance(current, bool)


def candidate_values(current: Any, dimension: SearchDimension) -> list[Any]:
    """The values a stage could be given: every choice, or both ends of the range."""
    if dimension.choices is not None:
        return list(dimension.choices)
    assert dimension.low is not None and dimension.high is not None
    if is_integer_key(current, dimension):
        return [int(dimension.low), int(dimension.high)]
    return [float(dimension.low), float(dimension.high)]


def space_problems(raw: Mapping[str, Any], tune: TuneParams, stages: Mapping[str, Any]) -> list[str]:
    """Everything wrong with ``tune``'s stage, metric and space, each line naming its key."""
    if tune.stage not in stages:
        return [f"tune.stage = {tune.stage!r}: no such stage in dvc.yaml; choose from {sorted(stages)}"]
    problems = []
    metric_file, _, _ = tune.metric.partition(":")
    metrics = {next(iter(item)) if isinstance(item, dict) else str(item) for item in stages[tune.stage].get("metrics", [])}
    if metric_file not in metrics:
        problems.append(f"tune.metric = {tune.metric!r}: {metric_file} is not a metrics file of stage "
                        f"{tune.stage!r} (dvc.yaml lists {sorted(metrics)})")
    if not tune.space:
        problems.append("tune.space is empty; name at least one params.yaml key to search")
    run = stage_order(stages, tune.stage)
    for key, dimension in tune.space.items():
        name = f"tune.space.{key}"
        current = lookup(raw, key)
        if current is MISSING or key.split(".")[0] == "tune":
            problems.append(f"{name}: {key} is not a key of params.yaml; fix its spelling")
            continue
        if isinstance(current, Mapping):
            problems.append(f"{name}: {key} is a section; search one of its keys, e.g. {key}.{next(iter(current), '...')}")
            continue
        read_by = readers(stages, key)
        if not set(read_by) & set(run):
            problems.append(f"{name}: no stage a trial runs ({', '.join(run)}) reads {key}"
                            + (f" (only {', '.join(read_by)} does)" if read_by else "")
                            + "; search a key those stages read, or change tune.stage")
            continue
        if is_integer_key(current, dimension) and not all(float(end).is_integer()
                                                         for end in (dimension.low, dimension.high)):
            problems.append(f"{name}: {key} takes whole numbers; give integer low and high")
            continue
        for value in candidate_values(current, dimension):
            try:
                parse_params(with_value(raw, key, value))
            except ElectraError as error:
                detail = str(error).split("\n", 1)[-1].strip()
                problems.append(f"{name}: the value {value!r} is not valid there ({detail})")
    return problems


def check_space(raw: Mapping[str, Any], dvc_file: Path | str = "dvc.yaml") -> Params:
    """The validated params, once ``tune:`` describes a search that can run; else an :class:`ElectraError` naming
    every bad key before any trial starts."""
    params = parse_params(raw)
    if not Path(dvc_file).is_file():
        raise ElectraError(f"{dvc_file} not found; run `electra tune` from the project root")
    stages = yaml.safe_load(Path(dvc_file).read_text(encoding="utf-8")).get("stages", {})
    problems = space_problems(raw, params.tune, stages)
    if problems:
        raise ElectraError("params.yaml: the search space cannot run:\n  " + "\n  ".join(problems))
    return params


def suggest(trial: optuna.Trial, raw: Mapping[str, Any], key: str, dimension: SearchDimension) -> Any:
    """One value for ``key`` from Optuna's sampler, in the key's own type."""
    if dimension.choices is not None:
        return trial.suggest_categorical(key, dimension.choices)
    assert dimension.low is not None and dimension.high is not None
    if is_integer_key(lookup(raw, key), dimension):
        step = int(dimension.step or 1)
        return trial.suggest_int(key, int(dimension.low), int(dimension.high), step=step, log=bool(dimension.log))
    return trial.suggest_float(key, dimension.low, dimension.high, step=dimension.step, log=bool(dimension.log))


def distributions(raw: Mapping[str, Any], space: Mapping[str, SearchDimension]) -> dict[str, Any]:
    """The space as plain data, stored with the study so that a resume with a changed space is refused (``log``
    absent and false are the same spacing, so they are stored alike)."""
    return {key: {**dimension.model_dump(), "log": bool(dimension.log), "integer": is_integer_key(lookup(raw, key), dimension)}
            for key, dimension in space.items()}


def yaml_scalar(value: Any) -> str:
    """``value`` as `dvc exp run -S` and PyYAML both read it back: ``1e-05`` is a string to YAML 1.1, ``1.0e-05``
    a float."""
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    return json.dumps(value)


def set_arguments(values: Mapping[str, Any]) -> list[str]:
    """``-S key=value`` for each sampled key."""
    arguments = []
    for key, value in values.items():
        arguments += ["-S", f"{key}={yaml_scalar(value)}"]
    return arguments


def metric_value(metrics: Mapping[str, Any], key: str, source: str) -> float:
    """A dotted key of a metrics file, as a finite number."""
    value = lookup(metrics, key)
    if value is MISSING or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ElectraError(f"{source}: no finite number at {key!r} (tune.metric); the stage wrote {sorted(metrics)}")
    return float(value)


def history_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per finished trial, with the best value so far (the optimisation history)."""
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows, best = [], None
    for trial in sorted(study.trials, key=lambda t: t.number):
        if trial.state != optuna.trial.TrialState.COMPLETE:
            continue
        value = float(trial.value)
        best = value if best is None else (max(best, value) if maximize else min(best, value))
        rows.append({"trial": trial.number, "value": value, "best_value": best})
    return rows


def importance_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """fANOVA importance of each searched key (needs two finished trials with differing values)."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2 or len({t.value for t in complete}) < 2:
        return []
    importances = optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    return [{"param": key, "importance": float(value)} for key, value in importances.items()]


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with atomic_file(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def best_summary(study: optuna.Study, tune: TuneParams) -> dict[str, Any] | None:
    """The best finished trial: its number, value, params and the DVC experiment that holds it."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    best = study.best_trial
    counts = {state.name.lower(): sum(t.state == state for t in study.trials) for state in optuna.trial.TrialState}
    return {
        "study": study.study_name,
        "metric": tune.metric,
        "direction": tune.direction,
        "trial": best.number,
        "value": best.value,
        "params": best.params,
        "experiment": best.user_attrs.get("experiment"),
        "mlflow_run_id": best.user_attrs.get("mlflow_run_id"),
        "trials": {state: count for state, count in counts.items() if count},
    }


def write_results(study: optuna.Study, tune: TuneParams, out_dir: Path) -> dict[str, Path]:
    """``best.json``, ``history.csv`` and ``importances.csv`` of the study under ``out_dir`` (atomically)."""
    paths = {"best": out_dir / "best.json", "history": out_dir / "history.csv", "importances": out_dir / "importances.csv"}
    summary = best_summary(study, tune)
    if summary is not None:
        write_json(paths["best"], summary)
    write_csv(paths["history"], history_rows(study), ["trial", "value", "best_value"])
    write_csv(paths["importances"], importance_rows(study), ["param", "importance"])
    return {name: path for name, path in paths.items() if path.is_file()}
