"""The Prefect flow ``electra-labelling-round``: one round of the labelling loop, scheduled by the ``labelling``
deployment in prefect.yaml.

1. Pull the Label Studio project's finished annotations into ``annotate.out``, ``dvc add`` it and ``git add`` its
   ``.dvc`` file, so the experiment records the labels (the data file is what the task's ``local.train`` must
   name). Nothing new since the last trained round (the data's MD5 is the one that round recorded), or nothing
   annotated at all: the round says so and stops, with no experiment and no run.
2. Train on it as a DVC experiment: the download stage is forced (DVC cannot see a local file's contents change,
   README "Data sources"), then ``dvc exp run --name <round>`` re-runs what that changes; the stages log under one
   pipeline parent run, as the pipeline flow's do.
3. The export stage's gate decides; the registry is reconciled and read (:func:`reconcile`), so the round reports
   whether the alias moved.
4. The champion (after the gate) ranks the pool's texts that Label Studio does not hold yet, as ``electra select``
   does, and the ``k`` it is least sure of are pushed pre-annotated.

Each trained round is one MLflow run in the ``labelling.experiment`` experiment: the labelled-set size, the round's
validation score, the gate's decision, the model version and the number pushed. A user error (a server that is down,
params that do not train on the pulled file, a bad pool) ends the run ``Failed`` with its one line.

    python -m flows.labelling [--pool FILE] [--k N] [--url URL] [--project TITLE]   # one round, now
    prefect --no-prompt deploy --all                                                   # the scheduled deployment
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed, State

from electra_model.annotate.command import dvc_add
from electra_model.annotate.converters import converter_for
from electra_model.annotate.convert import Converter
from electra_model.annotate.pull import Pulled, fetch, write
from electra_model.annotate.rounds import check_trains_on, file_md5, push_next_batch
from electra_model.annotate.studio import LabelStudio, find_token
from electra_model.client.selection import check_k, read_pool
from electra_model.config import Params, load_params
from electra_model.dvc_map import stage_path
from electra_model.errors import ElectraError, exit_on_user_error
from electra_model.export.result import ExportQuality
from electra_model.io import read_json
from electra_model.tasks.registry import register_plugins, registered_name, spec_for
from electra_model.tracking.card_publish import README
from electra_model.tracking.registry_sync import reconcile
from electra_model.tracking.runs import PARENT_RUN_ENV, configure, pipeline_run, tracking_uri
from flows.pipeline import USER_ERROR, user_error

SUMMARY_KEY = "electra-labelling-round"
DATA_MD5 = "data_md5"  # the round run's param naming the labels it trained on


def run_streamed(command: list[str], parent_run_id: str) -> None:
    """Run a DVC command with its output in the Prefect log; a stage's user error becomes its one line."""
    logger = get_run_logger()
    recent: deque[str] = deque(maxlen=15)
    with subprocess.Popen(command, env={**os.environ, PARENT_RUN_ENV: parent_run_id}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            recent.append(line.rstrip())
            logger.info(recent[-1])
    if process.returncode != 0:
        message = user_error(command[-1], recent)
        if message is not None:
            raise ElectraError(message.splitlines()[0])
        raise RuntimeError(f"`{' '.join(command)}` failed with exit code {process.returncode}:\n" + "\n".join(recent))


@task(task_run_name="dvc exp run --name {name}")
def train_experiment(name: str, parent_run_id: str) -> None:
    """The round's experiment: download forced to read the new labels, then everything that changes with them."""
    run_streamed(["dvc", "repro", "--force", "--single-item", "download"], parent_run_id)
    run_streamed(["dvc", "exp", "run", "--name", name], parent_run_id)


def stage_in_git(dvc_file: Path) -> None:
    """``git add`` the ``.dvc`` file (and the .gitignore `dvc add` wrote beside it): `dvc exp run` commits staged
    files with the experiment but leaves untracked ones out, and the experiment must name the labels it trained on."""
    paths = [str(dvc_file)] + [str(path) for path in [dvc_file.parent / ".gitignore"] if path.is_file()]
    done = subprocess.run(["git", "add", "--", *paths], capture_output=True, text=True)
    if done.returncode != 0:
        raise ElectraError(f"`git add {' '.join(paths)}` failed: {done.stderr.strip()}; the round needs a git checkout")


def pulled_md5(pulled: Pulled, converter: Converter, params: Params) -> str:
    """The MD5 of the data file the records make, written aside: a round with nothing new leaves the dataset (and
    its .dvc file) exactly as the last round trained on it."""
    with tempfile.TemporaryDirectory() as scratch:
        candidate = Path(scratch) / converter.data_file
        converter.write(pulled.records, candidate, params)
        return file_md5(candidate)


def last_trained_md5(client: MlflowClient, experiment_id: str) -> tuple[str, str] | None:
    """The data MD5 and run name of the latest finished round, if any."""
    runs = client.search_runs([experiment_id], "attributes.status = 'FINISHED'", max_results=1,
                              order_by=["attributes.start_time DESC"])
    if not runs or DATA_MD5 not in runs[0].data.params:
        return None
    return runs[0].data.params[DATA_MD5], runs[0].info.run_name


def skipped(reason: str) -> dict[str, Any]:
    print(reason)
    create_markdown_artifact(key=SUMMARY_KEY, markdown=f"# Labelling round\n\n{reason}", description="skipped round")
    return {"trained": False, "reason": reason}


def summary_markdown(record: dict[str, Any]) -> str:
    lines = ["# Labelling round", "", "| | |", "| --- | --- |"]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in record.items() if key != "trained"]
    return "\n".join(lines)


def run_round(params: Params, url: str, project: str, pool: Path, k: int) -> dict[str, Any]:
    """The round's steps in order (the module's docstring). Everything a user can get wrong is checked before the
    MLflow run exists, so a failed round leaves no run behind; once it exists, it ends FAILED with the error."""
    annotate, labelling = params.annotate, params.labelling
    converter = converter_for(spec_for(params.task).client.kind)
    out = Path(annotate.out)
    data_file = out / converter.data_file
    check_trains_on(params, data_file)
    check_k(k, None, pool)
    read_pool(pool)  # a bad pool stops the round before it trains, not after
    studio = LabelStudio(url, find_token(Path(annotate.data_dir)), annotate.timeout_s)
    pulled = fetch(studio, project, converter)  # a server that is down: its one line, before anything is written
    if not pulled.records:
        return skipped(f"no finished annotations in Label Studio project {project!r} at {url} "
                       f"({len(pulled.skipped)} tasks waiting); training skipped")
    store = tracking_uri(params.tracking)
    client = MlflowClient(store)
    experiment_id = configure(params.tracking.model_copy(update={"experiment": labelling.experiment}))
    data_md5 = pulled_md5(pulled, converter, params)
    last = last_trained_md5(client, experiment_id)
    if last is not None and last[0] == data_md5:
        return skipped(f"no new finished annotations in Label Studio project {project!r} since round {last[1]} "
                       f"({len(pulled.records)} labelled); training skipped")
    write(pulled, out, params, converter)
    stage_in_git(dvc_add(out))
    for task_id, reason in pulled.skipped:
        print(f"skipped task {task_id}: {reason}")

    name = f"round-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    run_id = client.create_run(experiment_id, run_name=name, tags={"dvc.experiment": name}).info.run_id
    try:
        for key, value in {"label_studio_url": url, "project": project, "pool": str(pool), "k": k,
                           DATA_MD5: data_md5, "data_file": str(data_file)}.items():
            client.log_param(run_id, key, value)
        client.log_metric(run_id, "labelled_size", len(pulled.records))
        client.log_metric(run_id, "left_out_tasks", len(pulled.skipped))
        with pipeline_run(params.tracking, f"pipeline-{name}", tags={"labelling.round": name}) as parent_id:
            client.set_tag(run_id, "pipeline_run_id", parent_id)
            train_experiment(name, parent_id)
            registry = reconcile(stage_path("export", "outs"), stage_path("export", "metrics"), params.export,
                                 stage_path("card", "outs") / README)
        quality = ExportQuality.from_dict(read_json(stage_path("export", "metrics")), "metrics/export.json")
        passed = registry["alias_version"] == registry["version"]
        client.log_metric(run_id, f"valid_{quality.metric}", quality.score)
        client.log_metric(run_id, "model_version", registry["version"])
        client.log_metric(run_id, "gate_passed", int(passed))
        client.log_param(run_id, "gate_decision", registry["decision"])
        client.set_tag(run_id, "gate_reason", registry["reason"])
        client.set_tag(run_id, "registered_model", f"models:/{registry['name']}/{registry['version']}")
        pushed = 0
        if registry["alias_version"] is not None:
            champion = f"models:/{registry['name']}@{registry['alias']}"
            pushed = len(push_next_batch(studio, project, read_pool(pool), k, champion, store, labelling.diversity))
        client.log_metric(run_id, "pushed", pushed)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return {
        "trained": True, "round": name, "run_id": run_id, "labelled_size": len(pulled.records),
        f"valid_{quality.metric}": round(quality.score, 4), "model_version": registry["version"],
        "gate": f"{registry['decision']} ({registry['reason']})",
        "champion": f"version {registry['alias_version']}" if registry["alias_version"] is not None else "none",
        "pushed": pushed,
    }


@flow(name="electra-labelling-round", log_prints=True)
def electra_labelling_round(
    project_dir: str = ".",
    label_studio_url: str | None = None,
    project: str | None = None,
    pool: str | None = None,
    k: int | None = None,
) -> dict[str, Any] | State:
    """One round; every argument left None is params.yaml's (``annotate.url``, ``annotate.project`` else the
    task's model name, ``labelling.pool``, ``labelling.k``). A user error ends it ``Failed`` with its line."""
    os.chdir(project_dir)
    try:
        params = load_params("params.yaml")
        register_plugins(params.plugins)
        title = project or params.annotate.project or registered_name(params.export, params.task)
        record = run_round(params, label_studio_url or params.annotate.url, title,
                           Path(pool or params.labelling.pool), k or params.labelling.k)
    except ElectraError as error:
        print(f"error: {error}")
        return Failed(name=USER_ERROR, message=str(error))
    if record["trained"]:
        markdown = summary_markdown(record)
        create_markdown_artifact(key=SUMMARY_KEY, markdown=markdown, description="ELECTRA labelling round")
        print(markdown)
    return record


@exit_on_user_error
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.labelling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="Label Studio's address (default annotate.url)")
    parser.add_argument("--project", help="Label Studio project title (default annotate.project, else the model name)")
    parser.add_argument("--pool", help="unlabelled texts to choose the next batch from (default labelling.pool)")
    parser.add_argument("--k", type=int, help="texts pushed (default labelling.k)")
    args = parser.parse_args(argv)
    state = electra_labelling_round(".", args.url, args.project, args.pool, args.k, return_state=True)
    if state.name == USER_ERROR:
        raise ElectraError(state.message)
    state.result()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
