"""The pretrain stage with ``pretrain.budget_minutes``: its metrics record the budget, the steps and the tokens
seen, and running it again finds the fitted plan in its cache instead of measuring the step time again. Its curves
carry the collapse signals, and a collapse warning reaches the MLflow run as a tag exactly when they show one. Its
metrics and held-out curve carry the held-out MLM loss beside the corpus's unigram and bigram entropies."""

from __future__ import annotations

import csv
import json

import pytest
from mlflow.tracking import MlflowClient

from electra_model.pretraining.loop import COLLAPSE_RECALL

from tests.dvc_map import stage_command
from tests.integration.project import copy_project

pytestmark = pytest.mark.e2e

SMALL = {
    "data": {"demo": {"corpus_documents": 20, "train_sentences": 20, "valid_sentences": 5, "test_sentences": 5}},
    "tokenizer": {"vocab_size": 600},
    "pretrain": {"batch_size": 8, "max_seq_len": 32, "log_every": 2, "checkpoint_every": 2, "budget_minutes": 0.05},
    "finetune": {"max_seq_len": 32},
}


def test_a_budgeted_stage_records_its_budget_steps_and_tokens_and_keeps_its_plan(tmp_path):
    project = copy_project(tmp_path, SMALL)
    project.run(*stage_command("download"))
    project.run(*stage_command("tokenizer"))
    first = project.run(*stage_command("pretrain"))
    assert "budget 0.05 min at " in first.stderr + first.stdout
    metrics = project.metrics("pretrain")
    assert metrics["budget_minutes"] == 0.05 and metrics["steps"] >= 1
    assert metrics["tokens_seen"] == metrics["steps"] * 8 * 32
    assert metrics["learning_rate"] == 0.0
    plateau = ("heldout_mlm_loss", "heldout_mlm_accuracy", "unigram_entropy", "bigram_entropy")
    assert set(plateau) <= set(metrics) and 0 < metrics["bigram_entropy"] < metrics["unigram_entropy"]
    assert len(list(project.root.glob("cache/pretrain/tokens-*.entropy-*.json"))) == 1  # beside the token stream
    with open(project.root / "plots/pretrain_heldout.csv", encoding="utf-8") as handle:
        heldout_rows = list(csv.DictReader(handle))
    assert heldout_rows and set(heldout_rows[-1]) == {"step", *plateau}
    assert int(heldout_rows[-1]["step"]) == metrics["steps"]
    assert float(heldout_rows[-1]["heldout_mlm_loss"]) == pytest.approx(metrics["heldout_mlm_loss"])

    (plan_path,) = project.root.glob("cache/pretrain/run-*/budget.json")
    warmup = json.loads(plan_path.read_text(encoding="utf-8"))["warmup_steps"]
    with open(project.root / "plots/pretrain.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {"rtd_recall", "rtd_auc", "mlm_accuracy_masked", "mlm_accuracy_kept"} <= set(rows[0])
    window_starts = [1] + [int(row["step"]) + 1 for row in rows[:-1]]
    collapsed = any(start > warmup and float(row["rtd_recall"]) < COLLAPSE_RECALL for start, row in zip(window_starts, rows))
    client = MlflowClient(project.env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs(
        [client.get_experiment_by_name("electra-pipeline").experiment_id], "attributes.run_name = 'pretrain'"
    )
    assert ("pretrain.warning" in run.data.tags) == collapsed, (rows, warmup, run.data.tags)
    assert run.data.metrics["steps"] == metrics["steps"]
    assert run.data.metrics["bigram_entropy"] == pytest.approx(metrics["bigram_entropy"])

    again = project.run(*stage_command("pretrain"))  # resumes from the last checkpoint: nothing left to train
    output = again.stderr + again.stdout
    assert "budget plan from " in output and "budget 0.05 min at " not in output
    assert project.metrics("pretrain")["steps"] == metrics["steps"]
