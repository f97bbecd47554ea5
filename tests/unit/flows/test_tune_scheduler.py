"""The tune scheduler counts trials in the study's storage (issue 31 item 3): exactly ``n_trials`` finish, a failed
trial is replaced, alone or as one of several workers. The trials here are a one-line objective on a real sqlite
storage with heartbeats, so the counting is tested without running DVC."""

from __future__ import annotations

import types
from pathlib import Path

import optuna
import pytest

from electra_model.search.storage import open_storage
from flows.tune import Scheduler, TrialFailed
from tests.params import params


@pytest.mark.parametrize("shared", [False, True])
def test_exactly_n_trials_finish_and_a_failed_one_is_replaced(tmp_path: Path, shared: bool) -> None:
    tune = params({"tune.storage": f"sqlite:///{tmp_path}/study.db", "tune.heartbeat_s": 1, "tune.grace_s": 3}).tune
    study = optuna.create_study(study_name="s", storage=open_storage(tune), direction="maximize")

    def objective(trial: optuna.Trial, parent: str) -> float:
        value = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 1:
            raise TrialFailed("trial 1 failed")
        return value

    driver = types.SimpleNamespace(objective=objective, tune=tune)  # the part of a Driver the scheduler calls
    Scheduler(study, driver, "study-run", 4, None, shared=shared).run(2)
    states = [trial.state.name for trial in study.trials]
    assert states.count("COMPLETE") == 4 and states.count("FAIL") == 1, states
