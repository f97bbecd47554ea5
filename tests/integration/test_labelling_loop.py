"""One labelling round (flows/labelling.py) against a real Label Studio server, on a copy of the shared demo run:
a batch pushed by `electra select --push`, annotated through the REST API as an annotator would, then the real
Prefect flow pulls it (DVC-tracked), trains on it as a DVC experiment, lets the gate decide, records one MLflow run
in the labelling experiment and pushes the champion's next batch; run again with nothing new, it trains nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from electra_model.annotate.rounds import file_md5
from electra_model.client.text_words import detokenize
from electra_model.tasks.ner.conll import read_conll
from tests.integration.project import DemoRun, Project, clone_project
from tests.integration.studio_server import gold_result, label_studio  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

FIRST_BATCH, NEXT_BATCH = 60, 5


def labelling_project(demo_run: DemoRun, root: Path, url: str, token: str) -> tuple[Project, dict[str, tuple]]:
    """The demo run, set up as a user labelling their own data: the task's train file is what `pull` writes, valid
    and test are held-out files, the pool holds the demo's training sentences as raw text."""
    project = clone_project(demo_run.project, root)
    inputs = project.root / "inputs"
    inputs.mkdir()
    for split in ("valid", "test"):
        shutil.copyfile(project.root / f"data/task/{split}.txt", inputs / f"{split}.txt")
    shutil.copyfile(project.root / "data/corpus/shard-00000.txt", inputs / "corpus.txt")
    gold = {detokenize(s.tokens)[0]: (s.tokens, s.tags) for s in read_conll(project.root / "data/task/train.txt")}
    (project.root / "pool.txt").write_text("".join(text + "\n" for text in gold), encoding="utf-8")
    settings = project.params()
    settings["data"]["source"] = "local"
    settings["data"]["local"] = {"corpus": ["inputs/corpus.txt"]}
    settings["ner"]["local"] = {"train": "labelled/annotations.txt", "valid": "inputs/valid.txt",
                                "test": "inputs/test.txt"}
    settings["annotate"]["url"] = url
    settings["labelling"].update(pool="pool.txt", k=NEXT_BATCH)
    project.write_params(settings)
    project.env["LABEL_STUDIO_API_KEY"] = token
    return project, gold


def experiments(project: Project) -> list[str]:
    """The refs of the project's DVC experiments (not DVC's own bookkeeping under refs/exps/exec)."""
    refs = project.run("git", "for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()
    return [ref for ref in refs if not ref.startswith("refs/exps/exec/")]


def experiment_files(project: Project, name: str, *paths: str) -> list[str]:
    """The files as the DVC experiment ``name`` committed them."""
    (ref,) = [ref for ref in experiments(project) if ref.endswith(f"/{name}")]
    return [project.run("git", "show", f"{ref}:{path}").stdout for path in paths]


def test_one_round_pulls_trains_gates_records_and_pushes_the_next_batch(
    label_studio, demo_run: DemoRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from mlflow.tracking import MlflowClient
    from prefect.testing.utilities import prefect_test_harness

    from flows.labelling import electra_labelling_round

    project, gold = labelling_project(demo_run, tmp_path / "project", label_studio.url, label_studio.token)
    pushed = project.run("electra", "select", "--pool", "pool.txt", "--k", str(FIRST_BATCH), "--out", "batch.jsonl",
                         "--push")
    assert f"pushed {FIRST_BATCH} tasks to Label Studio project 'electra-ner'" in pushed.stdout, pushed.stdout
    project_id = label_studio.require_project("electra-ner")
    first = label_studio.export(project_id)
    for task in first:
        label_studio.annotate(task["id"], gold_result(task, *gold[task["data"]["text"]]))

    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project.root)
    with prefect_test_harness(server_startup_timeout=180):
        record = electra_labelling_round(project_dir=str(project.root))
        again = electra_labelling_round(project_dir=str(project.root))

    assert record["trained"] and record["labelled_size"] == FIRST_BATCH, record
    data_file = project.root / "labelled/annotations.txt"
    assert len(read_conll(data_file)) == FIRST_BATCH
    tracked = (project.root / "labelled.dvc").read_text(encoding="utf-8")
    assert yaml.safe_load(tracked)["outs"][0]["path"] == "labelled"
    assert project.run("dvc", "status", "labelled.dvc").stdout.strip() == "Data and pipelines are up to date."
    committed_dvc, committed_params, finetune, export = experiment_files(
        project, record["round"], "labelled.dvc", "params.yaml", "metrics/finetune.json", "metrics/export.json")
    assert committed_dvc == tracked  # the experiment names the labels it trained on
    assert yaml.safe_load(committed_params)["ner"]["local"]["train"] == "labelled/annotations.txt"
    lock = yaml.safe_load((project.root / "dvc.lock").read_text(encoding="utf-8"))
    assert lock["stages"]["finetune"]["outs"] and json.loads(finetune)["best_valid_f1"] >= 0
    export = json.loads(export)

    client = MlflowClient(project.env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("labelling")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == record["round"]
    assert run.data.metrics["labelled_size"] == FIRST_BATCH
    assert run.data.params["data_md5"] == file_md5(data_file)
    assert run.data.metrics["valid_f1"] == pytest.approx(export["f1"])
    assert run.data.metrics["model_version"] == export["registered_version"]
    assert run.data.params["gate_decision"] == ("promoted" if export["alias_moved"] else "rejected")
    assert run.data.metrics["gate_passed"] == int(export["alias_moved"])
    champion = client.get_model_version_by_alias("electra-ner", "champion")
    assert (champion.version == str(export["registered_version"])) == export["alias_moved"]
    assert run.data.metrics["pushed"] == NEXT_BATCH

    tasks = label_studio.export(project_id)
    new = [task for task in tasks if task["id"] not in {task["id"] for task in first}]
    assert len(new) == NEXT_BATCH and {task["data"]["text"] for task in new} <= set(gold)
    assert not {task["data"]["text"] for task in new} & {task["data"]["text"] for task in first}
    prediction = label_studio.call("GET", "/api/predictions", query={"task": new[0]["id"]})[0]
    assert prediction["model_version"].startswith("models:/electra-ner@champion (")

    assert not again["trained"] and again["reason"].startswith("no new finished annotations"), again
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert len(experiments(project)) == 1  # no empty experiment
