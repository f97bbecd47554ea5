"""The Prefect flow ``electra-tune``: an Optuna study whose trials are DVC experiments and MLflow runs.

Each trial is ``dvc exp run --temp --name <study>-<number> -S key=value ... <tune.stage>``: DVC runs it in a
temporary copy (so ``tune.parallel`` trials run side by side without touching the workspace), re-runs only the
stages the sampled keys change, and keeps it as an experiment (``dvc exp show``, ``dvc exp apply``). The stages
record to the project's own tracking store (``electra_model.client.store`` anchors it at ``DVC_ROOT``) under the
trial's MLflow run, which is nested under the study's run. While a trial runs, the driver reads the per-epoch
``tune.pruning.curve`` its stage logs to MLflow and stops the trial when Optuna's median rule prunes it.

The study lives in Optuna's storage (``tune.storage``); ``--resume`` continues it after a crash or a SIGKILL: a
finished trial is never repeated, and a trial the dead driver left running is stopped and counted as failed.

With ``--worker`` the driver is one of several, on machines that share the study's storage (PostgreSQL), the MLflow
server and the DVC remote, each in its own clone of the project. Workers join the study (the first creates it and
its MLflow run), take trials until ``n_trials`` are finished, and push each finished trial with `dvc exp push` to
``tune.git_remote``. A worker that dies loses only its running trial: its heartbeat stops, and after
``tune.grace_s`` another worker fails it and runs it again with the same params
(:mod:`electra_model.search.storage`).

    python -m flows.tune [--trials N] [--parallel K] [--resume]   # or: electra tune ...
    python -m flows.tune --worker [--trials N] [--parallel K]     # one of several workers (electra tune --worker)
    python -m flows.tune --apply-best       # dvc exp apply the best trial, then run the whole pipeline flow
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import mlflow
import optuna
import psutil
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from prefect import flow
from prefect.artifacts import create_markdown_artifact

from electra_model.config import Params, TuneParams, read_params_file
from electra_model.dvc_map import plot_file
from electra_model.dvc_map import stages as dvc_stages
from electra_model.errors import ElectraError, exit_on_user_error
from electra_model.io import read_json
from electra_model.search.space import (
    check_space,
    distributions,
    metric_value,
    set_arguments,
    stage_order,
    suggest,
    write_results,
)
from electra_model.search.storage import join_study, open_storage, shared_attr
from electra_model.client.store import redact
from electra_model.tracking.runs import PARENT_RUN_ENV, configure, tracking_uri

POLL_S = 2.0
COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # what n_trials counts
STARTED = "Running stage"  # DVC's line once the temporary copy is set up and the repository lock is released
# Trials share the workspace's repository lock (taken to stash a trial, and again after its experiment is collected);
# DVC's own --wait-for-lock waits for it. Retrying a refused `dvc exp run` needs --force to reuse the name, and
# --force is `dvc repro --force`: the retry re-ran every stage from download (issue 27 item 5).
DVC = ("dvc", "--wait-for-lock")


def results_dir(study: str) -> Path:
    """Where a study's results go: the folder of dvc.yaml's ``tune_history`` plot, which draws them."""
    return plot_file("tune_history", {"tune.study": study}).parent


def logs_dir(study: str) -> Path:
    """The trials' logs, beside the studies' result folders."""
    return results_dir(study).parent / "logs"


class TrialFailed(Exception):
    """A trial's `dvc exp run` failed; the study goes on (Optuna records the trial as failed)."""


class Surplus(Exception):
    """Two workers took the last trial at the same moment: the later one gives its trial up unrun (Optuna records it
    as failed, with the user attribute ``surplus``)."""


def worker_name() -> str:
    """Which worker ran a trial (recorded with it): the machine, the project copy and the process."""
    return f"{socket.gethostname()}:{Path.cwd()}:{os.getpid()}"


def check_git_remote(remote: str | None) -> None:
    """Finished trials are pushed to ``tune.git_remote``: a missing remote fails before any trial, not after each."""
    if remote and subprocess.run(["git", "remote", "get-url", remote], capture_output=True).returncode != 0:
        raise ElectraError(f"tune.git_remote = {remote!r} is not a git remote of {Path.cwd()}; add it "
                           f"(git remote add {remote} <url>) or set tune.git_remote: null")


def copied_paths(stages: Mapping[str, Any], target: str) -> list[str]:
    """What `dvc exp run --temp` must be given with ``-C``: it copies only what git tracks, so an uncommitted
    dvc.lock and the uncached metrics and plots of the stages before ``target`` would be missing in each trial's
    copy, and every trial would run those stages again."""
    paths = ["dvc.lock"] if Path("dvc.lock").exists() and not git_tracks("dvc.lock") else []
    for name in stage_order(stages, target)[:-1]:
        for kind in ("metrics", "plots"):
            for item in stages[name].get(kind, []):
                path, options = (next(iter(item.items())) if isinstance(item, dict) else (str(item), {}))
                if (options or {}).get("cache", True) is False and Path(path).exists() and not git_tracks(path):
                    paths.append(copy_unit(Path(path)))
    return sorted(set(paths))


def git_tracks(path: str) -> bool:
    return subprocess.run(["git", "ls-files", "--error-unmatch", path], capture_output=True).returncode == 0


def tracked_under(folder: Path) -> bool:
    return bool(subprocess.run(["git", "ls-files", str(folder)], capture_output=True, text=True).stdout.strip())


def copy_unit(path: Path) -> str:
    """What to pass to ``-C`` for ``path``: DVC copies neither into a folder the copy lacks nor onto one it has, so
    the file itself when git tracks something beside it, else its highest folder that git tracks nothing under."""
    unit = path
    for folder in path.parents[:-1]:
        if tracked_under(folder):
            break
        unit = folder
    return str(unit)


def check_upstream_current(stages: list[str]) -> None:
    """Trials must reuse what the searched keys do not change: stages before the tuned one must be up to date."""
    if not stages:
        return
    result = subprocess.run(["dvc", "status", "--json", *stages], capture_output=True, text=True)
    stale = sorted(json.loads(result.stdout or "{}")) if result.returncode == 0 else stages
    if stale:
        raise ElectraError(f"stages {', '.join(stale)} are not up to date, so every trial would run them again; "
                           f"run `dvc repro {stages[-1]}` first")


def thread_env(worker: int, parallel: int) -> dict[str, str]:
    """K trials share the CPU cores (no oversubscription), and take one GPU each where there are several."""
    env = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // parallel)), "DVC_NO_ANALYTICS": "1"}
    gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.count("GPU ") if \
        _has("nvidia-smi") else 0
    if gpus > 1:
        env["CUDA_VISIBLE_DEVICES"] = str(worker % gpus)
    return env


def _has(command: str) -> bool:
    from shutil import which

    return which(command) is not None


def stop_group(pgid: int, leader: subprocess.Popen | None = None) -> None:
    """SIGTERM a trial's process group (dvc and its stage), SIGKILL what is left after 20 s. A ``leader`` that is
    this process's child is reaped while waiting: its zombie would still be in the group, and every pruned trial
    would wait the whole 20 s."""
    try:
        os.killpg(pgid, signal.SIGTERM)
        for _ in range(40):
            if leader is not None:
                leader.poll()
            os.killpg(pgid, 0)
            time.sleep(0.5)
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def leftover(pgid: int, experiment: str) -> bool:
    """Whether ``pgid`` is still the group of the named trial (not a reused id): its leader runs that experiment."""
    try:
        return experiment in " ".join(psutil.Process(pgid).cmdline())
    except psutil.Error:
        return False


class Driver:
    """Runs one study: samples trials, runs each as a DVC experiment under its MLflow run, prunes, records."""

    def __init__(self, params: Params, raw: Mapping[str, Any], stages: Mapping[str, Any], parallel: int):
        self.params, self.raw, self.tune, self.parallel = params, raw, params.tune, parallel
        self.stages = stages
        self.copy = copied_paths(stages, self.tune.stage)
        self.metric_file, _, self.metric_key = self.tune.metric.partition(":")
        self.client = MlflowClient(tracking_uri(params.tracking))
        self.experiment_id = configure(params.tracking)
        self.workers: dict[int, int] = {}
        self.lock = threading.Lock()
        self.starting = threading.Lock()
        logs_dir(self.tune.study).mkdir(parents=True, exist_ok=True)

    def worker_slot(self) -> int:
        with self.lock:
            ident = threading.get_ident()
            return self.workers.setdefault(ident, len(self.workers))

    def objective(self, trial: optuna.Trial, study_run_id: str) -> float:
        values = {key: suggest(trial, self.raw, key, dimension) for key, dimension in self.tune.space.items()}
        name = f"{self.tune.study}-{trial.number}"
        lost = trial.user_attrs.get("experiment")  # a retried trial carries the attributes of the one its worker lost
        tags = {"mlflow.parentRunId": study_run_id, "optuna.study": self.tune.study, "optuna.trial": str(trial.number),
                "dvc.experiment": name, **({"optuna.retry_of": lost} if lost else {})}
        if lost:
            self.client.set_tag(trial.user_attrs["mlflow_run_id"], "optuna.state", "lost")
            self.client.set_terminated(trial.user_attrs["mlflow_run_id"], "FAILED")
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        run_id = run.info.run_id
        for key, value in values.items():
            self.client.log_param(run_id, key, value)
        trial.set_user_attr("experiment", name)
        trial.set_user_attr("mlflow_run_id", run_id)
        trial.set_user_attr("worker", worker_name())
        command = [*DVC, "exp", "run", "--temp", "--name", name, *set_arguments(values)]
        for path in self.copy:
            command += ["-C", path]
        command.append(self.tune.stage)
        env = {**os.environ, **thread_env(self.worker_slot(), self.parallel), PARENT_RUN_ENV: run_id}
        log_path = logs_dir(self.tune.study) / f"{name}.log"
        process, pruned = self.launch(trial, command, env, log_path, run_id)
        if pruned:
            self.client.set_tag(run_id, "optuna.state", "pruned")
            self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
            raise optuna.TrialPruned(f"trial {trial.number} pruned at epoch {pruned}")
        if process.returncode != 0:
            self.client.set_tag(run_id, "optuna.state", "failed")
            self.client.set_terminated(run_id, "FAILED")
            tail = log_path.read_text(encoding="utf-8").splitlines()[-15:]
            raise TrialFailed(f"trial {trial.number} ({' '.join(command)}) failed:\n" + "\n".join(tail))
        value = self.read_metric(name)
        if self.tune.git_remote:
            self.push(name, run_id)
        self.client.log_metric(run_id, self.metric_key, value)
        self.client.set_tag(run_id, "optuna.state", "complete")
        self.client.set_terminated(run_id, "FINISHED")
        return value

    def push(self, name: str, run_id: str) -> None:
        """`dvc exp push` the finished experiment to ``tune.git_remote`` (its outputs to DVC's default remote), so
        that every worker's trials meet there (once no other trial holds DVC's repository lock)."""
        command = [*DVC, "exp", "push", self.tune.git_remote or "", name]
        pushed = subprocess.run(command, capture_output=True, text=True)
        if pushed.returncode != 0:
            self.client.set_tag(run_id, "optuna.state", "failed")
            self.client.set_terminated(run_id, "FAILED")
            raise TrialFailed(f"`{' '.join(command)}` failed: {(pushed.stderr or pushed.stdout).strip()}")

    def launch(self, trial: optuna.Trial, command: list[str], env: dict[str, str], log_path: Path,
               run_id: str) -> tuple[subprocess.Popen, int | None]:
        """Start the experiment and watch it to the end; the process and the epoch it was pruned at, if it was.

        One start at a time, from before `dvc exp run` is started until its first stage runs: each start stashes its
        trial in the workspace's one experiment queue and takes the newest entry back out, so two starts at once
        could each take the other's trial (with the other's MLflow run and copied paths)."""
        with ExitStack() as stack:
            log = stack.enter_context(open(log_path, "w", encoding="utf-8"))
            with self.starting:
                process = stack.enter_context(subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
                trial.set_user_attr("pgid", process.pid)
                while process.poll() is None and STARTED not in log_path.read_text(encoding="utf-8"):
                    time.sleep(0.5)
            return process, self.watch(trial, process, run_id)

    def curve(self, run_id: str) -> list[float]:
        """The per-epoch values the trial's stage run has logged so far (it is nested under the trial run)."""
        curve = self.tune.pruning.curve
        if curve is None:
            return []
        runs = self.client.search_runs(
            [self.experiment_id], f"tags.mlflow.parentRunId = '{run_id}' and tags.`dvc.stage` = '{self.tune.stage}'"
        )
        if not runs:
            return []
        history = self.client.get_metric_history(runs[0].info.run_id, curve)
        return [point.value for point in sorted(history, key=lambda point: (point.step, point.timestamp))]

    def watch(self, trial: optuna.Trial, process: subprocess.Popen, run_id: str) -> int | None:
        """Wait for the trial, reporting each new epoch to Optuna; the epoch it was pruned at, or None."""
        reported = 0
        while True:
            finished = process.poll() is not None
            values = self.curve(run_id)
            for epoch, value in enumerate(values[reported:], start=reported + 1):
                trial.report(value, epoch)
                reported = epoch
                if not finished and trial.should_prune():
                    stop_group(process.pid, process)
                    process.wait()
                    return epoch
            if finished:
                return None
            time.sleep(POLL_S)

    def read_metric(self, name: str) -> float:
        """The metric from the experiment's own commit (what `dvc exp show` lists for it)."""
        refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"],
                              capture_output=True, text=True, check=True).stdout.split()
        ref = next((ref for ref in refs if ref.endswith(f"/{name}")), None)
        if ref is None:
            raise TrialFailed(f"experiment {name} finished but DVC keeps no ref for it")
        shown = subprocess.run(["git", "show", f"{ref}:{self.metric_file}"], capture_output=True, text=True)
        if shown.returncode != 0:
            raise TrialFailed(f"experiment {name} has no {self.metric_file}")
        return metric_value(json.loads(shown.stdout), self.metric_key, f"{name}:{self.metric_file}")


class Scheduler:
    """Hands out trials to ``parallel`` threads until ``n_trials`` are finished or pruned: exactly that many, as a
    started trial is counted before the next is handed out (a failed one is replaced, up to as many failures as
    trials), and none is started after the time limit.

    A ``shared`` study has other workers: the count is the storage's (their running trials included), a worker whose
    remaining trials all run elsewhere waits to pick one up if its worker dies, and a trial two workers took at the
    same moment beyond ``n_trials`` is given up unrun (:class:`Surplus`). Each trial runs under Optuna's
    ``optimize``, which records its heartbeat and first fails the trials whose heartbeat stopped."""

    def __init__(self, study: optuna.Study, driver: Driver, parent: str, n_trials: int, timeout_minutes: float | None,
                 shared: bool = False):
        self.study, self.driver, self.parent, self.n_trials, self.shared = study, driver, parent, n_trials, shared
        self.deadline = time.monotonic() + timeout_minutes * 60 if timeout_minutes else None
        self.lock = threading.Lock()
        self.in_flight, self.failures = 0, 0

    def claim(self) -> bool:
        while True:
            with self.lock:
                late = self.deadline is not None and time.monotonic() > self.deadline
                if late or self.failures >= self.n_trials:
                    return False
                if self.shared:
                    with warnings.catch_warnings():  # experimental since Optuna 2.9, and what Optuna's own loop calls
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        optuna.storages.fail_stale_trials(self.study)
                states = [trial.state for trial in self.study.get_trials(deepcopy=False)]
                done = sum(state in COUNTED for state in states)
                running = states.count(optuna.trial.TrialState.RUNNING) if self.shared else 0
                busy = max(running, self.in_flight)  # this worker's trials are among the storage's running ones
                if done < self.n_trials and (done + busy < self.n_trials or optuna.trial.TrialState.WAITING in states):
                    self.in_flight += 1
                    return True
                if not self.shared or done >= self.n_trials:
                    return False
            time.sleep(self.driver.tune.heartbeat_s)  # the last trials run elsewhere: take over one that dies

    def surplus(self, trial: optuna.Trial) -> bool:
        """A new trial (not a retry) with ``n_trials`` live or finished trials numbered before it."""
        if trial.user_attrs.get("experiment"):
            return False
        live = (*COUNTED, optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
        return sum(t.number < trial.number for t in self.study.get_trials(deepcopy=False, states=live)) >= self.n_trials

    def run_trial(self, trial: optuna.Trial) -> float:
        if self.shared and self.surplus(trial):
            trial.set_user_attr("surplus", True)
            raise Surplus(f"trial {trial.number} given up unrun: another worker took the last trial at the same moment")
        try:
            return self.driver.objective(trial, self.parent)
        except TrialFailed as error:
            print(error)
            with self.lock:
                self.failures += 1
            raise

    def worker(self) -> None:
        while self.claim():
            try:
                self.study.optimize(self.run_trial, n_trials=1, catch=(TrialFailed, Surplus), gc_after_trial=False)
            finally:
                with self.lock:
                    self.in_flight -= 1

    def run(self, parallel: int) -> None:
        threads = [threading.Thread(target=self.worker, name=f"trial-worker-{n}") for n in range(parallel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def open_study(tune: TuneParams, raw: Mapping[str, Any], resume: bool,
               worker: bool = False) -> tuple[optuna.Study, bool]:
    """The study in its storage, and whether this call created it: a new one, or (``resume``) the existing one with
    the same space; a ``worker`` joins the study whether or not another worker created it."""
    storage = open_storage(tune)
    exists = tune.study in {summary.study_name for summary in optuna.get_all_study_summaries(storage)}
    if exists and not (resume or worker):
        raise ElectraError(f"study {tune.study!r} already exists in {redact(tune.storage)} (tune.study, tune.storage); "
                           "pass --resume to continue it, or give tune.study a new name")
    if resume and not exists:
        raise ElectraError(f"no study {tune.study!r} in {redact(tune.storage)} to resume; run `electra tune` without "
                           "--resume")
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=tune.pruning.startup_trials,
                                          n_warmup_steps=tune.pruning.warmup_epochs)
              if tune.pruning.curve else optuna.pruners.NopPruner())
    # Workers seeded alike would sample the same params; constant_liar keeps them off each other's running trials.
    sampler = (optuna.samplers.TPESampler(seed=zlib.crc32(f"{tune.seed}:{worker_name()}".encode()), constant_liar=True)
               if worker else optuna.samplers.TPESampler(seed=tune.seed))
    study, created = join_study(
        lambda: optuna.create_study(study_name=tune.study, storage=storage, direction=tune.direction, sampler=sampler,
                                    pruner=pruner),
        lambda: optuna.load_study(study_name=tune.study, storage=storage, sampler=sampler, pruner=pruner),
    )
    space = distributions(raw, tune.space)
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", space)
    elif stored != json.loads(json.dumps(space)):
        raise ElectraError(f"tune.space differs from the space study {tune.study!r} was started with; restore it, or "
                           "give tune.study a new name to start another study")
    return study, created


def stop_leftovers(study: optuna.Study) -> list[int]:
    """Trials a killed driver left RUNNING: stop their processes if they still run, and record them as failed."""
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pgid, experiment = trial.user_attrs.get("pgid"), trial.user_attrs.get("experiment", "")
        if pgid and leftover(pgid, experiment):
            stop_group(pgid)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        stale.append(trial.number)
    return stale


def counted(study: optuna.Study) -> int:
    """Trials that count towards ``n_trials``: finished or pruned ones (a failed trial is tried again)."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def study_run_id(study: optuna.Study, driver: Driver, tune: TuneParams, joined: bool = False) -> str:
    """The study's MLflow run (the parent of every trial run), created once and kept across resumes. A worker that
    ``joined`` a study another worker created waits for that worker to record the run (up to ``tune.grace_s``;
    after that, the creator is taken for dead and this worker creates it)."""
    run_id = shared_attr(study, "mlflow_run_id", tune.grace_s) if joined else study.user_attrs.get("mlflow_run_id")
    if run_id is None:
        run = driver.client.create_run(driver.experiment_id, run_name=f"tune-{tune.study}",
                                       tags={"optuna.study": tune.study, "pipeline.trigger": "tune"})
        run_id = run.info.run_id
        study.set_user_attr("mlflow_run_id", run_id)
        for key, dimension in tune.space.items():
            driver.client.log_param(run_id, f"space.{key}", json.dumps(dimension.model_dump(exclude_defaults=True)))
    return run_id


def run_study(trials: int | None = None, parallel: int | None = None, resume: bool = False,
              worker: bool = False) -> dict[str, Any]:
    """Check the space, run the study to ``trials`` counted trials, write and log the results; the best trial. A
    ``worker`` shares the study with other workers (its trials run in its own copy of the project)."""
    raw = read_params_file("params.yaml")
    params = check_space(raw)
    stages = dvc_stages()
    tune = params.tune
    parallel = parallel or tune.parallel
    n_trials = trials or tune.n_trials
    check_upstream_current(stage_order(stages, tune.stage)[:-1])
    check_git_remote(tune.git_remote)
    study, created = open_study(tune, raw, resume, worker)
    if not worker:  # a worker's study has other workers, whose running trials are theirs: see the heartbeat
        stale = stop_leftovers(study)
        if stale:
            print(f"trials {stale} were left running by a stopped driver: stopped and recorded as failed")
    driver = Driver(params, raw, stages, parallel)
    parent = study_run_id(study, driver, tune, joined=worker and not created)
    remaining = n_trials - counted(study)
    role = f"worker {worker_name()} " if worker else ""
    print(f"{role}study {tune.study!r}: {counted(study)} trials done, running up to {max(remaining, 0)} more, "
          f"{parallel} at a time")
    if remaining > 0:
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is printed once, by the scheduler
        Scheduler(study, driver, parent, n_trials, tune.timeout_minutes, shared=worker).run(parallel)
    paths = write_results(study, tune, results_dir(tune.study))
    for path in paths.values():
        driver.client.log_artifact(parent, str(path), artifact_path="tune")
    summary = read_json(paths["best"]) if "best" in paths else None
    if summary is not None:
        driver.client.log_metric(parent, f"best_{driver.metric_key}", summary["value"])
        driver.client.set_tag(parent, "optuna.best_trial", str(summary["trial"]))
    driver.client.set_terminated(parent, "FINISHED")
    return {"best": summary, "results": {name: str(path) for name, path in paths.items()}}


def summary_markdown(result: dict[str, Any]) -> str:
    best = result["best"]
    if best is None:
        return "# electra-tune\n\nNo trial finished."
    lines = ["# electra-tune", "", f"Best trial {best['trial']} (`dvc exp apply {best['experiment']}`): "
             f"{best['metric']} = {best['value']:.4f}", "", "| param | value |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in best["params"].items()]
    lines += ["", f"Trials: {best['trials']}", f"Results: {', '.join(result['results'].values())}",
              "Apply it and run the whole pipeline: `electra tune --apply-best`"]
    return "\n".join(lines)


@flow(name="electra-tune", log_prints=True)
def electra_tune(project_dir: str = ".", trials: int | None = None, parallel: int | None = None,
                 resume: bool = False, worker: bool = False) -> dict[str, Any]:
    """The study as a Prefect flow run, with its summary as an artifact."""
    os.chdir(project_dir)
    result = run_study(trials, parallel, resume, worker)
    markdown = summary_markdown(result)
    create_markdown_artifact(key="electra-tune-summary", markdown=markdown, description="electra-tune best trial")
    print(markdown)
    return result


def trial_in_workspace(trial_params: Mapping[str, Any], stage: str) -> bool:
    """The workspace's params.yaml holds the trial's values and ``stage`` is up to date with them."""
    workspace = read_params_file("params.yaml")
    for key, value in trial_params.items():
        found: Any = workspace
        for part in key.split("."):
            found = found.get(part) if isinstance(found, Mapping) else None
        if found != value:
            return False
    status = subprocess.run(["dvc", "status", "--json", stage], capture_output=True, text=True)
    return status.returncode == 0 and json.loads(status.stdout or "{}") == {}


def apply_best() -> int:
    """`dvc exp apply` the best trial into the workspace, then run the whole pipeline flow (the registry gate
    decides on the model as after any run)."""
    tune = check_space(read_params_file("params.yaml")).tune
    best_file = results_dir(tune.study) / "best.json"
    if not best_file.is_file():
        raise ElectraError(f"{best_file} not found: run `electra tune` (study {tune.study!r}) first")
    best = read_json(best_file)
    # A trial ran the stages up to tune.stage only, so DVC reports the later stages' outputs as missing from its
    # checkout and exits non-zero; what matters is that the trial's params and outputs are now in the workspace.
    applied = subprocess.run(["dvc", "exp", "apply", best["experiment"]], capture_output=True, text=True)
    if not trial_in_workspace(best["params"], tune.stage):
        raise ElectraError(f"`dvc exp apply {best['experiment']}` did not restore trial {best['trial']} "
                           f"(exit {applied.returncode}): {applied.stderr.strip() or applied.stdout.strip()}")
    print(f"applied trial {best['trial']} ({best['experiment']}): {best['params']}")
    return subprocess.run([sys.executable, "-m", "flows.pipeline"]).returncode


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="electra tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, help="trials the study should count in all (default tune.n_trials)")
    parser.add_argument("--parallel", type=int, help="trials at once (default tune.parallel)")
    parser.add_argument("--resume", action="store_true", help="continue the study of tune.study in tune.storage")
    parser.add_argument("--apply-best", action="store_true", help="apply the best trial and run the whole pipeline")
    parser.add_argument("--worker", action="store_true",
                        help="join the study as one of several workers sharing tune.storage (created if absent)")
    args = parser.parse_args(argv)
    if args.worker and (args.resume or args.apply_best):
        raise ElectraError("--worker joins the study as it stands: give it without --resume and --apply-best")
    for name in ("trials", "parallel"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ElectraError(f"--{name} must be at least 1")
    return args


@exit_on_user_error
def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.apply_best:
        return apply_best()
    check_space(read_params_file("params.yaml"))  # a bad space fails before Prefect starts
    electra_tune(".", args.trials, args.parallel, args.resume, args.worker)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
