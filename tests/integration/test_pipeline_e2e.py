"""The whole pipeline, for real, on tiny demo params in a temporary copy of the project.

Real ``dvc`` commands, a real MLflow sqlite store, a real (temporary) Prefect server, the real ``electra`` CLI.
The first run is the session's shared ``demo_run`` (tests/integration/conftest.py); the tests in this module run in
order on one copy of it, each building on what the earlier ones left.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.dvc_map import stage_command
from tests.integration.project import STAGES, DemoRun, Project, clone_project, ran_stages

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory, demo_run: DemoRun) -> Project:
    return clone_project(demo_run.project, tmp_path_factory.mktemp("pipeline") / "project")


def test_first_repro_runs_every_stage(project, demo_run: DemoRun):
    assert ran_stages(demo_run.output) == set(STAGES)
    assert (project.root / "models/pretrained/model.safetensors").is_file()
    assert (project.root / "models/onnx/model.onnx").is_file()
    evaluate = project.metrics("evaluate")
    assert evaluate["entity"]["overall"]["f1"] > 0.05  # the all-O majority baseline scores 0


def test_second_repro_is_a_fast_no_op(project):
    started = time.perf_counter()
    result = project.run("dvc", "repro")
    elapsed = time.perf_counter() - started
    assert ran_stages(result.stdout) == set()
    assert elapsed < 15, f"no-op dvc repro took {elapsed:.1f}s"


def test_finetune_param_change_reruns_only_downstream(project):
    # One epoch instead of the shared run's three: this test is about what runs again, not about how well it learns.
    result = project.run("dvc", "exp", "run", "-S", "finetune.learning_rate=0.0004", "-S", "finetune.epochs=1")
    # the probe fine-tunes snapshots with the finetune recipe, so it depends on the finetune section too
    assert ran_stages(result.stdout) == {"probe", "finetune", "evaluate", "export", "card"}
    diff = project.run("dvc", "params", "diff", "--json")
    assert "finetune.learning_rate" in diff.stdout


def test_dvc_metrics_and_plots_work(project):
    shown = json.loads(project.run("dvc", "metrics", "show", "--json").stdout)
    assert "metrics/evaluate.json" in json.dumps(shown)
    plots = project.run("dvc", "plots", "show", "-o", "dvc_plots")
    assert (project.root / "dvc_plots" / "index.html").is_file(), plots.stdout


def mlflow_client(project: Project):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(project.env["MLFLOW_TRACKING_URI"])
    return MlflowClient(project.env["MLFLOW_TRACKING_URI"])


def test_plain_dvc_runs_are_logged_under_their_own_parent(project):
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("electra-pipeline")
    runs = client.search_runs([experiment.experiment_id], max_results=200)
    stage_runs = [r for r in runs if r.data.tags.get("dvc.stage") == "pretrain"]
    assert stage_runs, "the pretrain stage logged no run"
    run = stage_runs[0]
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags.get("pipeline.trigger") == "dvc"
    assert {"mlm_loss", "rtd_loss", "learning_rate"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "rtd_loss")) >= 4
    assert run.data.tags.get("git.commit") and run.data.tags.get("git.dirty") in {"true", "false"}
    assert run.inputs.dataset_inputs, "pretrain logged no dataset input"


def test_prefect_flow_runs_stages_under_one_parent_and_publishes_summary(project, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.testing.utilities import prefect_test_harness

    from flows.pipeline import SUMMARY_KEY, electra_pipeline

    params = project.params()
    params["evaluate"]["batch_size"] = 32  # makes evaluate and export (and so the card) stale: the flow re-runs them
    project.write_params(params)
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project.root)
    with prefect_test_harness(server_startup_timeout=180):
        result = electra_pipeline(project_dir=str(project.root))
        with get_client(sync_client=True) as prefect:
            artifacts = prefect.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[SUMMARY_KEY]))
            )
    assert artifacts and "entity F1 overall" in artifacts[0].data
    assert "models:/electra-ner/" in artifacts[0].data

    client = mlflow_client(project)
    parent_id = result["parent_run_id"]
    children = client.search_runs(
        [client.get_run(parent_id).info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert {run.data.tags["dvc.stage"] for run in children} == {"evaluate", "export", "card"}
    assert client.get_run(parent_id).info.status == "FINISHED"


def test_registered_model_has_champion_with_reason(project):
    client = mlflow_client(project)
    champion = client.get_model_version_by_alias("electra-ner", "champion")
    assert champion.tags["champion_decision"] == "promoted"
    assert "min_f1" in champion.tags["champion_reason"]
    versions = client.search_model_versions("name = 'electra-ner'")
    assert len(versions) >= 2 and all("champion_decision" in v.tags for v in versions)


def test_predict_pulls_the_champion_and_returns_offsets(project):
    text = "Anna Schmidt flew from Berlin to Madrid ."
    result = project.run(str(Path(sys.executable).parent / "electra"), "predict", text, "--json")
    payload = json.loads(result.stdout)
    entities = payload[0]["entities"]
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert entities, f"no entity found in {text!r}"


def test_bad_param_stops_before_work_and_keeps_outputs(project):
    model = project.root / "models/finetuned/model.safetensors"
    before = model.read_bytes()
    params = project.params()
    params["finetune"]["learning_rate"] = "fast"
    project.write_params(params)
    result = project.run(*stage_command("finetune"), check=False)
    assert result.returncode == 2
    assert "finetune.learning_rate = 'fast'" in result.stderr and "Traceback" not in result.stderr
    assert model.read_bytes() == before


def test_unreachable_tracking_server_fails_fast(project):
    params = project.params()
    params["finetune"]["learning_rate"] = 0.0004
    project.write_params(params)
    project.env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"
    started = time.perf_counter()
    result = project.run(*stage_command("evaluate"), check=False, timeout=60)
    # The check itself is bounded by tracking.connect_timeout_s (unit-tested); the rest is importing torch & co.
    assert result.returncode == 2 and time.perf_counter() - started < 90
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr
