"""The tune driver's pruning decision (issue 27 item 5): while a trial runs, the driver reads the per-epoch
``tune.pruning.curve`` its stage logged to MLflow (a run nested under the trial's run) and stops the trial's process
group when Optuna's median rule prunes it. In the end-to-end study whether a trial is pruned depends on how fast the
trials run beside each other; here the curves are logged beforehand to a real sqlite MLflow store, the study is in a
real Optuna storage, and the trial's `dvc exp run` is stood in for by a real process, so the decision is fixed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from electra_model.config import read_params_file
from electra_model.dvc_map import stages
from flows.tune import Driver, open_study
from tests.params import params

# Optuna warns that heartbeats are meant for Study.optimize: here trials are asked for and told by hand
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")

REPO = Path(__file__).resolve().parents[3]
FINISHED_CURVE = [0.5, 0.6, 0.7]  # the one finished trial: the median at each epoch, with startup_trials = 1


@pytest.fixture
def driver(tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch) -> Driver:
    """A driver in a project folder of its own (dvc.yaml's paths are relative), on the test's MLflow store."""
    shutil.copyfile(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    monkeypatch.chdir(tmp_path)
    run = params({"tune.storage": f"sqlite:///{tmp_path}/study.db", "tune.pruning.curve": "valid_f1",
                  "tune.pruning.startup_trials": 1, "tune.pruning.warmup_epochs": 0})
    return Driver(run, read_params_file(REPO / "params.yaml"), stages(tmp_path / "dvc.yaml"), parallel=1)


def running_trial(driver: Driver, curve: list[float]) -> tuple[optuna.Trial, str]:
    """A study with one finished trial and a second, running one whose stage has logged ``curve`` so far (epochs
    from 1, as the fine-tuning stage logs them); the running trial and its MLflow run."""
    study, _ = open_study(driver.tune, driver.raw, resume=False)
    finished = study.ask()
    for epoch, value in enumerate(FINISHED_CURVE, start=1):
        finished.report(value, epoch)
    study.tell(finished, FINISHED_CURVE[-1])
    trial = study.ask()
    trial_run = driver.client.create_run(driver.experiment_id, run_name="trial-1").info.run_id
    stage_run = driver.client.create_run(driver.experiment_id, tags={"mlflow.parentRunId": trial_run,
                                                                     "dvc.stage": driver.tune.stage}).info.run_id
    for epoch, value in enumerate(curve, start=1):
        driver.client.log_metric(stage_run, driver.tune.pruning.curve, value, step=epoch)
    return trial, trial_run


def stand_in(seconds: float) -> subprocess.Popen:
    """A process in a session of its own, as the driver starts `dvc exp run`, that runs for ``seconds``."""
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"], start_new_session=True)


def test_a_running_trial_below_the_median_is_stopped_at_that_epoch(driver: Driver) -> None:
    trial, trial_run = running_trial(driver, [0.55, 0.1])  # above the median at epoch 1, below it at epoch 2
    process = stand_in(600)
    try:
        started = time.monotonic()
        assert driver.watch(trial, process, trial_run) == 2
        assert process.poll() is not None  # its process group was stopped, not left training
        assert time.monotonic() - started < 10  # stopped by SIGTERM, not after the 20 s wait for a SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert MlflowClient().get_run(trial_run).info.status == "RUNNING"  # the objective, not watch, ends the run
    (frozen,) = [t for t in trial.study.get_trials() if t.number == trial.number]
    assert frozen.intermediate_values == {1: 0.55, 2: 0.1}


def test_a_trial_at_or_above_the_median_runs_to_its_end(driver: Driver) -> None:
    trial, trial_run = running_trial(driver, [0.5, 0.65, 0.9])
    process = stand_in(1.0)  # still running when the curve is first judged, done by the next poll
    assert driver.watch(trial, process, trial_run) is None
    assert process.returncode == 0
    (frozen,) = [t for t in trial.study.get_trials() if t.number == trial.number]
    assert frozen.intermediate_values == {1: 0.5, 2: 0.65, 3: 0.9}


def test_a_low_value_is_not_pruned_once_the_trial_has_finished(driver: Driver) -> None:
    trial, trial_run = running_trial(driver, [0.1])
    process = stand_in(0)
    process.wait()  # the trial ended before its last epoch was read: its result stands
    assert driver.watch(trial, process, trial_run) is None
    (frozen,) = [t for t in trial.study.get_trials() if t.number == trial.number]
    assert frozen.intermediate_values == {1: 0.1}
