"""Checks of a run project's model card against what that run recorded, shared by the NER (the session's demo run)
and classification e2e modules: every figure in the card is read back (:mod:`tests.card_figures`) and compared with
the metrics files, ``model_meta.json``, the evaluate stage's reports, ``dvc.lock`` and the stages' MLflow runs;
the card is the registered version's description and a README.md among its artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import ModelCard
from mlflow.tracking import MlflowClient

from electra_model.tracking.card_render import card_body
from tests.card_figures import figures, unrecorded
from tests.integration.project import Project

HUB = "models/hub"
RECORDED_STAGES = ("download", "pretrain", "finetune", "evaluate", "export")


def stage_run(client: MlflowClient, stage: str, metrics: dict[str, float]) -> Any:
    """The newest run of ``stage`` that logged these metrics (the one that wrote the stage's metrics file)."""
    experiment = client.get_experiment_by_name("electra-pipeline")
    runs = client.search_runs([experiment.experiment_id], f"tags.`dvc.stage` = '{stage}'", max_results=500)
    (run, *_) = [run for run in runs if run.info.run_name == stage
                 and all(run.data.metrics.get(key) == float(value) for key, value in metrics.items())]
    return run


def recorded(project: Project, client: MlflowClient) -> list[Any]:
    """Everything the run recorded that a card may show, and the int8-against-fp32 comparisons made from it."""
    root = project.root
    metrics = {stage: project.metrics(stage) for stage in RECORDED_STAGES}
    meta = json.loads((root / "models/onnx/model_meta.json").read_text(encoding="utf-8"))
    sizes = {name: (root / "models/onnx" / variant["file"]).stat().st_size for name, variant in meta["variants"].items()}
    lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"]["download"]["outs"]
    reports = [json.loads(path.read_text(encoding="utf-8")) for path in (root / "reports/evaluate").glob("*.json")]
    pretrain, finetune, export = metrics["pretrain"], metrics["finetune"], metrics["export"]
    runs = [
        stage_run(client, "pretrain", {key: pretrain[key] for key in ("steps", "tokens_seen", "train_minutes")}),
        stage_run(client, "finetune", {f"final_{key}": value for key, value in finetune.items()}),
        stage_run(client, "export", {"max_abs_logit_diff": export["max_abs_logit_diff"], export["metric"]: export["score"]}),
    ]
    variants, report, metric = meta["variants"], export["report"], export["metric"]
    derived = [sizes["fp32"] / sizes["int8"], variants["fp32"]["latency_ms_b1"] / variants["int8"]["latency_ms_b1"],
               variants["int8"][metric] - variants["fp32"][metric], report["int8"][metric] - report["fp32"][metric]]
    return [metrics, meta, sizes, lock, reports, [run.data.params for run in runs], derived]


def check_card(project: Project, client: MlflowClient, model_name: str) -> str:
    """The card of the project's registered version, checked; returned for task-specific checks."""
    root = project.root
    card = (root / HUB / "README.md").read_text(encoding="utf-8")
    assert len(figures(card)) > 50, card
    assert unrecorded(card, *recorded(project, client)) == [], card
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (root / HUB / name).read_bytes() == (root / "models/finetuned" / name).read_bytes()
    assert 'on "cpu"' in card  # the device the training stages recorded
    evaluation = project.metrics("evaluate")
    assert f"## Test results (split `{evaluation['split']}`)" in card

    version = client.get_model_version(model_name, str(project.metrics("export")["registered_version"]))
    assert version.description == card_body(card)
    artifacts = Path(client.get_model_version_download_uri(model_name, version.version).removeprefix("file://"))
    assert (artifacts / "README.md").read_text(encoding="utf-8") == card

    data = ModelCard(card).data
    assert (data.language, data.license) == ("en", "apache-2.0")
    assert all(result.dataset_split == evaluation["split"] for result in data.eval_results)
    return card


def table_row(card: str, first_cell: str) -> list[str]:
    (row,) = [[cell.strip() for cell in line.strip("|").split("|")] for line in card.splitlines()
              if line.startswith(f"| {first_cell} |")]
    return row
