"""A task is one plug-in: a third task defined in the test tree alone (tests/pair_score_task.py, sentence-pair
regression) is fine-tuned, evaluated, exported by the export stage itself (ONNX variants, parity with torch, the
variant choice), registered in MLflow behind the gate, and served by the client from its directory and from its
``models:/`` URI, after one ``register_task`` call and without a library file naming it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from electra_model.client import loader
from electra_model.client.loader import load_predictor, load_served
from electra_model.data.tokenizer import as_transformers_tokenizer
from electra_model.tasks import registry
from electra_model.tasks.registry import register_task
from tests import pair_score_task as plugin
from tests.dvc_map import stage_argv

REPO = Path(__file__).resolve().parents[3]
TEXTS, PAIRS = ["the plot", "the film", "a story"], ["really great acting", "quite dull and boring", "lovely"]


@pytest.fixture
def registered() -> Iterator[None]:
    """The third task registered for this test only (both tables restored afterwards)."""
    tasks, clients = dict(registry.TASKS), dict(loader.CLIENTS)
    register_task(plugin.SPEC)
    yield
    for table, saved in ((registry.TASKS, tasks), (loader.CLIENTS, clients)):
        table.clear()
        table.update(saved)


def test_a_task_defined_in_the_tests_goes_from_finetuning_to_the_client(
    tmp_path: Path, registered: None, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data" / "task"
    data.mkdir(parents=True)
    for split, count, seed in (("train", 160, 1), ("valid", 40, 2), ("test", 40, 3)):
        plugin.write_split(plugin.make_split(count, seed), data / f"{split}{plugin.SUFFIX}")

    # finetune and evaluate: the task's own trainer and evaluator, through the interface the stages call
    base = plugin.save_pretrained_base(tmp_path / "models" / "pretrained")
    finetuned = plugin.PairScoreTrainer().finetune(None, base, data, lambda epoch, metrics: None)
    assert finetuned.summary["best_valid_pearson"] > 0.9
    model_dir = tmp_path / "models" / "finetuned"
    finetuned.model.save_pretrained(model_dir, safe_serialization=True)
    as_transformers_tokenizer(finetuned.tokenizer, plugin.MAX_LEN).save_pretrained(model_dir)
    metrics = plugin.PairScoreEvaluator().evaluate(None, model_dir, data / f"test{plugin.SUFFIX}", "test",
                                                   tmp_path, tmp_path / "confusion.csv")
    assert metrics["pearson"] > 0.9

    # export and registration: the export stage itself, in a project of its own
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["export"].update(min_f1=0.5, latency_runs=2)
    params["finetune"]["max_seq_len"] = plugin.MAX_LEN
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    from stages.export import main as export_stage

    export_stage(stage_argv("export"))
    exported = json.loads((tmp_path / "metrics" / "export.json").read_text())
    assert (exported["task"], exported["metric"], exported["selection_split"]) == ("pair_score", "pearson", "valid")
    assert exported["parity_passed"] and exported["alias_moved"] and exported["pearson"] > 0.9
    assert set(exported["report"]["fp32"]) == {"pearson", "mse"}
    onnx_dir = tmp_path / "models" / "onnx"
    assert json.loads((onnx_dir / "model_meta.json").read_text())["task"] == "pair_score"

    # the client: from the directory and from the registry, as any other task's model
    local = load_predictor(onnx_dir, providers=["CPUExecutionProvider"], variant="fp32")
    spec, served = load_served("models:/electra-pair-score@champion", mlflow_store)
    assert spec is plugin.CLIENT and isinstance(served, plugin.PairScorePredictor)
    scores = served.predict(TEXTS, PAIRS)
    assert scores[0] > 0.5 > scores[1] and scores[2] > 0.5
    assert local.variant == "fp32" and local.predict(TEXTS, PAIRS) == pytest.approx(scores, abs=0.05)


def test_the_library_names_no_task_of_the_test_tree() -> None:
    """The proof above edits no library file: nothing under electra_model/ mentions the third task."""
    mentions = [path for path in (REPO / "electra_model").rglob("*.py") if plugin.NAME in path.read_text()]
    assert mentions == []
