"""Nothing lost, nothing misreported, through real `dvc` commands on tiny demo params with the embedded default
store (`tracking.uri: sqlite:///mlflow.db`, no MLFLOW_TRACKING_URI):

- a stage that fails (a misspelt param, a missing data file) under `dvc repro` leaves the last good outputs, metrics
  and plots byte for byte, and a no-op `dvc repro` stays a no-op afterwards (every out is `persist: true`);
- `dvc exp run --temp`, and `dvc exp run --queue` run by `dvc queue start`, record their runs and their model
  versions in the repository root's store, not in the temporary copy DVC deletes;
- after `mlflow.db` and `mlartifacts/` are lost, the Prefect flow registers the cached `models/onnx` again, its
  summary says so, and `electra predict` works.

The first run is the session's shared ``demo_run`` (tests/integration/conftest.py), made with the embedded default
store; the tests run in order on one copy of it, each building on what the earlier ones left.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from electra_model.dvc_map import stage_paths
from electra_model.tracking.card_render import card_body
from tests.integration.project import GIT_IDENTITY, STAGES, DemoRun, Project, clone_project, ran_stages

pytestmark = pytest.mark.e2e

FINETUNE_OUTPUTS = ("models/finetuned", "metrics/finetune.json", "plots/finetune.csv", "plots/finetune_valid.csv")
DOWNLOAD_OUTPUTS = ("data/corpus", "data/task", "metrics/download.json")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, demo_run: DemoRun) -> Project:
    """A copy of the shared run with its results committed, as a user's would be before they run experiments: a
    `--temp` or `--queue` experiment starts from the commit, where dvc.lock and the uncached metrics and plots
    say that only the stages whose params it changes are due (without them every stage would run again)."""
    project = clone_project(demo_run.project, tmp_path_factory.mktemp("records") / "project")
    del project.env["MLFLOW_TRACKING_URI"]  # the embedded default: sqlite:///mlflow.db, artifacts in mlartifacts/
    project.run("git", "add", "-A")
    project.run("git", *GIT_IDENTITY, "commit", "-qm", "pipeline results")
    return project


def snapshot(project: Project, paths: tuple[str, ...]) -> dict[str, bytes]:
    """Every file under ``paths`` with its bytes (hidden staging leftovers included, so they would show up)."""
    files = {}
    for name in paths:
        path = project.root / name
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                files[str(file.relative_to(project.root))] = file.read_bytes()
    return files


def root_store(project: Project) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project.root / 'mlflow.db'}")


def stage_runs(client: MlflowClient, stage: str) -> list:
    """The nested runs of ``stage`` (a plain `dvc repro` also opens a parent run tagged with the stage)."""
    experiment = client.get_experiment_by_name("electra-pipeline")
    found = client.search_runs([experiment.experiment_id], f"tags.`dvc.stage` = '{stage}'", max_results=500)
    return [run for run in found if run.info.run_name == stage]


def test_first_repro_writes_the_store_at_the_root(demo_run: DemoRun) -> None:
    assert ran_stages(demo_run.output) == set(STAGES)
    (export,) = stage_runs(root_store(demo_run.project), "export")
    assert (demo_run.project.root / "mlartifacts").is_dir()
    assert export.info.artifact_uri.startswith((demo_run.project.root / "mlartifacts").as_uri())


def test_a_misspelt_param_keeps_the_last_good_finetune_outputs(project: Project) -> None:
    before = snapshot(project, FINETUNE_OUTPUTS)
    assert len(before) > 4
    params = project.params()
    params["finetune"]["epochz"] = 2
    project.write_params(params)
    try:
        failed = project.run("dvc", "repro", check=False)
    finally:
        del params["finetune"]["epochz"]
        project.write_params(params)
    assert failed.returncode != 0 and "finetune.epochz" in failed.stderr, failed.stdout + failed.stderr
    assert snapshot(project, FINETUNE_OUTPUTS) == before
    assert ran_stages(project.run("dvc", "repro").stdout) == set(), "the kept outputs do not match dvc.lock"


def test_a_missing_data_file_keeps_the_last_good_data(project: Project) -> None:
    before = snapshot(project, DOWNLOAD_OUTPUTS)
    original = project.params()
    params = json.loads(json.dumps(original))
    params["data"]["source"] = "local"
    params["data"]["local"] = {"corpus": ["user/corpus.txt"]}
    params["ner"]["local"] = {s: f"user/{s}.txt" for s in ("train", "valid", "test")}
    project.write_params(params)
    try:
        failed = project.run("dvc", "repro", "download", check=False)
    finally:
        project.write_params(original)
    assert failed.returncode != 0 and "ner.local.train: 'user/train.txt' is not a file" in failed.stderr, \
        failed.stdout + failed.stderr  # the task's files are read before the corpus
    assert snapshot(project, DOWNLOAD_OUTPUTS) == before
    assert "up to date" in project.run("dvc", "status").stdout


def test_exp_run_temp_records_in_the_root_store(project: Project) -> None:
    client = root_store(project)
    runs_before = {run.info.run_id for run in stage_runs(client, "export")}
    versions_before = {v.version for v in client.search_model_versions("name = 'electra-ner'")}
    result = project.run("dvc", "exp", "run", "--temp", "-S", "export.latency_runs=3")
    assert "Running stage 'export'" in result.stdout + result.stderr
    ran = ran_stages(result.stdout + result.stderr)
    assert ran == {"export", "card"}, result.stdout + result.stderr  # from the commit, as the queued one below
    (new_run,) = [run for run in stage_runs(client, "export") if run.info.run_id not in runs_before]
    assert new_run.info.status == "FINISHED" and new_run.data.params["export.latency_runs"] == "3"
    (new_version,) = [v for v in client.search_model_versions("name = 'electra-ner'") if v.version not in versions_before]
    assert new_version.run_id == new_run.info.run_id
    files = client.get_model_version_download_uri("electra-ner", new_version.version)
    assert Path(files.removeprefix("file://")).is_relative_to(project.root / "mlartifacts"), files
    assert not list((project.root / ".dvc/tmp").rglob("mlflow.db"))


def test_exp_run_queue_records_in_the_root_store(project: Project) -> None:
    """A queued experiment runs in a celery worker, in a copy under .dvc/tmp/exps/ that DVC deletes afterwards."""
    client = root_store(project)
    runs_before = {run.info.run_id for run in stage_runs(client, "export")}
    versions_before = {v.version for v in client.search_model_versions("name = 'electra-ner'")}
    # A queued run starts from the commit (the fixture's), as a user's would from theirs: only export (and the card
    # of what it exports) is due.
    project.run("dvc", "exp", "run", "--queue", "-S", "export.latency_runs=2")
    try:
        project.run("dvc", "queue", "start")
        status = wait_for_queue(project)
    finally:
        project.run("dvc", "queue", "stop", "--kill", check=False)
    assert re.search(r"\bSuccess\b", status) and "Failed" not in status, status
    ran = project.run("dvc", "queue", "logs", re.search(r"^(\w+)\s", status.splitlines()[1])[1]).stdout
    assert ran_stages(ran) == {"export", "card"}, ran
    (new_run,) = [run for run in stage_runs(client, "export") if run.info.run_id not in runs_before]
    assert new_run.info.status == "FINISHED" and new_run.data.params["export.latency_runs"] == "2"
    versions = client.search_model_versions("name = 'electra-ner'")
    (new_version,) = [v for v in versions if v.version not in versions_before]
    assert new_version.run_id == new_run.info.run_id
    files = client.get_model_version_download_uri("electra-ner", new_version.version)
    assert Path(files.removeprefix("file://")).is_relative_to(project.root / "mlartifacts"), files
    assert not list((project.root / ".dvc/tmp").rglob("mlflow.db"))


def wait_for_queue(project: Project, timeout: float = 900) -> str:
    """`dvc queue status` once no task is queued or running and the worker has left; the last status otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        status = project.run("dvc", "queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status) and "Worker status: 0 active" in status:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"the queue did not finish in {timeout:.0f} s:\n{status}")
        time.sleep(3)


def make_run(project: Project, prefect_home: Path) -> str:
    """`make run`'s command as a fresh process (its own ephemeral Prefect server); its output."""
    env = {**project.env, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    result = subprocess.run([sys.executable, "-m", "flows.pipeline"], cwd=project.root, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_a_lost_registry_is_reconciled_by_the_flow(project: Project, tmp_path: Path) -> None:
    """Fresh processes: this test process's MLflow keeps the deleted store's tables cached, as a real one would not."""
    (project.root / "mlflow.db").unlink()
    shutil.rmtree(project.root / "mlartifacts")
    first = make_run(project, tmp_path / "prefect")
    assert "Running stage" not in first, "a stage ran again; the registration should come from models/onnx"
    registered = re.search(r"Registered model: `models:/electra-ner/(\d+)`(.*)", first)
    assert registered, first
    assert registered[1] == "1" and "registered again from `models/onnx`" in registered[2]
    assert "holds alias `champion` (promoted:" in registered[2]
    card = (project.root / "models/hub/README.md").read_text(encoding="utf-8")
    assert root_store(project).get_model_version("electra-ner", "1").description == card_body(card)  # and its card
    second = make_run(project, tmp_path / "prefect")
    assert "Registered model: `models:/electra-ner/1`; holds alias `champion`" in second, second

    text = "Anna Schmidt flew from Berlin to Madrid ."
    result = project.run(str(Path(sys.executable).parent / "electra"), "predict", text, "--json")
    assert json.loads(result.stdout)[0]["entities"], result.stdout


def test_metrics_and_plots_of_any_experiment_come_back(project: Project) -> None:
    """Metrics and plots are ``cache: false`` (small, diffable), so DVC's cache cannot restore them; `dvc exp run`
    commits them into each experiment's git commit instead (every out a stage declares, the plots' PNGs
    included), and `dvc exp apply` brings them back. The experiments are the two the tests above ran (`--temp`
    and `--queue`), whose export metrics differ (their latencies), applied in turn."""
    refs = project.run("git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps/").stdout.split("\n")
    experiments = [line.split() for line in refs if re.fullmatch(r"refs/exps/[0-9a-f]{2}/[0-9a-f]{38}/\S+ \w+", line)]
    assert len(experiments) >= 2, refs
    declared = [path for stage in STAGES for kind in ("metrics", "plots")
                for path in stage_paths(stage, kind, project.root / "dvc.yaml")]
    assert len([path for path in declared if path.suffix == ".png"]) == 5
    recorded = {}
    for ref, commit in experiments:
        project.run("dvc", "exp", "apply", ref.rsplit("/", 1)[1])
        for path in declared:
            blob = project.run("git", "rev-parse", "-q", "--verify", f"{commit}:{path}", check=False).stdout.strip()
            assert blob, f"{path} is not recorded in experiment {ref}"
            assert project.run("git", "hash-object", str(path)).stdout.strip() == blob, f"{path} not back from {ref}"
        recorded[ref] = (project.root / "metrics/export.json").read_bytes()
    assert len(set(recorded.values())) == len(recorded), "the experiments' export metrics should differ"
