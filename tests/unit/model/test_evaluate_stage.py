"""The evaluate stage for real on the pattern model: every report it promises, as files, DVC outputs and MLflow
artifacts, with numbers that agree with each other and with `electra score`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from electra_model.cli import main as electra
from electra_model.tasks.ner.conll import Sentence, write_conll
from electra_model.data.tokenizer import load_backend_tokenizer
from electra_model.tasks.ner.crf import model_chain
from electra_model.tasks.ner.finetune import predict_word_log_probs
from electra_model.tasks.ner.heads import load_finetuned
from electra_model.tasks.ner.metrics import entity_scores
from electra_model.client.tag_decoding import CONSTRAINED, decode_tags
from tests.dvc_map import stage_argv
from tests.fixtures_models import LABELS, expected_tags

REPO = Path(__file__).resolve().parents[3]
TEXTS = ["John Smith visited Paris yesterday .", "Müller lives in Zürich , not in New York !", "The café in Paris ."]


def project(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copytree(model_dir, tmp_path / "models" / "finetuned")


@pytest.fixture
def evaluated(tmp_path: Path, pattern_model_dir: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory after ``python stages/evaluate.py``; gold differs from the model in two entities."""
    project(tmp_path, pattern_model_dir, monkeypatch)
    sentences = [Sentence(tuple(text.split()), tuple(expected_tags(text.split()))) for text in TEXTS]
    sentences[2] = Sentence(sentences[2].tokens, ("O", "B-ORG", "O", "B-LOC", "O"))  # missed ORG "café"
    sentences[1] = Sentence(sentences[1].tokens, ("B-PER", "O", "O", "B-LOC", "O", "O", "O", "B-LOC", "O", "O"))
    write_conll(tmp_path / "data" / "task" / "test.txt", sentences)  # "New York" cut short in gold: a boundary error
    from stages.evaluate import main

    main(stage_argv("evaluate"))
    return tmp_path


def test_evaluate_writes_every_report(evaluated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = json.loads((evaluated / "metrics/evaluate.json").read_text())
    entity = metrics["entity"]
    assert {"overall", "macro", "PER", "LOC"} <= set(entity) and "ORG" in entity
    assert entity["overall"]["precision"] == pytest.approx(5 / 6)
    assert entity["overall"]["recall"] == pytest.approx(5 / 7)
    assert metrics["errors"] == {"correct": 5, "type": 0, "boundary": 1, "boundary_type": 0, "spurious": 0, "missed": 1}
    reports = evaluated / "reports/evaluate"
    assert sorted(path.name for path in reports.iterdir()) == sorted([
        "conlleval.txt", "predictions.txt", "token_report.txt", "token_report_without_o.txt",
        "confusion_matrix.json", "errors.json", "errors.txt", "raw_text.txt",
    ])
    assert metrics["entity_f1"] == entity["overall"]["f1"] and metrics["head"] == "softmax"
    assert metrics["entity_f1_argmax"] == metrics["entity_f1"]  # the pattern model makes no invalid sequences here
    assert metrics["raw_text_entity_f1"] == metrics["entity_f1"]  # typed as text, the sentences split back the same
    assert metrics["raw_text_entity"]["overall"]["f1"] == metrics["raw_text_entity_f1"]  # per type too (the card's)
    assert set(metrics["raw_text_entity"]) == set(metrics["entity"])
    assert metrics["raw_text_sentences_split_differently"] == 0
    assert (reports / "raw_text.txt").read_text().startswith("0 of 3 sentences split differently")
    assert " O " in (reports / "token_report.txt").read_text()
    assert " O " not in (reports / "token_report_without_o.txt").read_text()
    assert "precision:  83.33%; recall:  71.43%; FB1:  76.92" in (reports / "conlleval.txt").read_text()
    assert electra(["score", str(reports / "predictions.txt")]) == 0
    assert capsys.readouterr().out == (reports / "conlleval.txt").read_text()
    confusion = json.loads((reports / "confusion_matrix.json").read_text())
    assert confusion["labels"][-1] == "O" and sum(map(sum, confusion["matrix"])) == sum(len(t.split()) for t in TEXTS)
    assert (evaluated / "plots/evaluate_confusion.png").read_bytes()[:4] == b"\x89PNG"
    rows = (evaluated / "plots/evaluate_confusion.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted" and "ORG,O" in rows


def test_evaluate_logs_metrics_and_artifacts_to_mlflow(evaluated: Path, mlflow_store: str) -> None:
    client = MlflowClient(mlflow_store)
    [experiment] = [e for e in client.search_experiments() if e.name == "electra-pipeline"]
    [run] = [r for r in client.search_runs([experiment.experiment_id]) if r.info.run_name == "evaluate"]
    assert run.data.metrics["entity.overall.f1"] == pytest.approx(2 * (5 / 6) * (5 / 7) / (5 / 6 + 5 / 7))
    assert {"entity.macro.f1", "entity.PER.recall", "errors.missed", "token_accuracy"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/conlleval.txt", "reports/errors.json", "reports/predictions.txt"} <= artifacts
    assert [a.path for a in client.list_artifacts(run.info.run_id, "plots")] == ["plots/evaluate_confusion.png"]


def test_a_crf_model_is_scored_by_its_own_decoding_on_every_path(
    tmp_path: Path, crf_pattern_model_dir: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The headline and the raw-text path decode with the learned chain; argmax reads the words alone. Gold is the
    pattern, which the emissions alone would tag perfectly, so only the chain can cost F1 here."""
    project(tmp_path, crf_pattern_model_dir, monkeypatch)
    sentences = [Sentence(tuple(text.split()), tuple(expected_tags(text.split()))) for text in TEXTS]
    write_conll(tmp_path / "data" / "task" / "test.txt", sentences)
    from stages.evaluate import main

    main(stage_argv("evaluate"))
    metrics = json.loads((tmp_path / "metrics/evaluate.json").read_text())
    model = load_finetuned(crf_pattern_model_dir)
    scores = predict_word_log_probs(model, load_backend_tokenizer(crf_pattern_model_dir), sentences, 16, 4)
    own = decode_tags(scores, LABELS, CONSTRAINED, model_chain(model))
    assert metrics["head"] == "crf"
    assert metrics["entity_f1"] == entity_scores([s.tags for s in sentences], own)["overall"]["f1"] < 1.0
    assert metrics["entity_f1_argmax"] == 1.0 and metrics["raw_text_entity_f1"] == metrics["entity_f1"]
    predictions = (tmp_path / "reports/evaluate/predictions.txt").read_text().splitlines()
    assert predictions[0].split()[0] == "John" and predictions[0].split()[2] != "B-PER"


def test_dvc_yaml_declares_the_evaluate_outputs_and_the_params_it_reads() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    evaluate = stages["evaluate"]
    assert [next(iter(m)) for m in evaluate["metrics"]] == ["metrics/evaluate.json"]
    plots = {next(iter(p)): p[next(iter(p))] for p in evaluate["plots"]}
    assert plots["plots/evaluate_confusion.csv"]["template"] == "confusion"
    assert "plots/evaluate_confusion.png" in plots
    assert set(evaluate["params"]) == {
        "task", "plugins", "evaluate", "finetune.max_seq_len", "finetune.document_context", "classification.text_pair_column",
        "classification.top_mistakes",
    }
    assert stages["finetune"]["params"] == [
        "task", "plugins", "seed", "finetune", "classification.text_pair_column", "classification.labels",
        "classification.selection_metric",
    ]
