"""The Label Studio round trip against a real server (one per module, started as `make label-studio` starts it):
push with the champion's pre-annotations, annotate through the REST API as an annotator would, pull, train on it;
gold labels pushed and pulled back come back byte-identical; a bad token is refused by name."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from electra_model.annotate.choices import ChoiceConverter
from electra_model.annotate.pull import pull
from electra_model.annotate.push import push_gold
from electra_model.annotate.spans import SpanConverter, span_item
from electra_model.annotate.studio import LabelStudio
from electra_model.client.text_words import detokenize
from electra_model.errors import ElectraError
from electra_model.tasks.classification.data import ClassificationSplits, demo_splits
from electra_model.tasks.ner.conll import read_conll, write_conll
from tests.integration.project import REPO, DemoRun, clone_project, ran_stages
from tests.integration.studio_server import gold_result, label_studio  # noqa: F401 (a fixture)
from tests.params import params

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

CONLL = REPO.parent / "shared" / "data" / "conll2003" / "valid.txt.gz"
PUSHED = 150  # demo training sentences pushed and annotated: enough for every entity type of valid and test


def test_a_bad_token_is_refused_with_what_to_do(label_studio: LabelStudio) -> None:
    with pytest.raises(ElectraError, match=rf"Label Studio at {label_studio.url} refused the API token \(HTTP 401\)"):
        LabelStudio(label_studio.url, "not-the-token", 10).find_project("electra-ner")


@pytest.mark.skipif(not CONLL.is_file(), reason=f"{CONLL} not present")
def test_conll_gold_pushed_and_pulled_back_is_byte_identical(label_studio: LabelStudio, tmp_path: Path) -> None:
    lines = gzip.open(CONLL, "rt", encoding="utf-8").read().splitlines()[:1500]
    (tmp_path / "slice.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gold = tmp_path / "gold.txt"
    write_conll(gold, read_conll(tmp_path / "slice.txt"))
    converter = SpanConverter()
    added = push_gold(label_studio, "conll-gold", gold, params(), converter)
    pulled = pull(label_studio, "conll-gold", tmp_path / "out", params(), converter)
    assert added == len(pulled.records) > 50 and not pulled.skipped
    assert (tmp_path / "out" / "annotations.txt").read_bytes() == gold.read_bytes()


def test_classification_demo_gold_round_trip_is_byte_identical(label_studio: LabelStudio, tmp_path: Path) -> None:
    demo = params({"task": "classification", "classification.text_column": "text"})
    splits = demo_splits(demo.classification, demo.data, demo.seed)
    ClassificationSplits(splits, {split: "demo" for split in splits}).write(tmp_path)
    converter = ChoiceConverter()
    push_gold(label_studio, "sentiment-gold", tmp_path / "valid.jsonl", demo, converter)
    pull(label_studio, "sentiment-gold", tmp_path / "out", demo, converter)
    assert (tmp_path / "out" / "annotations.jsonl").read_bytes() == (tmp_path / "valid.jsonl").read_bytes()


def test_push_annotate_pull_then_finetune_on_the_pulled_data(
    label_studio: LabelStudio, demo_run: DemoRun, tmp_path: Path
) -> None:
    project = clone_project(demo_run.project, tmp_path / "project")
    gold = read_conll(project.root / "data/task/train.txt")[:PUSHED]
    (project.root / "texts.txt").write_text("".join(detokenize(s.tokens)[0] + "\n" for s in gold), encoding="utf-8")
    settings = project.params()
    settings["annotate"]["url"] = label_studio.url
    project.write_params(settings)
    project.env["LABEL_STUDIO_API_KEY"] = label_studio.token

    pushed = project.run("electra", "annotate", "push", "--texts", "texts.txt")
    assert f"pushed {PUSHED} tasks to Label Studio project 'electra-ner'" in pushed.stdout
    project_id = label_studio.require_project("electra-ner")
    tasks = label_studio.export(project_id)
    predictions = [label_studio.call("GET", "/api/predictions", query={"task": task["id"]})[0] for task in tasks[:10]]
    assert all(p["model_version"].startswith("models:/electra-ner@champion (") for p in predictions)
    entities = [(item, task["data"]["text"]) for p, task in zip(predictions, tasks) for item in p["result"]]
    assert entities and all(0 < item["score"] <= 1 and text[item["value"]["start"]:item["value"]["end"]] ==
                            item["value"]["text"] for item, text in entities)

    cancelled, cutting, pending = tasks[0]["id"], tasks[1]["id"], tasks[2]["id"]
    label_studio.annotate(cancelled, [], cancelled=True)
    start, end = next((a, b) for a, b in tasks[1]["data"]["words"] if b - a > 1)
    label_studio.annotate(cutting, [span_item("PER", tasks[1]["data"]["text"][start:end - 1], start, end - 1)])
    for task, sentence in zip(tasks[3:], gold[3:]):
        label_studio.annotate(task["id"], gold_result(task, sentence.tokens, sentence.tags))

    pulled = project.run("electra", "annotate", "pull")
    for task_id in (cancelled, cutting, pending):
        assert f"skipped task {task_id}: " in pulled.stderr, pulled.stderr
    assert (project.root / "labelled.dvc").is_file()
    annotated = read_conll(project.root / "labelled/annotations.txt")
    same_words = [s for task, s in zip(tasks[3:], gold[3:]) if tuple(
        task["data"]["text"][a:b] for a, b in task["data"]["words"]) == s.tokens]
    assert len(same_words) > 0.9 * (PUSHED - 3)
    assert all(sentence in annotated for sentence in same_words)

    inputs = project.root / "inputs"
    inputs.mkdir()
    for split in ("valid", "test"):
        shutil.copyfile(project.root / f"data/task/{split}.txt", inputs / f"{split}.txt")
    shutil.copyfile(project.root / "data/corpus/shard-00000.txt", inputs / "corpus.txt")
    settings["data"]["source"] = "local"
    settings["data"]["local"] = {"corpus": ["inputs/corpus.txt"]}
    settings["ner"]["local"] = {"train": "labelled/annotations.txt", "valid": "inputs/valid.txt",
                                "test": "inputs/test.txt"}
    project.write_params(settings)
    trained = project.run("dvc", "repro", "finetune")
    assert "finetune" in ran_stages(trained.stdout), trained.stdout
    assert (project.root / "data/task/train.txt").read_bytes() == (
        project.root / "labelled/annotations.txt").read_bytes()
    assert project.metrics("finetune")


def test_select_pushes_the_texts_the_model_is_least_sure_of(
    label_studio: LabelStudio, demo_run: DemoRun, tmp_path: Path
) -> None:
    project = clone_project(demo_run.project, tmp_path / "project")
    pool = [detokenize(s.tokens)[0] for s in read_conll(project.root / "data/task/valid.txt")[:40]]
    (project.root / "pool.txt").write_text("".join(text + "\n" for text in pool), encoding="utf-8")
    settings = project.params()
    settings["annotate"]["url"] = label_studio.url
    project.write_params(settings)
    project.env["LABEL_STUDIO_API_KEY"] = label_studio.token

    chosen = project.run("electra", "select", "--pool", "pool.txt", "--k", "5", "--out", "batch.jsonl", "--push",
                         "--project", "next-batch")
    assert "pushed 5 tasks to Label Studio project 'next-batch'" in chosen.stdout, chosen.stdout
    batch = [json.loads(line)["text"] for line in (project.root / "batch.jsonl").read_text().splitlines()]
    tasks = label_studio.export(label_studio.require_project("next-batch"))
    assert sorted(task["data"]["text"] for task in tasks) == sorted(batch)
    predictions = label_studio.call("GET", "/api/predictions", query={"task": tasks[0]["id"]})
    assert predictions and predictions[0]["model_version"].startswith("models:/electra-ner@champion (")
