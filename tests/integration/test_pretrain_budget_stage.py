"""The pretrain stage with ``pretrain.budget_minutes``: its metrics record the budget, the steps and the tokens
seen, and running it again finds the fitted plan in its cache instead of measuring the step time again."""

from __future__ import annotations

import pytest

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

    again = project.run(*stage_command("pretrain"))  # resumes from the last checkpoint: nothing left to train
    output = again.stderr + again.stdout
    assert "budget plan from " in output and "budget 0.05 min at " not in output
    assert project.metrics("pretrain")["steps"] == metrics["steps"]
