"""`electra tune` for real on tiny demo params (issue 15): 4 trials, 2 at a time, each a `dvc exp run --temp`
experiment of the stages up to finetune and an MLflow run under one study run; no trial runs a stage before
finetune again (they come from DVC's cache), nor fails; a driver killed with SIGKILL resumes without repeating a
finished trial; `--apply-best` puts the best trial in the workspace and runs the whole pipeline with it. The tests
run in order and share one copy of the session's ``demo_run`` (its corpus, tokenizer and pretrained model; an MLflow
store of its own) and one Prefect server; history and importances are DVC plots."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.integration.ops_servers import LOOPBACK_ENV, prefect_server
from tests.integration.project import GIT_IDENTITY, DemoRun, Project, clone_project, deep_update, ran_stages

pytestmark = pytest.mark.e2e

# The trials fine-tune for TINY's 3 epochs (a trial below the median can be pruned after epoch 1 or 2; whether one
# is depends on timing, so the decision itself is pinned in tests/unit/flows/test_tune_pruning.py). Finetune's
# params are the shared run's, so the stages a trial reuses are up to date in the copy as it is, finetune included.
TUNE = {
    "tune": {"study": "demo", "n_trials": 4, "parallel": 2, "seed": 1234,
             "pruning": {"curve": "valid_f1", "startup_trials": 1, "warmup_epochs": 0},
             "space": {"finetune.learning_rate": {"low": 1.0e-5, "high": 1.0e-2, "log": True}}},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, demo_run: DemoRun) -> Iterator[Project]:
    """The copy, its flows reporting to one `prefect server` on loopback, as a team's do: the module's four flow runs
    (the study, the killed driver, its resumption, --apply-best's pipeline) would each start a temporary server."""
    workdir = tmp_path_factory.mktemp("tune")
    project = clone_project(demo_run.project, workdir / "project", fresh_store=True)
    params = project.params()
    deep_update(params, TUNE)
    params["tune"]["space"] = TUNE["tune"]["space"]  # replace the committed space, not merge into it
    project.write_params(params)
    project.run("git", *GIT_IDENTITY, "commit", "-qam", "the test's search space")
    with prefect_server(workdir, project.env) as (_, env):
        project.env.update(env, **LOOPBACK_ENV)
        yield project


def study(project: Project) -> optuna.Study:
    return optuna.load_study(study_name="demo", storage=f"sqlite:///{project.root / 'tune/study.db'}")


def states(project: Project) -> dict[int, str]:
    return {trial.number: trial.state.name for trial in study(project).trials}


def assert_trials_reused_upstream(project: Project, trials: int) -> None:
    """Each trial's `dvc exp run` ran finetune alone, taking every earlier stage from the copy's dvc.lock and DVC's
    cache (a trial started while another held DVC's lock used to run them all again)."""
    logs = {log.name: log.read_text() for log in sorted((project.root / "tune/logs").glob("demo-*.log"))}
    assert len(logs) == trials, sorted(logs)
    ran = {name: sorted(ran_stages(text)) for name, text in logs.items()}
    assert all(stages == ["finetune"] for stages in ran.values()), ran
    assert all("Stage 'pretrain' didn't change, skipping" in text for text in logs.values())


def test_a_bad_space_fails_before_any_trial(project: Project) -> None:
    params = project.params()
    good = json.loads(json.dumps(params))
    params["tune"]["space"]["finetune.learnig_rate"] = {"low": 1e-4, "high": 1e-3}
    project.write_params(params)
    try:
        result = project.run(str(Path(sys.executable).parent / "electra"), "tune", check=False)
    finally:
        project.write_params(good)
    assert result.returncode == 2 and "tune.space.finetune.learnig_rate" in result.stderr, result.stderr
    assert not (project.root / "tune/study.db").exists()


def test_four_trials_two_at_a_time_are_experiments_and_runs(project: Project) -> None:
    project.run(str(Path(sys.executable).parent / "electra"), "tune")
    found = states(project)
    assert sorted(found.values()).count("COMPLETE") + list(found.values()).count("PRUNED") == 4, found
    assert "FAIL" not in found.values(), found  # no trial was refused by another trial's hold on DVC's lock
    # Whether a trial is pruned here depends on timing (its epoch's value is judged against trials still running):
    # the decision is pinned in tests/unit/flows/test_tune_pruning.py. Every stage before finetune is reused.
    assert_trials_reused_upstream(project, 4)

    shown = json.dumps(json.loads(project.run("dvc", "exp", "show", "--json").stdout))
    done = [t for t in study(project).trials if t.state.name == "COMPLETE"]
    assert all(t.user_attrs["experiment"] in shown for t in done)

    client = MlflowClient(project.env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("electra-pipeline").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`pipeline.trigger` = 'tune'")
    trials = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(trials) == 4
    spans = sorted((run.info.start_time, run.info.end_time) for run in trials)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), "no two trials overlapped"
    for trial in done:
        (stage,) = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{trial.user_attrs['mlflow_run_id']}'")
        assert stage.data.tags["dvc.stage"] == "finetune"
    best = json.loads((project.root / "tune/demo/best.json").read_text())
    assert best["value"] == max(t.value for t in done) and best["experiment"].startswith("demo-")
    assert (project.root / "tune/demo/history.csv").read_text().count("\n") == len(done) + 1
    plots = json.loads(project.run("dvc", "plots", "show", "--json", "tune_history", "tune_importances").stdout)["data"]
    (history,) = plots["tune_history"]
    assert {point["trial"] for point in history["content"]["data"]["values"]} == {str(t.number) for t in done}
    (importances,) = plots["tune_importances"]
    assert [point["param"] for point in importances["content"]["data"]["values"]] == ["finetune.learning_rate"]


def test_a_killed_study_resumes_without_repeating_a_finished_trial(project: Project) -> None:
    before = {t.number: (t.state.name, t.params) for t in study(project).trials}
    # one trial more than the four finished: the driver is killed during it, and the resumed one runs a new one
    driver = subprocess.Popen([sys.executable, "-m", "flows.tune", "--trials", "5", "--parallel", "1", "--resume"],
                              cwd=project.root, env=project.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not any(t.state.name == "RUNNING" and "pgid" in t.user_attrs
                                                   for t in study(project).trials):
        time.sleep(1)  # killed while a trial's `dvc exp run` is under way
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    (killed,) = [t for t in study(project).trials if t.state.name == "RUNNING"]

    project.run(str(Path(sys.executable).parent / "electra"), "tune", "--trials", "5", "--parallel", "1", "--resume")
    after = {t.number: (t.state.name, t.params) for t in study(project).trials}
    assert all(after[number] == entry for number, entry in before.items()), "a finished trial changed"
    assert after[killed.number][0] == "FAIL"
    assert sum(state in ("COMPLETE", "PRUNED") for state, _ in after.values()) == 5
    with pytest.raises(ProcessLookupError):
        os.killpg(killed.user_attrs["pgid"], 0)


def test_apply_best_puts_the_best_trial_in_the_workspace_and_runs_the_whole_pipeline(project: Project) -> None:
    best = json.loads((project.root / "tune/demo/best.json").read_text())
    started = time.time()
    result = project.run(str(Path(sys.executable).parent / "electra"), "tune", "--apply-best")
    assert f"applied trial {best['trial']}" in result.stdout
    assert project.params()["finetune"]["learning_rate"] == pytest.approx(best["params"]["finetune.learning_rate"])
    finetuned = json.loads((project.root / "metrics/finetune.json").read_text())
    assert finetuned["best_valid_f1"] == pytest.approx(best["value"])
    # the copied project holds the shared run's evaluation: this one must be new
    assert (project.root / "metrics/evaluate.json").stat().st_mtime >= started
    assert project.run("dvc", "status", "--json").stdout.strip() in ("{}", "")
    client = MlflowClient(project.env["MLFLOW_TRACKING_URI"])
    (version,) = client.search_model_versions("name = 'electra-ner'")
    assert version.tags["champion_decision"] in ("promoted", "rejected")
