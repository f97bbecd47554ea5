"""The classification task through the same pipeline, for real: ``dvc exp run -S task=classification`` on the demo
sentiment data, offline, in a copy of the session's NER ``demo_run`` (real DVC, a real MLflow sqlite store): the
same six stages, of which the task's own (download, finetune, evaluate, export) run again and the corpus, tokenizer
and pretrained model are reused, into the registry as ``electra-classifier@champion`` and out again through the
torch-free client. The tests in this module share one copy and run in order."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from tests.integration.card_checks import check_card, table_row
from tests.integration.project import STAGES, DemoRun, Project, clone_project, deep_update, ran_stages
from tests.integration.test_pipeline_e2e import mlflow_client

pytestmark = pytest.mark.e2e

TASK_STAGES = {"download", "probe", "finetune", "evaluate", "export", "card"}  # the stages that read `task`
TEST_TEXTS = 90
MIN_ACCURACY = 0.8  # chance is 1/3 on the three balanced labels
# Fine-tuning starts from random weights of the pretrained shape, with the pretrained tokenizer: 40 pretraining
# steps leave a collapsed encoder (every token's last hidden state nearly the same vector, cosine 0.999, as the
# discriminator first learns "all original"), from which 8 epochs stay at chance (measured 0.38 valid accuracy,
# loss ln 3); from random the same budget learns the demo sentiment (measured 0.94 valid, 0.89 test).
TINY = {
    "data": {"demo": {"corpus_documents": 120, "train_sentences": 450, "valid_sentences": 90,
                      "test_sentences": TEST_TEXTS}},
    "tokenizer": {"vocab_size": 1500},
    "pretrain": {"max_steps": 40, "batch_size": 16, "max_seq_len": 64, "warmup_steps": 4, "log_every": 10},
    "finetune": {"init": "random", "epochs": 8, "patience": 8, "max_seq_len": 64, "learning_rate": 1.0e-3},
    "export": {"min_f1": 0.6, "latency_runs": 4},
}
POSITIVE_TEXT = "Honestly, the film was wonderful and delightful."
NEGATIVE_TEXT = "The meal was terrible."


@pytest.fixture(scope="module")
def project(tmp_path_factory, demo_run: DemoRun) -> Project:
    """The shared NER run (task: ner) with this module's tiny params; the task is switched by the experiment, as a
    user would. The corpus depends on ``data.demo.corpus_documents`` alone, which both share."""
    project = clone_project(demo_run.project, tmp_path_factory.mktemp("classification") / "project")
    params = project.params()
    deep_update(params, TINY)
    project.write_params(params)
    return project


def test_exp_run_with_task_classification_runs_the_same_stages(project):
    result = project.run("dvc", "exp", "run", "-S", "task=classification")
    assert ran_stages(result.stdout) == TASK_STAGES
    for stage in set(STAGES) - TASK_STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in result.stdout, result.stdout
    download = project.metrics("download")
    assert download["classification"]["test"]["examples"] == TEST_TEXTS and "ner" not in download
    assert sorted(path.name for path in (project.root / "data/task").iterdir()) == [
        "test.jsonl", "train.jsonl", "valid.jsonl"
    ]
    finetune = project.metrics("finetune")
    assert finetune["best_valid_accuracy"] >= MIN_ACCURACY and finetune["best_epoch"] >= 1
    with open(project.root / "plots/finetune_valid.csv", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == ["step", "epoch", "valid_accuracy", "valid_macro_f1"]


def test_evaluate_scores_the_classifier_and_lists_its_mistakes(project):
    metrics = project.metrics("evaluate")
    assert metrics["labels"] == ["negative", "neutral", "positive"] and metrics["examples"] == TEST_TEXTS
    assert metrics["accuracy"] >= MIN_ACCURACY and metrics["macro_f1"] >= MIN_ACCURACY - 0.1
    with open(project.root / "plots/evaluate_confusion.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert metrics["accuracy"] == pytest.approx(sum(r["actual"] == r["predicted"] for r in rows) / TEST_TEXTS)
    assert metrics["mistakes"] == sum(r["actual"] != r["predicted"] for r in rows)
    assert set(metrics["per_class"]) == set(metrics["labels"])
    mistakes = (project.root / "reports/evaluate/mistakes.txt").read_text(encoding="utf-8")
    assert mistakes.startswith(f"{min(20, metrics['mistakes'])} most confident mistakes of {TEST_TEXTS} examples")


def test_the_confusion_matrix_is_a_dvc_plot(project):
    with open(project.root / "plots/evaluate_confusion.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == TEST_TEXTS and {row["actual"] for row in rows} <= {"negative", "neutral", "positive"}
    shown = project.run("dvc", "plots", "show", "--json", "plots/evaluate_confusion.csv")
    assert '"xy_count"' in shown.stdout, shown.stdout[:2000]  # the confusion template counts actual x predicted
    html = project.run("dvc", "plots", "show", "-o", "dvc_plots")
    assert (project.root / "dvc_plots" / "index.html").is_file(), html.stdout


def test_the_runs_are_in_mlflow_with_the_task_params(project):
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("electra-pipeline")
    runs = client.search_runs([experiment.experiment_id], max_results=100)  # the newest first
    by_stage = {}  # each stage's newest run (their parents are dvc-repro-<stage>)
    for run in runs:
        by_stage.setdefault(run.info.run_name, run)
    assert set(STAGES) <= set(by_stage)
    assert by_stage["finetune"].data.params["task"] == "classification"
    assert {"valid_accuracy", "valid_macro_f1", "train_loss"} <= set(by_stage["finetune"].data.metrics)
    evaluate = by_stage["evaluate"].data.metrics
    assert evaluate["accuracy"] == pytest.approx(project.metrics("evaluate")["accuracy"])
    artifacts = {item.path for item in client.list_artifacts(by_stage["evaluate"].info.run_id, "reports")}
    assert "reports/mistakes.txt" in artifacts


def test_the_classifier_is_registered_as_champion_with_the_gate_tags(project):
    client = mlflow_client(project)
    champion = client.get_model_version_by_alias("electra-classifier", "champion")
    assert champion.tags["task"] == "classification" and champion.tags["champion_decision"] == "promoted"
    assert "accuracy" in champion.tags["champion_reason"] and "min_f1 0.60" in champion.tags["champion_reason"]
    assert float(champion.tags["accuracy"]) >= MIN_ACCURACY and champion.tags["accuracy_split"] == "valid"
    assert {"parity_max_abs_diff", "serve_variant", "serve_reason"} <= set(champion.tags)
    # the task names the registered model: electra-ner holds only the shared NER run's version
    assert [int(v.version) for v in client.search_model_versions("name = 'electra-ner'")] == [1]
    export = project.metrics("export")
    assert export["registered_version"] == int(champion.version) and export["alias_moved"] is True


def test_the_classifiers_card_is_what_the_run_recorded(project):
    card = check_card(project, mlflow_client(project), "electra-classifier")
    evaluation = project.metrics("evaluate")
    for label, scores in evaluation["per_class"].items():
        assert table_row(card, label) == [label, str(scores["support"]), f"{scores['precision']:.4f}",
                                          f"{scores['recall']:.4f}", f"{scores['f1']:.4f}"]
    assert f"accuracy {evaluation['accuracy']:.4f}, macro F1 {evaluation['macro_f1']:.4f}." in card
    assert ModelCard(card).data.pipeline_tag == "text-classification"


TORCH_FREE_CLIENT = """
import json, sys
sys.modules["torch"] = None  # any import of torch now fails: the client must not need it
from electra_model.client.loader import load_predictor
predictor = load_predictor("models:/electra-classifier@champion")
print(json.dumps(predictor.predict(sys.argv[1:])))
"""


def test_the_torch_free_client_labels_obvious_reviews(project):
    result = project.run(sys.executable, "-c", TORCH_FREE_CLIENT, POSITIVE_TEXT, NEGATIVE_TEXT)
    positive, negative = json.loads(result.stdout)
    for answer in (positive, negative):
        assert set(answer) == {"label", "score", "scores"} and set(answer["scores"]) == {"negative", "neutral", "positive"}
        assert answer["score"] == pytest.approx(max(answer["scores"].values()))
        assert sum(answer["scores"].values()) == pytest.approx(1.0)
    assert (positive["label"], negative["label"]) == ("positive", "negative"), (positive, negative)


def test_electra_predict_picks_the_classifier_behaviour_from_the_model(project):
    electra = str(Path(sys.executable).parent / "electra")
    result = project.run(electra, "predict", "--json", "--model", "models:/electra-classifier@champion", NEGATIVE_TEXT)
    (answer,) = json.loads(result.stdout)
    assert answer["text"] == NEGATIVE_TEXT and answer["label"] == "negative" and "entities" not in answer


def test_switching_back_to_ner_reruns_only_what_the_task_touches(project):
    # One epoch, not this module's eight: the test is about what runs again, not about how well NER learns.
    result = project.run("dvc", "exp", "run", "evaluate", "-S", "task=ner", "-S", "finetune.epochs=1")
    ran = {stage for stage in STAGES if f"Running stage '{stage}'" in result.stdout}  # export is not asked for
    assert ran == {"download", "finetune", "evaluate"}  # the corpus, tokenizer and pretrained model are shared
    assert project.metrics("evaluate")["entity"]["overall"]["f1"] >= 0.0
    assert json.loads((project.root / "metrics/finetune.json").read_text())["best_valid_f1"] >= 0.0
