"""MLflow record of every pipeline run: one parent run per pipeline run, one nested run per stage.

The Prefect flow opens the parent run and hands its id to the stages through ``ELECTRA_PARENT_RUN_ID``; a stage run
by plain ``dvc repro`` opens a parent run of its own, so nothing goes unrecorded. ``MLFLOW_TRACKING_URI`` in the
environment wins over ``tracking.uri`` in params.yaml, so the same code logs to a local sqlite file or a team server;
a local store and its artifacts sit at the project root wherever DVC runs the stage
(:mod:`electra_model.client.store`).
Credentials for a server with authentication come from the environment only (``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``, or ``MLFLOW_TRACKING_TOKEN``, read by MLflow itself): never params, never logs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from electra_model.config import TrackingParams
from electra_model.errors import ElectraError
from electra_model.client.store import anchored, redact, refuse_credentials, resolve_tracking_uri, unreachable_reason
from electra_model.tracking.database_store import database_problem
from electra_model.tracking.relocate import follow_moved_root

PARENT_RUN_ENV = "ELECTRA_PARENT_RUN_ID"
DEVICE_TAG = "compute.device"  # what a training stage ran on (electra_model.training.device_description)


def tracking_uri(params: TrackingParams) -> str:
    """The store to log to: the environment's ``MLFLOW_TRACKING_URI`` if set, else params.yaml's; a relative local
    store sits at the project root, also when DVC runs the stage in a temporary copy
    (:mod:`electra_model.client.store`)."""
    return refuse_credentials(resolve_tracking_uri(configured=params.uri))


def check_reachable(uri: str, timeout_s: float) -> None:
    """Fail within ``timeout_s`` if an http(s) tracking server does not answer, or a database store cannot be
    opened, instead of MLflow's long retries and a traceback that a flow would retry as if it were transient."""
    problem = database_problem(uri, timeout_s)
    if problem is not None:
        fix = ("move the file aside to start a new store, or restore it from a backup" if uri.startswith("sqlite")
               else "start the database server or fix the URI")
        raise ElectraError(f"MLflow store {redact(uri)} cannot be opened ({problem}); {fix} (MLFLOW_TRACKING_URI, "
                           "else tracking.uri in params.yaml)")
    reason = unreachable_reason(uri, timeout_s)
    if reason is not None:
        raise ElectraError(
            f"MLflow tracking server {redact(uri)} is unreachable ({reason}); start it, fix MLFLOW_TRACKING_URI, "
            "or unset MLFLOW_TRACKING_URI to log to the local store in params.yaml (tracking.uri)"
        )


@contextmanager
def explained_server_errors(uri: str, timeout_s: float, what: str) -> Iterator[None]:
    """Turn the two server failures a user meets into one clear :class:`ElectraError`: refused credentials, and a
    server that went away mid-run (after MLflow's own retries). Once the server is known to be gone, MLflow's
    retries are switched off for this process, so ending the open runs on the way out fails at once instead of
    backing off for minutes per call."""
    try:
        yield
    except MlflowException as error:
        status = error.get_http_status_code()
        if status in (401, 403):
            raise ElectraError(
                f"MLflow tracking server {redact(uri)} refused {what} (HTTP {status}); set MLFLOW_TRACKING_USERNAME "
                "and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment to an account that may "
                "write to the experiment; credentials never go in params.yaml or in the URI"
            ) from None
        reason = unreachable_reason(uri, timeout_s)
        if reason is None:
            raise
        os.environ[MLFLOW_HTTP_REQUEST_MAX_RETRIES.name] = "0"
        raise ElectraError(
            f"MLflow tracking server {redact(uri)} stopped answering during {what} ({reason}); the stage failed, "
            "so DVC recorded none of its outputs and the previous ones stay in its cache. Start the server again "
            "and re-run `dvc repro` (MLflow retries each call MLFLOW_HTTP_REQUEST_MAX_RETRIES times before this)"
        ) from None


def configure(params: TrackingParams) -> str:
    """Point MLflow at the store and make sure the experiment exists; return the experiment id."""
    uri = tracking_uri(params)
    check_reachable(uri, params.connect_timeout_s)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(params.experiment)
    is_local_store = not uri.startswith(("http://", "https://", "databricks"))
    artifact_location = anchored(params.artifact_location).resolve().as_uri() if is_local_store else None
    if experiment is not None:
        if artifact_location is not None:
            follow_moved_root(uri, experiment.artifact_location, artifact_location)
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
        return experiment.experiment_id
    try:
        experiment_id = mlflow.create_experiment(params.experiment, artifact_location=artifact_location)
    except MlflowException as error:
        # another process created it between the look-up and here (two search workers starting at once on one
        # tracking server): theirs is the experiment
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        experiment_id = mlflow.get_experiment_by_name(params.experiment).experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_tags(project_dir: Path | str = ".") -> dict[str, str]:
    """The commit the code came from and whether the tree had uncommitted changes (empty outside git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"git.commit": commit, "mlflow.source.git.commit": commit, "git.dirty": str(bool(status.strip())).lower()}


def flatten(section: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as ``a.b.c`` keys, the shape MLflow's params table and ``dvc params diff`` share."""
    flat: dict[str, Any] = {}
    for key, value in section.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


@contextmanager
def pipeline_run(params: TrackingParams, run_name: str, tags: Mapping[str, str] | None = None) -> Iterator[str]:
    """Open the parent run of one pipeline run and yield its id (the flow passes it to the stages)."""
    uri = tracking_uri(params)
    with explained_server_errors(uri, params.connect_timeout_s, f"pipeline run {run_name!r}"):
        configure(params)
        with mlflow.start_run(run_name=run_name, tags={**git_tags(), **(tags or {})}) as run:
            yield run.info.run_id


@contextmanager
def stage_run(stage: str, params: TrackingParams, stage_params: Mapping[str, Any]) -> Iterator[mlflow.ActiveRun]:
    """Open the nested run of one DVC stage, under the flow's parent run or a parent of its own.

    Server failures are explained twice: inside the runs, so that a server found gone turns MLflow's retries off
    before the runs are ended, and around them, for the error that ending the runs then raises."""
    uri = tracking_uri(params)
    what = f"stage '{stage}'"
    with explained_server_errors(uri, params.connect_timeout_s, what):
        configure(params)
        tags = {**git_tags(), "dvc.stage": stage}
        parent_id = os.environ.get(PARENT_RUN_ENV)
        if parent_id:
            with mlflow.start_run(run_name=stage, parent_run_id=parent_id, tags=tags) as run:
                with explained_server_errors(uri, params.connect_timeout_s, what):
                    mlflow.log_params(flatten(stage_params))
                    yield run
            return
        with mlflow.start_run(run_name=f"dvc-repro-{stage}", tags={**tags, "pipeline.trigger": "dvc"}):
            with mlflow.start_run(run_name=stage, nested=True, tags=tags) as run:
                with explained_server_errors(uri, params.connect_timeout_s, what):
                    mlflow.log_params(flatten(stage_params))
                    yield run


def file_digest(paths: list[Path]) -> str:
    """A short content hash of files, so MLflow's dataset records change exactly when the data does."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def log_dataset(path: Path | str, name: str, context: str) -> None:
    """Record a file or directory of data as an input of the active run (``mlflow.log_input``)."""
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    dataset = MetaDataset(source=resolve_dataset_source(path.as_uri()), name=name, digest=file_digest(files))
    mlflow.log_input(dataset, context=context)


def client() -> MlflowClient:
    """A client for the store :func:`configure` selected (registry calls go to the same place)."""
    return MlflowClient()
