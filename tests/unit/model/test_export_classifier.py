"""The export of a sequence classifier: the task read from the model folder, the four variants with three inputs,
parity with torch, accuracy on the validation texts, the served variant chosen on accuracy, and the export stage
registering it as electra-classifier from a JSON-lines split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml
from mlflow.tracking import MlflowClient

from electra_model.tasks.ner.conll import Sentence, write_conll
from electra_model.errors import ElectraError
from electra_model.export.build import model_spec
from electra_model.export.choose import check_and_choose, check_variants, choose_cpu_variant, score_variants
from electra_model.export.splits import read_split
from electra_model.tasks.classification.spec import CLASSIFICATION
from electra_model.client.exported import read_meta
from tests.fixtures_classifier import CLASSIFIER_LABELS, CLASSIFIER_MAX_LEN, cue_split, write_jsonl
from tests.params import section

REPO = Path(__file__).resolve().parents[3]
VARIANTS = ["fp16", "fp32", "int8", "optimized"]


def test_the_task_and_inputs_come_from_the_model_folder(
    classifier_model_dir: Path, classifier_onnx_dir: Path, random_model_dir: Path, random_onnx_dir: Path
) -> None:
    assert (model_spec(classifier_model_dir).name, model_spec(random_model_dir).name) == ("classification", "ner")
    meta = read_meta(classifier_onnx_dir)
    assert (meta["task"], meta["labels"], sorted(meta["variants"])) == ("classification", CLASSIFIER_LABELS, VARIANTS)
    assert meta["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert read_meta(random_onnx_dir)["inputs"] == ["input_ids", "attention_mask"]
    for variant in VARIANTS:
        session = ort.InferenceSession(str(classifier_onnx_dir / meta["variants"][variant]["file"]),
                                       providers=["CPUExecutionProvider"])
        assert [node.name for node in session.get_inputs()] == meta["inputs"]
        feed = {name: np.ones((3, 11), dtype=np.int64) for name in meta["inputs"]}
        assert session.run(["logits"], feed)[0].shape == (3, len(CLASSIFIER_LABELS))


@pytest.mark.parametrize("pairs", [False, True], ids=["single", "pair"])
def test_variants_match_torch_and_are_scored_with_accuracy(
    pairs: bool, request: pytest.FixtureRequest
) -> None:
    prefix = "pair_" if pairs else ""
    model_dir = request.getfixturevalue(f"{prefix}classifier_model_dir")
    onnx_dir = request.getfixturevalue(f"{prefix}classifier_onnx_dir")
    valid = cue_split(50, 3, pairs)
    results = check_variants(model_dir, onnx_dir, valid, batch_size=8)
    assert sorted(results) == VARIANTS
    for name in ("fp32", "optimized"):
        assert results[name]["labels_identical"] is True and results[name]["max_abs_logit_diff"] < 1e-5
    assert 0 < results["int8"]["max_abs_logit_diff"] < 0.1 and results["fp16"]["max_abs_logit_diff"] < 0.05
    assert all(result["accuracy"] >= 0.9 for result in results.values()), results
    # labels flipped: the same variants, now almost always wrong -- the score is computed against the gold labels
    flipped = [type(e)(e.text, e.pair, "pos" if e.label == "neg" else "neg", e.where) for e in valid]
    assert score_variants(onnx_dir, flipped, batch_size=8)["fp32"]["accuracy"] <= 0.1


def test_the_served_variant_is_the_fastest_within_the_accuracy_drop(
    classifier_model_dir: Path, classifier_onnx_dir: Path, tmp_path: Path
) -> None:
    onnx_dir = tmp_path / "onnx"
    shutil.copytree(classifier_onnx_dir, onnx_dir)  # check_and_choose records its choice in the directory
    export = section("export", latency_runs=4)
    quality = check_and_choose(classifier_model_dir, onnx_dir, cue_split(40, 4, False), 8, export, split="valid")
    assert (quality.task, quality.metric, quality.selection_split) == ("classification", "accuracy", "valid")
    assert quality.parity_passed and quality.score == quality.variants[quality.serve_variant]["accuracy"]
    assert quality.serve_variant == choose_cpu_variant(quality.variants, export, "accuracy")[0]
    assert read_meta(onnx_dir)["cpu_variant"] == quality.serve_variant
    assert quality.to_dict()["accuracy"] == quality.score and "f1" not in quality.to_dict()
    lossy = {name: {**measures, "accuracy": 0.5} for name, measures in quality.variants.items()}
    lossy["fp32"]["accuracy"] = 1.0
    assert choose_cpu_variant(lossy, export, "accuracy")[0] == "fp32"  # the only one within the drop


def test_a_split_of_the_other_task_is_refused_by_name(tmp_path: Path) -> None:
    write_conll(tmp_path / "valid.txt", [Sentence(("John",), ("B-PER",))])
    with pytest.raises(ElectraError, match=r"valid.txt: the model is a classification model, which is checked on a "
                       r"\.jsonl split"):
        read_split(tmp_path / "valid.txt", CLASSIFICATION)
    single = read_split(write_jsonl(cue_split(3, 5, False), tmp_path / "single.jsonl"), CLASSIFICATION)
    pairs = read_split(write_jsonl(cue_split(3, 5, True), tmp_path / "pairs.jsonl"), CLASSIFICATION)
    assert all(e.pair is None for e in single) and all(e.pair for e in pairs)
    (tmp_path / "bad.jsonl").write_text('{"text": "good", "pair": null, "label": "pos"}\n{"text": "", "label": "neg"}\n')
    with pytest.raises(ElectraError, match=r"bad.jsonl:2: the text in column 'text' is empty"):
        read_split(tmp_path / "bad.jsonl", CLASSIFICATION)


def test_the_export_stage_registers_a_classifier_as_electra_classifier(
    tmp_path: Path, pair_classifier_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths as the task-generic map names them (data/task, models/finetuned); the task comes from the model."""
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["export"].update(min_f1=0.8, latency_runs=4)
    params["finetune"]["max_seq_len"] = CLASSIFIER_MAX_LEN
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copytree(pair_classifier_model_dir, tmp_path / "models" / "finetuned")
    (tmp_path / "data" / "task").mkdir(parents=True)
    write_jsonl(cue_split(40, 6, True), tmp_path / "data" / "task" / "valid.jsonl")
    write_jsonl(cue_split(40, 7, True), tmp_path / "data" / "task" / "test.jsonl")
    from stages.export import main

    main(["--data", "data/task", "--model", "models/finetuned", "--out", "models/onnx", "--metrics", "export.json"])
    metrics = json.loads((tmp_path / "export.json").read_text())
    assert (metrics["task"], metrics["metric"], metrics["selection_split"]) == ("classification", "accuracy", "valid")
    assert metrics["accuracy"] == metrics["score"] >= 0.9 and metrics["parity_passed"] is True
    assert metrics["alias_moved"] is True and metrics["examples"] == 40
    assert set(metrics["report"]["fp32"]) == {"accuracy", "macro_f1"}
    champion = MlflowClient(store).get_model_version_by_alias("electra-classifier", "champion")
    assert champion.tags["task"] == "classification" and float(champion.tags["accuracy"]) == metrics["accuracy"]
    assert champion.tags["champion_reason"].startswith(f"accuracy {metrics['accuracy']:.4f} >= min_f1 0.80")
