"""The Prefect flow ``electra-pipeline``: runs the DVC stages in order and records the run in MLflow.

DVC decides what is stale (each task is ``dvc repro <stage>``), Prefect adds retries, timeouts and a summary
artifact, MLflow holds the record: the flow opens one parent run and hands its id to every stage it runs.

    python -m flows.pipeline                  # run once, against Prefect's local (ephemeral) server
    prefect --no-prompt deploy --all          # the scheduled deployment in prefect.yaml
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

import mlflow
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from electra_model.config import Params, load_params
from electra_model.tracking import PARENT_RUN_ENV, pipeline_run, tracking_uri

STAGES = ("download", "tokenizer", "pretrain", "finetune", "evaluate", "export")
SUMMARY_KEY = "electra-pipeline-summary"


@task(task_run_name="dvc repro {stage}")
def repro_stage(stage: str, parent_run_id: str) -> None:
    """Run one DVC stage (and nothing that is up to date), streaming its output to the Prefect log as it comes."""
    logger = get_run_logger()
    recent: deque[str] = deque(maxlen=15)
    with subprocess.Popen(
        ["dvc", "repro", stage],
        env={**os.environ, PARENT_RUN_ENV: parent_run_id},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            for line in process.stdout:
                recent.append(line.rstrip())
                logger.info(recent[-1])
            process.wait()
        finally:
            if process.poll() is None:  # timed out or cancelled: stop dvc and the stage it runs, not just dvc
                os.killpg(process.pid, signal.SIGKILL)
    if process.returncode != 0:
        tail = "\n".join(recent)
        raise RuntimeError(f"`dvc repro {stage}` failed with exit code {process.returncode}:\n{tail}")


def read_metrics() -> dict[str, Any]:
    """The metrics files the stages wrote (absent ones are skipped: a partial run still gets a summary)."""
    metrics = {}
    for stage in STAGES:
        path = Path("metrics") / f"{stage}.json"
        if path.is_file():
            metrics[stage] = json.loads(path.read_text(encoding="utf-8"))
    return metrics


def electra_command() -> str:
    """The CLI as the user can type it from the project root: the project venv's script, else plain `electra`."""
    script = Path(sys.executable).parent / "electra"
    if script.exists() and script.is_relative_to(Path.cwd()):
        return str(script.relative_to(Path.cwd()))
    return "electra"


def summary_markdown(metrics: dict[str, Any], params: Params, parent_run_id: str) -> str:
    """The table a person wants after a run: entity scores, parity, the registered version and where things are."""
    lines = ["# ELECTRA pipeline run", "", "| metric | value |", "| --- | --- |"]
    entity = metrics.get("evaluate", {}).get("entity", {})
    for name, scores in entity.items():
        lines.append(f"| entity F1 {name} | {scores['f1']:.4f} (P {scores['precision']:.4f}, R {scores['recall']:.4f}) |")
    export = metrics.get("export", {})
    for key in ("max_abs_logit_diff", "labels_identical", "f1", "registered_version", "alias_moved"):
        if key in export:
            lines.append(f"| export {key} | {export[key]} |")
    for key in ("loss", "rtd_accuracy", "tokens_per_s"):
        if key in metrics.get("pretrain", {}):
            lines.append(f"| pretrain {key} | {metrics['pretrain'][key]:.4g} |")
    model = params.export.model_name
    lines += [
        "",
        f"- MLflow: `{tracking_uri(params.tracking)}`, experiment `{params.tracking.experiment}`, parent run `{parent_run_id}`",
        f"- Registered model: `models:/{model}/{export.get('registered_version', '?')}`"
        f" (alias `{params.export.alias}` {'moved' if export.get('alias_moved') else 'unchanged'})",
        "- Artifacts: `models/onnx/` (ONNX), `models/ner/` (torch), `reports/evaluate/`, `plots/`",
        f"- Try it: `{electra_command()} predict \"Angela Merkel met Emmanuel Macron in Paris.\" "
        f"--model models:/{model}@{params.export.alias}`",
    ]
    return "\n".join(lines)


@flow(name="electra-pipeline", log_prints=True)
def electra_pipeline(
    project_dir: str = ".",
    stages: list[str] = list(STAGES),
    stage_retries: int = 1,
    stage_timeout_s: int = 4 * 3600,
) -> dict[str, Any]:
    """Validate params, run each stage as a task under one MLflow parent run, publish a summary artifact."""
    os.chdir(project_dir)
    params = load_params("params.yaml")  # a bad param stops the flow here, before any stage runs
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; choose from {list(STAGES)}")
    run_stage = repro_stage.with_options(retries=stage_retries, retry_delay_seconds=5, timeout_seconds=stage_timeout_s)
    run_name = f"pipeline-{flow_run.get_name() or 'local'}"
    with pipeline_run(params.tracking, run_name, tags={"prefect.flow_run_id": str(flow_run.get_id())}) as parent_id:
        for stage in stages:
            run_stage(stage, parent_id)
        metrics = read_metrics()
        overall = metrics.get("evaluate", {}).get("entity", {}).get("overall")
        if overall:
            mlflow.log_metrics({f"entity_{k}": float(v) for k, v in overall.items()})
    markdown = summary_markdown(metrics, params, parent_id)
    create_markdown_artifact(key=SUMMARY_KEY, markdown=markdown, description="ELECTRA pipeline summary")
    print(markdown)
    return {"parent_run_id": parent_id, "metrics": metrics}


if __name__ == "__main__":
    electra_pipeline(project_dir=sys.argv[1] if len(sys.argv) > 1 else ".")
