"""The task interface the stages dispatch through: ``task`` in params picks a Task and its Evaluator; a pair
classification task goes from user TSV files through the normalized task folder, fine-tuning and evaluation (with
every report and the confusion plot rows) on a tiny model; NER's data takes the same road in its own format."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from transformers import ElectraForSequenceClassification
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
)

from electra_model.config import Params, parse_params
from electra_model.tasks.ner.conll import read_conll
from electra_model.data.demo_classification import LABELS, demo_sentiment, demo_sentiment_pairs
from electra_model.data.tokenizer import as_transformers_tokenizer
from electra_model.errors import ElectraError
from tests.fixtures_classifier import CLASSIFIER_MAX_LEN, FILLER, NEGATIVE, POSITIVE, save_tiny_discriminator
from electra_model.client.loader import CLIENTS
from electra_model.pretraining.backbones import BACKBONES
from electra_model.tasks import registry
from electra_model.tasks.catalog import TASKS, task_for
from electra_model.tasks.ner.heads import HEADS
from electra_model.tasks.evaluators import EVALUATORS, evaluator_for
from electra_model.tasks.trainers import TRAINERS, trainer_for

REPO = Path(__file__).resolve().parents[3]
MAX_LEN = CLASSIFIER_MAX_LEN


def raw_params(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw.update(changes)
    return raw


def write_pair_tsv(path: Path, count: int, seed: int) -> None:
    """Premise/hypothesis rows whose label only the hypothesis decides: a model fed the premise alone is at
    chance."""
    rng = random.Random(seed)
    rows = ["premise\thypothesis\tverdict"]
    for _ in range(count):
        label = rng.choice(["neg", "pos"])
        cue = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        words = rng.choices(FILLER, k=rng.randint(2, 6))
        words.insert(rng.randint(0, len(words)), cue)
        rows.append(f"{' '.join(rng.choices(FILLER, k=rng.randint(2, 6)))}\t{' '.join(words)}\t{label}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A discriminator checkpoint laid out as the pretrain stage writes one (weights, config, tokenizer)."""
    return save_tiny_discriminator(tmp_path_factory.mktemp("pretrained"))


@pytest.fixture
def pair_params(tmp_path: Path) -> Params:
    """task: classification on local pair files with their own column names, a tiny fine-tuning budget."""
    for split, (count, seed) in {"train": (240, 1), "valid": (60, 2), "test": (60, 3)}.items():
        write_pair_tsv(tmp_path / f"{split}.tsv", count, seed)
    (tmp_path / "corpus.txt").write_text("some text\n", encoding="utf-8")
    raw = raw_params(task="classification")
    raw["data"].update(source="local", local={"corpus": [str(tmp_path / "corpus.txt")]})
    raw["classification"].update(
        text_column="premise", text_pair_column="hypothesis", label_column="verdict", top_mistakes=3,
        local={split: str(tmp_path / f"{split}.tsv") for split in ("train", "valid", "test")},
    )
    raw["finetune"].update(init="random", max_seq_len=MAX_LEN, batch_size=8, epochs=6, patience=6,
                           learning_rate=5e-3, layer_lr_decay=1.0, device="cpu")
    return parse_params(raw)


def test_every_built_in_task_has_its_data_a_trainer_and_an_evaluator() -> None:
    assert set(TASKS) == set(TRAINERS) == set(EVALUATORS) == {"ner", "classification"}
    assert all(TASKS[name].name == name for name in TASKS)


def test_every_built_in_task_has_a_spec_whose_client_the_loader_serves() -> None:
    assert set(TASKS) <= set(registry.TASKS) and all(registry.TASKS[name].name == name for name in TASKS)
    assert all(CLIENTS[spec.client.kind] is spec.client for spec in registry.TASKS.values())


def test_the_specs_know_the_architectures_their_tasks_save() -> None:
    """The export stage tells a model's task by its config.json architectures; the specs list them by name (torch-
    free), so they are checked here against the heads the trainers save with."""
    pre_ln = BACKBONES["roberta_prelayernorm"].config_class.model_type  # what AutoModelFor* builds on that body:
    assert set(registry.spec_for("ner").architectures) == {head.__name__ for head in HEADS.values()} | {
        MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES[pre_ln]
    }
    assert registry.spec_for("classification").architectures == (
        ElectraForSequenceClassification.__name__, MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES[pre_ln]
    )


def test_an_unknown_task_names_the_key_and_the_registered_tasks() -> None:
    """Plug-ins register at stage start, so the name is checked there (the stages' first call) and lists them."""
    with pytest.raises(ElectraError, match=r"task 'qa' is not a registered task \(registered: classification, ner\)"):
        task_for(parse_params(raw_params(task="qa")))
    with pytest.raises(ElectraError, match=r"task = 'Q A': String should match pattern"):
        parse_params(raw_params(task="Q A"))


def test_a_local_classification_source_names_its_missing_files() -> None:
    raw = raw_params(task="classification")
    raw["data"].update(source="local", local={"corpus": ["c.txt"]})
    with pytest.raises(ElectraError, match=r"classification.local.train, classification.local.valid"):
        parse_params(raw)
    raw["task"] = "ner"
    with pytest.raises(ElectraError, match=r"ner.local.train"):
        parse_params(raw)


def test_pair_classification_through_the_interface(pair_params: Params, pretrained_dir: Path, tmp_path: Path) -> None:
    task, evaluator = task_for(pair_params), evaluator_for(pair_params)
    data_dir = tmp_path / "task"
    data_dir.mkdir()
    summary = task.load_data(pair_params, tmp_path / "cache").write(data_dir)
    assert summary["train"]["examples"] == 240 and set(summary["train"]["labels"]) == {"neg", "pos"}
    first = json.loads(task.split_path(data_dir, "train").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"text", "pair", "label"}

    logged: list[dict[str, float]] = []
    trainer = trainer_for(pair_params)
    finetuned = trainer.finetune(pair_params, pretrained_dir, data_dir, lambda step, m: logged.append(m))
    epochs = [entry for entry in logged if "epoch" in entry]
    assert all(set(task.valid_curve) <= set(entry) for entry in epochs)
    assert finetuned.summary["best_valid_accuracy"] == max(entry["valid_accuracy"] for entry in epochs) >= 0.9

    model_dir, reports, confusion = tmp_path / "model", tmp_path / "reports", tmp_path / "plots" / "confusion.csv"
    finetuned.model.save_pretrained(model_dir)
    as_transformers_tokenizer(finetuned.tokenizer, MAX_LEN).save_pretrained(model_dir)
    reports.mkdir()
    metrics = evaluator.evaluate(pair_params, model_dir, task.split_path(data_dir, "test"), "test", reports, confusion)
    assert metrics["split"] == "test" and metrics["examples"] == 60 and metrics["labels"] == ["neg", "pos"]
    assert metrics["accuracy"] >= 0.85 and set(metrics["per_class"]) == {"neg", "pos"}
    with open(confusion, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60 and set(rows[0]) == {"actual", "predicted"}
    assert sum(row["actual"] == row["predicted"] for row in rows) / 60 == pytest.approx(metrics["accuracy"])
    assert confusion.with_suffix(".png").is_file()
    assert sorted(path.name for path in reports.iterdir()) == [
        "confusion_matrix.json", "mistakes.json", "mistakes.txt", "predictions.jsonl"
    ]
    mistakes = json.loads((reports / "mistakes.json").read_text(encoding="utf-8"))
    assert len(mistakes) == min(3, metrics["mistakes"])
    assert all("pair" in mistake and mistake["where"].startswith(str(data_dir / "test.jsonl")) for mistake in mistakes)
    matrix = json.loads((reports / "confusion_matrix.json").read_text(encoding="utf-8"))["matrix"]
    assert sum(map(sum, matrix)) == 60


def test_evaluating_a_model_of_the_other_task_is_an_error(pair_params: Params, tmp_path: Path) -> None:
    model_dir = tmp_path / "ner-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "electra", "architectures": ["ElectraCRFForTokenClassification"]}))
    (tmp_path / "test.jsonl").write_text('{"text": "a", "pair": "b", "label": "neg"}\n', encoding="utf-8")
    with pytest.raises(ElectraError, match="not a sequence classifier"):
        evaluator_for(pair_params).evaluate(pair_params, model_dir, tmp_path / "test.jsonl", "test", tmp_path, tmp_path / "c.csv")


def test_ner_data_takes_the_same_road_in_conll(tmp_path: Path) -> None:
    raw = raw_params()
    raw["data"]["demo"].update(train_sentences=30, valid_sentences=10, test_sentences=10)
    params = parse_params(raw)
    task = task_for(params)
    summary = task.load_data(params, tmp_path / "cache").write(tmp_path)
    assert task.name == "ner" and task.valid_curve == ("valid_f1",)
    assert summary["test"]["sentences"] == 10 == len(read_conll(task.split_path(tmp_path, "test"), scheme="iob2"))


def test_demo_classification_data_is_seeded_and_covers_every_label() -> None:
    texts = demo_sentiment(300, seed=5)
    assert texts == demo_sentiment(300, seed=5) and texts != demo_sentiment(300, seed=6)
    assert {label for _, label in texts} == set(LABELS)
    assert any(" not " in text and label == "negative" for text, label in texts)  # negated praise is negative
    pairs = demo_sentiment_pairs(100, seed=5)
    assert {label for *_, label in pairs} == {"agree", "disagree"}


def test_demo_source_gives_pairs_when_the_task_is_a_pair_task(tmp_path: Path) -> None:
    raw = raw_params(task="classification")
    raw["data"]["demo"].update(train_sentences=40, valid_sentences=10, test_sentences=10)
    raw["classification"]["text_pair_column"] = "second"
    params = parse_params(raw)
    summary = task_for(params).load_data(params, tmp_path).write(tmp_path)
    assert summary["valid"] == {"origin": "demo valid split", "examples": 10, "labels": summary["valid"]["labels"]}
    record = json.loads((tmp_path / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(record) == {"text", "pair", "label"} and record["label"] in ("agree", "disagree")
