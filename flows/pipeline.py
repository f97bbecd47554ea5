"""The Prefect flow ``electra-pipeline``: runs the DVC stages in order and records the run in MLflow.

DVC decides what is stale (each task is ``dvc repro <stage>``), Prefect adds retries, timeouts and a summary
artifact, MLflow holds the record: the flow opens one parent run and hands its id to every stage it runs. After
the stages it reconciles the registry with the exported model (``electra_model.tracking.registry_sync``), so the summary
reports what the registry holds. A stage that stops on a user error (exit code 2: bad params, bad data, an
unreachable server) is not retried, and its one line is the first line of the flow run's state message and of
what ``python -m flows.pipeline`` prints; other failures are retried ``stage_retries`` times.

    python -m flows.pipeline                  # run once, against Prefect's local (ephemeral) server
    prefect --no-prompt deploy --all          # the scheduled deployment in prefect.yaml
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mlflow
from prefect import Task, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import TaskRun
from prefect.runtime import flow_run
from prefect.states import Failed, State

from electra_model.config import Params, load_params
from electra_model.dvc_map import stage_path, stage_paths
from electra_model.dvc_map import stages as dvc_stages
from electra_model.errors import ElectraError, exit_on_user_error
from electra_model.tracking.card_publish import README
from electra_model.tracking.registry_sync import reconcile
from electra_model.tracking.runs import PARENT_RUN_ENV, pipeline_run, tracking_uri
from flows.dvc_rwlock import repair_rwlock

SUMMARY_KEY = "electra-pipeline-summary"
USER_ERROR = "UserError"  # the state name of a stage (and flow) run stopped by a user error: never retried
USER_EXIT = re.compile(r"failed to run: .*, exited with 2$")  # DVC's line for a stage command that exited with 2


def user_error(stage: str, lines: Iterable[str]) -> str | None:
    """The stage's own one-line message when `dvc repro` says the stage exited with 2 (``exit_on_user_error``),
    else None. The stage prints ``error: <message>`` and DVC then reports the exit status."""
    lines = list(lines)
    if not any(USER_EXIT.search(line) for line in lines):
        return None
    messages = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    detail = messages[-1] if messages else f"stage '{stage}' stopped on a user error (exit code 2)"
    return f"{detail}\n(`dvc repro {stage}` stopped on this user error; not retried: fix it and run again)"


def retry_unless_user_error(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect's retry condition: a user error fails the same way every time, so it is never retried."""
    return state.name != USER_ERROR


@task(task_run_name="dvc repro {stage}", retry_condition_fn=retry_unless_user_error)
def repro_stage(stage: str, parent_run_id: str) -> State | None:
    """Run one DVC stage (and nothing that is up to date), streaming its output to the Prefect log as it comes.
    A user error becomes a ``Failed`` state named :data:`USER_ERROR` whose message is the stage's one line."""
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
    if process.returncode == 0:
        return None
    message = user_error(stage, recent)
    if message is not None:
        logger.error(message)
        return Failed(name=USER_ERROR, message=message)
    tail = "\n".join(recent)
    raise RuntimeError(f"`dvc repro {stage}` failed with exit code {process.returncode}:\n{tail}")


def read_metrics() -> dict[str, Any]:
    """The metrics files the stages wrote (absent ones are skipped: a partial run still gets a summary)."""
    metrics = {}
    for stage in pipeline_stages():
        paths = [path for path in stage_paths(stage, "metrics") if path.suffix == ".json"]  # card writes none
        if paths and paths[0].is_file():
            metrics[stage] = json.loads(paths[0].read_text(encoding="utf-8"))
    return metrics


def electra_command() -> str:
    """The CLI as the user can type it from the project root: the project venv's script, else plain `electra`."""
    script = Path(sys.executable).parent / "electra"
    if script.exists() and script.is_relative_to(Path.cwd()):
        return str(script.relative_to(Path.cwd()))
    return "electra"


def registry_lines(registry: dict[str, Any] | None, params: Params) -> list[str]:
    """What the registry says about the exported model (read after reconciling), never a number from old metrics."""
    if registry is None:
        return ["- Registered model: not checked (the export stage was not part of this run)"]
    alias, holder = registry["alias"], registry["alias_version"]
    again = " -- registered again from `models/onnx`: the registry lacked it" if registry["registered_now"] else ""
    if holder == registry["version"]:
        alias_text = f"holds alias `{alias}`"
    else:
        alias_text = f"alias `{alias}` is on " + (f"version {holder}" if holder is not None else "no version")
    return [
        f"- Registered model: `models:/{registry['name']}/{registry['version']}`{again}; {alias_text} "
        f"({registry['decision']}: {registry['reason']})",
        f"- Try it: `{electra_command()} predict \"Angela Merkel met Emmanuel Macron in Paris.\" "
        f"--model models:/{registry['name']}@{params.export.alias}`",
    ]


def summary_markdown(
    metrics: dict[str, Any], params: Params, parent_run_id: str, registry: dict[str, Any] | None
) -> str:
    """The table a person wants after a run: the task's scores (entity F1 for NER, accuracy and macro-F1 for
    classification), parity, the registered version and where things are."""
    lines = ["# ELECTRA pipeline run", "", "| metric | value |", "| --- | --- |"]
    evaluate = metrics.get("evaluate", {})
    for name, scores in evaluate.get("entity", {}).items():
        lines.append(f"| entity F1 {name} | {scores['f1']:.4f} (P {scores['precision']:.4f}, R {scores['recall']:.4f}) |")
    lines += [f"| {key} | {evaluate[key]:.4f} |" for key in ("accuracy", "macro_f1") if key in evaluate]
    export = metrics.get("export", {})
    for key in ("max_abs_logit_diff", "labels_identical", "f1"):
        if key in export:
            lines.append(f"| export {key} | {export[key]} |")
    for key in ("loss", "rtd_accuracy", "tokens_per_s"):
        if key in metrics.get("pretrain", {}):
            lines.append(f"| pretrain {key} | {metrics['pretrain'][key]:.4g} |")
    lines += [
        "",
        f"- MLflow: `{tracking_uri(params.tracking)}`, experiment `{params.tracking.experiment}`, parent run `{parent_run_id}`",
        *registry_lines(registry, params),
        "- Artifacts: `models/onnx/` (ONNX), `models/finetuned/` (torch), `reports/evaluate/`, `plots/`",
    ]
    return "\n".join(lines)


def pipeline_stages() -> list[str]:
    """Every stage, in dvc.yaml's order: dvc.yaml is the one list of them (and of their paths and deps)."""
    return list(dvc_stages())


def checked_params(stages: list[str]) -> Params:
    """params.yaml and the stage names, validated before DVC touches anything."""
    params = load_params("params.yaml")
    known = pipeline_stages()
    unknown = sorted(set(stages) - set(known))
    if unknown:
        raise ElectraError(f"unknown stages {unknown}; choose from {known}")
    return params


@flow(name="electra-pipeline", log_prints=True)
def electra_pipeline(
    project_dir: str = ".",
    stages: list[str] | None = None,
    stage_retries: int = 1,
    stage_timeout_s: int = 4 * 3600,
) -> dict[str, Any] | State:
    """Validate params, run each stage as a task under one MLflow parent run, reconcile the registry, publish a
    summary artifact. ``stages`` defaults to all of dvc.yaml's. A user error ends the run ``Failed`` (state
    :data:`USER_ERROR`) with its line first."""
    os.chdir(project_dir)
    try:
        stages = stages or pipeline_stages()
        params = checked_params(stages)
    except ElectraError as error:
        return Failed(name=USER_ERROR, message=str(error))
    if repair_rwlock():
        print("repaired .dvc/tmp/rwlock: a killed dvc command had left it cut short (flows/dvc_rwlock.py)")
    run_stage = repro_stage.with_options(retries=stage_retries, retry_delay_seconds=5, timeout_seconds=stage_timeout_s)
    run_name = f"pipeline-{flow_run.get_name() or 'local'}"
    registry = None
    with pipeline_run(params.tracking, run_name, tags={"prefect.flow_run_id": str(flow_run.get_id())}) as parent_id:
        for stage in stages:
            state = run_stage(stage, parent_id, return_state=True)
            if state.name == USER_ERROR:
                mlflow.set_tag("pipeline.failed_stage", stage)
                mlflow.end_run("FAILED")
                return Failed(name=USER_ERROR, message=state.message)
            state.result()  # any other failure, after its retries, fails the flow with its exception
        metrics = read_metrics()
        overall = metrics.get("evaluate", {}).get("entity", {}).get("overall")
        if overall:
            mlflow.log_metrics({f"entity_{k}": float(v) for k, v in overall.items()})
        if "export" in stages:
            card = stage_path("card", "outs") / README if "card" in pipeline_stages() else None
            registry = reconcile(stage_path("export", "outs"), stage_path("export", "metrics"), params.export, card)
    markdown = summary_markdown(metrics, params, parent_id, registry)
    create_markdown_artifact(key=SUMMARY_KEY, markdown=markdown, description="ELECTRA pipeline summary")
    print(markdown)
    return {"parent_run_id": parent_id, "metrics": metrics, "registry": registry}


@exit_on_user_error
def main(argv: list[str]) -> None:
    """`make run`: params are checked before Prefect starts; a user error ends with its line and exit code 2."""
    project_dir = argv[0] if argv else "."
    os.chdir(project_dir)
    checked_params(pipeline_stages())
    state = electra_pipeline(project_dir=".", return_state=True)
    if state.name == USER_ERROR:
        raise ElectraError(state.message)
    state.result()  # another failure: its exception and traceback, exit code 1


if __name__ == "__main__":
    main(sys.argv[1:])
