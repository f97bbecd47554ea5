"""Pretraining for a wall-clock budget: the step count is fitted to a measured step time, the learning rate reaches
0 at the last step, and a resumed run keeps the fitted schedule instead of measuring again."""

from __future__ import annotations

import pytest

from electra_model.pretraining import loop as pretrain_module
from electra_model.config import load_params
from electra_model.data.blocks import pack_blocks
from electra_model.data.demo import demo_corpus
from electra_model.io import read_json
from electra_model.pretraining.loop import BUDGET_PLAN, fit_to_budget, pretrain
from electra_model.data.tokenizer import train_wordpiece

BUDGET_MINUTES = 0.05  # 3 s of training


@pytest.fixture(scope="module")
def corpus():
    return demo_corpus(40, seed=3)


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return train_wordpiece(corpus, vocab_size=600, min_frequency=2, lowercase=False)


@pytest.fixture(scope="module")
def blocks(tokenizer, corpus):
    return pack_blocks(tokenizer, corpus, max_seq_len=32)


@pytest.fixture(scope="module")
def params():
    base = load_params("params.yaml").pretrain
    assert base.budget_minutes is None, "params.yaml must keep the demo deterministic (no budget by default)"
    return base.model_copy(update={
        "batch_size": 8, "max_seq_len": 32, "max_steps": 100, "warmup_steps": 10, "log_every": 2,
        "checkpoint_every": 4, "keep_checkpoints": 1, "budget_minutes": BUDGET_MINUTES,
    })


def test_the_fit_fills_the_budget_and_keeps_the_warmup_share(params):
    fitted = fit_to_budget(params.model_copy(update={"budget_minutes": 2.0}), step_seconds=0.3)
    assert fitted.max_steps == 400 and fitted.warmup_steps == 40  # 120 s / 0.3 s; warmup stays 10%
    assert fitted.budget_minutes is None and fitted.learning_rate == params.learning_rate
    assert fit_to_budget(params, step_seconds=60.0).max_steps == 1  # a budget shorter than a step still trains one


def test_a_budgeted_run_fits_its_steps_and_ends_its_schedule_at_zero(params, tokenizer, blocks, tmp_path):
    logged: list[tuple[int, dict]] = []
    _, final = pretrain(params, 1, tokenizer, blocks, lambda s, m: logged.append((s, m)), checkpoint_dir=tmp_path)
    plan = read_json(tmp_path / BUDGET_PLAN)
    assert plan["budget_minutes"] == BUDGET_MINUTES and plan["step_seconds"] > 0
    assert plan["max_steps"] == max(1, int(BUDGET_MINUTES * 60 / plan["step_seconds"]))
    assert plan["warmup_steps"] == round(10 * plan["max_steps"] / 100)
    steps = plan["max_steps"]
    assert logged[-1][0] == steps and final["steps"] == steps
    assert final["tokens_seen"] == steps * 8 * 32
    assert logged[-1][1]["learning_rate"] == 0.0  # the decay ends exactly at the fitted last step
    assert all(metrics["learning_rate"] > 0 for step, metrics in logged[:-1])
    assert final["train_minutes"] > 0  # how close it came to the budget depends on this shared machine's load

    # the calibration's throw-away steps left no trace: the run is the one its fitted step count gives outright
    fixed = params.model_copy(update={"budget_minutes": None, "max_steps": steps, "warmup_steps": plan["warmup_steps"]})
    again: list[tuple[int, dict]] = []
    pretrain(fixed, 1, tokenizer, blocks, lambda s, m: again.append((s, m)))
    assert [(s, m["loss"]) for s, m in again] == [(s, m["loss"]) for s, m in logged]


class Interrupted(Exception):
    pass


def test_a_resumed_budgeted_run_reuses_the_fitted_schedule(params, tokenizer, blocks, tmp_path, monkeypatch):
    """The first attempt's step time is set (12 steps fit), so the test does not depend on this machine's speed."""

    def stop_at_8(step: int, metrics: dict) -> None:
        if step == 8:
            raise Interrupted

    monkeypatch.setattr(pretrain_module, "calibrate_step_seconds", lambda *args: BUDGET_MINUTES * 60 / 12)
    with pytest.raises(Interrupted):  # checkpoint at step 4, killed at step 8 before its checkpoint
        pretrain(params, 2, tokenizer, blocks, stop_at_8, checkpoint_dir=tmp_path / "run")
    plan = read_json(tmp_path / "run" / BUDGET_PLAN)
    assert (plan["max_steps"], plan["warmup_steps"]) == (12, 1)

    def no_second_calibration(*args, **kwargs):
        raise AssertionError("a resumed run measured its step time again")

    monkeypatch.setattr(pretrain_module, "calibrate_step_seconds", no_second_calibration)
    resumed: list[tuple[int, dict]] = []
    pretrain(params, 2, tokenizer, blocks, lambda s, m: resumed.append((s, m)), checkpoint_dir=tmp_path / "run")
    assert resumed[-1][0] == plan["max_steps"] and resumed[-1][1]["learning_rate"] == 0.0

    # the same schedule as a run given the fitted step count outright: the budget changed nothing but the count
    fixed = params.model_copy(update={
        "budget_minutes": None, "max_steps": plan["max_steps"], "warmup_steps": plan["warmup_steps"]
    })
    whole: list[tuple[int, dict]] = []
    pretrain(fixed, 2, tokenizer, blocks, lambda s, m: whole.append((s, m)))
    assert [(s, m["loss"], m["learning_rate"]) for s, m in resumed] == [(s, m["loss"], m["learning_rate"]) for s, m in whole]
