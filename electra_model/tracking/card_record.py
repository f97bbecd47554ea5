"""What a model card says, read from what the pipeline recorded, never typed: the stages' metrics files, the data
hashes in ``dvc.lock``, the exported ``model_meta.json`` and ONNX files, and the MLflow runs of the stages.

The MLflow runs are found by what they logged, not by recency: the newest finished run of a stage whose final
metrics equal the stage's metrics file is the run that produced it, also when DVC reused a stage from an earlier
pipeline run. A run that cannot be found (another tracking store) leaves its params out of the card, said so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from electra_model.errors import ElectraError
from electra_model.io import read_json

STAGES = ("download", "pretrain", "finetune", "evaluate", "export")
DATA_STAGE = "download"
LOCK_FILE = Path("dvc.lock")  # DVC's record beside dvc.yaml, in the project root where DVC runs the stages
RUNS_SEARCHED = 200


@dataclass(frozen=True)
class StageRun:
    """The MLflow run of one stage: its id, params and tags (empty when no run matched)."""

    run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CardRecord:
    """Everything a card shows, each from where the pipeline wrote it."""

    model_name: str
    alias: str
    task: str
    language: str
    license: str
    metrics: dict[str, dict[str, Any]]
    data_outs: dict[str, dict[str, Any]]
    model_meta: dict[str, Any]
    onnx_bytes: dict[str, int]
    runs: dict[str, StageRun]


def stage_metrics(files: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """Each stage's metrics file (``<stage>.json``), by stage: all of :data:`STAGES`, each present."""
    by_stage = {path.stem: path for path in files}
    for stage in STAGES:
        if stage not in by_stage:
            raise ElectraError(f"no {stage}.json among the metrics files given ({', '.join(map(str, files))}); "
                               f"pass --metrics metrics/{stage}.json as dvc.yaml's card stage does")
        if not by_stage[stage].is_file():
            raise ElectraError(f"{by_stage[stage]} is missing; the card is made from it: run `dvc repro {stage}` first")
    return {stage: read_json(by_stage[stage]) for stage in STAGES}


def data_outs(lock_file: Path) -> dict[str, dict[str, Any]]:
    """The download stage's outputs as ``dvc.lock`` records them (md5, bytes, files), by path."""
    if not lock_file.is_file():
        raise ElectraError(f"{lock_file} is missing; run the pipeline with `dvc repro` so DVC records the data")
    stages = (yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}).get("stages", {})
    if DATA_STAGE not in stages:
        raise ElectraError(f"{lock_file}: no '{DATA_STAGE}' stage recorded; run `dvc repro {DATA_STAGE}` first")
    return {out["path"]: {key: out[key] for key in ("md5", "size", "nfiles") if key in out}
            for out in stages[DATA_STAGE].get("outs", [])}


def onnx_bytes(onnx_dir: Path, model_meta: Mapping[str, Any]) -> dict[str, int]:
    """The size of each exported variant's graph file, by variant."""
    return {name: (onnx_dir / variant["file"]).stat().st_size for name, variant in model_meta["variants"].items()}


def matching_run(client: MlflowClient, experiment_id: str, stage: str, expected: Mapping[str, float]) -> StageRun:
    """The newest finished run of ``stage`` that logged every ``expected`` metric with that value."""
    runs: list[Run] = client.search_runs(
        [experiment_id], f"tags.`dvc.stage` = '{stage}' and attributes.run_name = '{stage}' "
        "and attributes.status = 'FINISHED'", max_results=RUNS_SEARCHED, order_by=["attributes.start_time DESC"])
    for run in runs:
        if all(run.data.metrics.get(key) == float(value) for key, value in expected.items()):
            return StageRun(run.info.run_id, dict(run.data.params), dict(run.data.tags))
    return StageRun()


def stage_runs(client: MlflowClient, experiment_id: str, metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, StageRun]:
    """The pretrain, finetune and export runs that wrote these metrics files."""
    pretrain, finetune, export = metrics["pretrain"], metrics["finetune"], metrics["export"]
    numbers = {f"final_{key}": value for key, value in finetune.items() if isinstance(value, (int, float))}
    return {
        "pretrain": matching_run(client, experiment_id, "pretrain",
                                 {key: pretrain[key] for key in ("steps", "tokens_seen", "train_minutes")}),
        "finetune": matching_run(client, experiment_id, "finetune", numbers),
        "export": matching_run(client, experiment_id, "export",
                               {"max_abs_logit_diff": export["max_abs_logit_diff"], export["metric"]: export["score"]}),
    }


def read_record(
    *, metrics_files: Sequence[Path], lock_file: Path, onnx_dir: Path, client: MlflowClient, experiment_id: str,
    model_name: str, alias: str, language: str, license: str,
) -> CardRecord:
    """Gather the card's facts; a missing input is an error naming it and the stage that writes it."""
    metrics = stage_metrics(metrics_files)
    meta_path = onnx_dir / "model_meta.json"
    if not meta_path.is_file():
        raise ElectraError(f"{meta_path} is missing; run `dvc repro export` first")
    model_meta = read_json(meta_path)
    return CardRecord(
        model_name=model_name, alias=alias, task=model_meta["task"], language=language, license=license,
        metrics=metrics, data_outs=data_outs(lock_file), model_meta=model_meta,
        onnx_bytes=onnx_bytes(onnx_dir, model_meta), runs=stage_runs(client, experiment_id, metrics),
    )
