"""The model card is rendered from what a run recorded, and every figure in it can be read back: on a small recorded
run built here (the e2e check on the shared demo run is tests/integration/test_model_card_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from electra_model.errors import ElectraError
from electra_model.tasks.classification.spec import CLASSIFICATION
from electra_model.tasks.ner.spec import NER
from electra_model.tracking.card_publish import README, write_hub_folder
from electra_model.tracking.card_record import CardRecord, StageRun, data_outs, stage_metrics
from electra_model.tracking.card_render import card_body, render_card
from electra_model.tracking.card_task import task_card
from tests.card_figures import figures, unrecorded
from tests.pair_score_task import SPEC as PLUGIN_WITHOUT_CARD

NER_EVALUATION = {
    "split": "test", "head": "crf", "sentences": 12, "entity_f1": 0.6123, "raw_text_entity_f1": 0.5871,
    "entity": {
        "LOC": {"precision": 0.71, "recall": 0.64, "f1": 0.6731, "support": 25},
        "PER": {"precision": 0.52, "recall": 0.49, "f1": 0.5046, "support": 13},
        "macro": {"precision": 0.615, "recall": 0.565, "f1": 0.58885, "support": 38},
        "overall": {"precision": 0.6412, "recall": 0.5853, "f1": 0.6123, "support": 38},
    },
    "raw_text_entity": {"LOC": {"f1": 0.6612}, "PER": {"f1": 0.4411}, "overall": {"f1": 0.5871}},
}
ERRORS = {
    "counts": {"correct": 21, "type": 4, "boundary": 6, "boundary_type": 2, "spurious": 5, "missed": 7},
    "most_common": {"type": [{"entity": '"Paris" LOC -> PER', "count": 2}],
                    "boundary": [{"entity": '"New York" LOC -> "York" LOC', "count": 3}]},
}
VARIANTS = {
    "fp32": {"file": "model.onnx", "f1": 0.6, "latency_ms_b1": 4.25, "latency_ms_b1_p95": 5.5},
    "int8": {"file": "model.int8.onnx", "f1": 0.58, "latency_ms_b1": 1.75, "latency_ms_b1_p95": 2.25},
}
ONNX_BYTES = {"fp32": 4000, "int8": 1600}


def record(task: str = "ner", evaluation: dict | None = None, section: dict | None = None) -> CardRecord:
    """A recorded run: what the stages' metrics files, model_meta.json and MLflow runs hold, in small."""
    download = {"source": "demo", "corpus": {"origin": "demo corpus", "documents": 9, "characters": 4321},
                task: section or {split: {"origin": f"demo {split}", "sentences": n, "tokens": 10 * n,
                                          "entities": {"LOC": n + 1, "PER": n + 2}}
                                  for split, n in (("train", 40), ("valid", 11), ("test", 12))}}
    export = {"metric": "f1", "score": 0.58, "serve_variant": "int8", "max_abs_logit_diff": 0.03,
              "serve_reason": "int8: fastest (fp32 4.25 ms, int8 1.75 ms)", "report_split": "test",
              "report": {"fp32": {"f1": 0.6123}, "int8": {"f1": 0.6011}}}
    return CardRecord(
        model_name="electra-ner", alias="champion", task=task, language="en", license="apache-2.0",
        metrics={"download": download, "export": export, "evaluate": evaluation or NER_EVALUATION,
                 "pretrain": {"steps": 40, "tokens_seen": 40960, "train_minutes": 3.52245, "parameters": 649405},
                 "finetune": {"best_epoch": 2, "epochs_run": 3, "steps": 114, "best_valid_f1": 0.6214}},
        data_outs={"data/task": {"md5": "6f0ba7fb.dir", "size": 105094, "nfiles": 3}},
        model_meta={"task": task, "cpu_variant": "int8", "gpu_variant": "fp32", "variants": VARIANTS},
        onnx_bytes=ONNX_BYTES,
        runs={"pretrain": StageRun("p", {"pretrain.preset": "tiny", "pretrain.max_seq_len": "64"},
                                   {"compute.device": "cpu"}),
              "finetune": StageRun("f", {"finetune.learning_rate": "0.0005"}, {"compute.device": "NVIDIA H100"}),
              "export": StageRun("e", {"export.latency_runs": "4"}, {"git.commit": "0352714e8dc4cc"})},
    )


def derived(recorded: CardRecord) -> list[float]:
    """The card's comparisons, from the record: int8's size ratio, speed-up and score deltas against fp32."""
    export = recorded.metrics["export"]
    return [ONNX_BYTES["fp32"] / ONNX_BYTES["int8"], VARIANTS["fp32"]["latency_ms_b1"] / VARIANTS["int8"]["latency_ms_b1"],
            VARIANTS["int8"]["f1"] - VARIANTS["fp32"]["f1"], export["report"]["int8"]["f1"] - export["report"]["fp32"]["f1"]]


@pytest.fixture()
def reports(tmp_path: Path) -> Path:
    (tmp_path / "errors.json").write_text(json.dumps(ERRORS), encoding="utf-8")
    return tmp_path


def rows(card: str, first_cell: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in card.splitlines()
            if line.startswith(f"| {first_cell} |")]


def test_every_figure_of_the_ner_card_is_recorded(reports: Path) -> None:
    recorded = record()
    card = render_card(recorded, task_card(NER, NER_EVALUATION, reports))
    assert len(figures(card)) > 60
    sources = (recorded.metrics, recorded.model_meta, recorded.onnx_bytes, recorded.data_outs, ERRORS,
               [run.params for run in recorded.runs.values()], derived(recorded))
    assert unrecorded(card, *sources) == []
    assert unrecorded(card.replace("0.6731", "0.6732"), *sources) == ["0.6732"]  # the check can fail


def test_the_ner_card_has_per_type_gold_word_and_raw_text_f1(reports: Path) -> None:
    card = render_card(record(), task_card(NER, NER_EVALUATION, reports))
    assert rows(card, "LOC") == [["LOC", "25", "0.7100", "0.6400", "0.6731", "0.6612"]]
    assert rows(card, "overall") == [["overall", "38", "0.6412", "0.5853", "0.6123", "0.5871"]]
    assert rows(card, "int8") == [["int8", "1600", "1.75", "2.25", "0.5800", "0.6011"]]
    assert "2.50 times smaller, 2.43 times faster on one text, -0.0200 f1 on valid, -0.0112 f1 on test" in card
    assert 'boundary (right type, wrong span): 6 entities; most often "New York" LOC -> "York" LOC (3 times)' in card
    assert 'on "NVIDIA H100"' in card and "`pretrain.preset` = `tiny`" in card
    assert "load_finetuned(FOLDER)" in card  # a CRF head is not what transformers' pipeline loads


def test_the_metadata_block_is_what_the_hub_reads(reports: Path) -> None:
    card = render_card(record(), task_card(NER, NER_EVALUATION, reports))
    data = ModelCard(card).data
    assert (data.language, data.license, data.pipeline_tag) == ("en", "apache-2.0", "token-classification")
    assert {"electra", "ner"} <= set(data.tags) and data.datasets == ["demo test", "demo train", "demo valid"]
    results = {(result.metric_name, result.dataset_split): result.metric_value for result in data.eval_results}
    assert results[("entity F1 (gold words)", "test")] == NER_EVALUATION["entity"]["overall"]["f1"]
    assert results[("entity F1 (raw text)", "test")] == NER_EVALUATION["raw_text_entity_f1"]
    assert not card_body(card).startswith("---") and card_body(card).startswith("# electra-ner")


def test_a_classifier_card_has_per_class_scores_and_its_confusions(tmp_path: Path) -> None:
    evaluation = {"split": "test", "labels": ["negative", "positive"], "accuracy": 0.85, "macro_f1": 0.8442,
                  "examples": 20, "mistakes": 3,
                  "per_class": {"negative": {"precision": 0.9, "recall": 0.75, "f1": 0.8182, "support": 8},
                                "positive": {"precision": 0.8462, "recall": 0.9167, "f1": 0.88, "support": 12}}}
    (tmp_path / "confusion_matrix.json").write_text(
        json.dumps({"labels": ["negative", "positive"], "matrix": [[6, 2], [1, 11]]}), encoding="utf-8")
    section = {split: {"origin": f"demo {split}", "examples": n, "labels": {"negative": n // 2, "positive": n - n // 2}}
               for split, n in (("train", 40), ("valid", 10), ("test", 20))}
    recorded = record("classification", evaluation, section)
    card = render_card(recorded, task_card(CLASSIFICATION, evaluation, tmp_path))
    assert rows(card, "negative") == [["negative", "8", "0.9000", "0.7500", "0.8182"]]
    assert "`negative` taken for `positive`: 2 of 8 `negative` examples" in card
    assert "| test | demo test | 20 | negative 10, positive 10 |" in card
    assert ModelCard(card).data.pipeline_tag == "text-classification"
    assert unrecorded(card, recorded.metrics, recorded.model_meta, recorded.onnx_bytes, recorded.data_outs,
                      [run.params for run in recorded.runs.values()], derived(recorded), [[6, 2], [1, 11]]) == []


def test_a_plugin_task_without_a_card_hook_gets_a_generic_card(tmp_path: Path) -> None:
    assert PLUGIN_WITHOUT_CARD.card is None
    evaluation = {"split": "test", "pearson": 0.7731, "mse": 0.0412}
    generic = task_card(PLUGIN_WITHOUT_CARD, evaluation, tmp_path)
    assert generic.pipeline_tag is None and generic.results == (("mse", 0.0412), ("pearson", 0.7731))
    section = {"test": {"origin": "pairs test", "examples": 5}}
    card = render_card(record(PLUGIN_WITHOUT_CARD.name, evaluation, section), generic)
    assert "| pearson | 0.7731 |" in card and "pipeline_tag" not in card


def test_missing_records_are_named(tmp_path: Path) -> None:
    (tmp_path / "download.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ElectraError, match="no pretrain.json among the metrics files"):
        stage_metrics([tmp_path / "download.json"])
    names = [tmp_path / f"{stage}.json" for stage in ("download", "pretrain", "finetune", "evaluate", "export")]
    with pytest.raises(ElectraError, match=r"pretrain.json is missing.*dvc repro pretrain"):
        stage_metrics(names)
    with pytest.raises(ElectraError, match="dvc.lock is missing"):
        data_outs(tmp_path / "dvc.lock")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n", encoding="utf-8")
    with pytest.raises(ElectraError, match="no 'download' stage recorded"):
        data_outs(tmp_path / "dvc.lock")
    with pytest.raises(ElectraError, match="errors.json is missing.*dvc repro evaluate"):
        task_card(NER, NER_EVALUATION, tmp_path)


def test_the_hub_folder_is_the_checkpoint_with_its_card_all_or_nothing(tmp_path: Path) -> None:
    checkpoint, out = tmp_path / "finetuned", tmp_path / "hub"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}", encoding="utf-8")
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    write_hub_folder(checkpoint, "---\nlanguage: en\n---\n# card\n", out)
    assert sorted(p.name for p in out.iterdir()) == [README, "config.json", "model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == b"weights"
    (checkpoint / "config.json").unlink()
    with pytest.raises(ElectraError, match="holds no config.json"):
        write_hub_folder(checkpoint, "another card", out)
    assert (out / README).read_text(encoding="utf-8") == "---\nlanguage: en\n---\n# card\n"  # the good one stays
