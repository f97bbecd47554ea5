"""A bad search space fails before any trial, naming its key (issue 15); a good one becomes `-S` arguments."""

from __future__ import annotations

import copy
from pathlib import Path

import optuna
import pytest
import yaml

from electra_model.config import SearchDimension, read_params_file
from electra_model.errors import ElectraError
from electra_model.search.space import check_space, set_arguments, stage_order, suggest, yaml_scalar

REPO = Path(__file__).resolve().parents[3]
RAW = read_params_file(REPO / "params.yaml")
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def space_error(space: dict | None = None, **tune) -> str:
    raw = copy.deepcopy(RAW)
    if space is not None:
        raw["tune"]["space"] = space
    raw["tune"].update(tune)
    with pytest.raises(ElectraError) as error:
        check_space(raw, REPO / "dvc.yaml")
    return str(error.value)


def test_the_committed_space_is_valid() -> None:
    assert check_space(RAW, REPO / "dvc.yaml").tune.space


@pytest.mark.parametrize(("space", "expected"), [
    ({"finetune.learnig_rate": {"low": 1e-4, "high": 1e-3}}, "tune.space.finetune.learnig_rate: finetune.learnig_rate is not a key"),
    ({"finetune.learning_rate": {"low": 1e-3, "high": 1e-4}}, "tune.space.finetune.learning_rate"),
    ({"finetune.learning_rate": {"choices": []}}, "choices is empty"),
    ({"finetune.batch_size": {"low": 8.5, "high": 32}}, "tune.space.finetune.batch_size: finetune.batch_size takes whole numbers"),
    ({"finetune.learning_rate": {"choices": ["fast", 1e-4]}}, "tune.space.finetune.learning_rate: the value 'fast' is not valid"),
    ({"finetune.warmup_ratio": {"low": 0.0, "high": 1.5}}, "tune.space.finetune.warmup_ratio: the value 1.5 is not valid"),
    ({"evaluate.batch_size": {"choices": [32, 64]}}, "tune.space.evaluate.batch_size: no stage a trial runs"),
    ({"export.min_f1": {"low": 0.1, "high": 0.5}}, "(only export does)"),
    ({"finetune": {"choices": [1]}}, "tune.space.finetune: finetune is a section"),
    ({"finetune.learning_rate": {"low": 0.0, "high": 1e-3, "log": True}}, "log scale needs low > 0"),
    ({}, "tune.space is empty"),
])
def test_a_bad_space_names_the_key(space: dict, expected: str) -> None:
    assert expected in space_error(space)


def test_a_bad_metric_or_stage_is_named() -> None:
    assert "tune.metric" in space_error(metric="metrics/evaluate.json:entity.overall.f1")
    assert "tune.stage = 'finetuning'" in space_error(stage="finetuning")


def test_a_pretraining_key_is_read_by_a_stage_before_finetune() -> None:
    assert stage_order(STAGES, "finetune") == ["download", "tokenizer", "pretrain", "finetune"]
    raw = copy.deepcopy(RAW)
    raw["tune"]["space"] = {"pretrain.mask_prob": {"low": 0.1, "high": 0.2}}
    check_space(raw, REPO / "dvc.yaml")


def test_values_are_sampled_in_the_keys_type_and_read_back_by_yaml() -> None:
    trial = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0)).ask()
    batch = suggest(trial, RAW, "finetune.batch_size", SearchDimension(low=8, high=64, log=True))
    rate = suggest(trial, RAW, "finetune.learning_rate", SearchDimension(low=1e-6, high=1e-5, log=True))
    assert isinstance(batch, int) and 8 <= batch <= 64 and isinstance(rate, float)
    arguments = set_arguments({"finetune.batch_size": batch, "finetune.learning_rate": 1e-05, "finetune.init": "random"})
    assert arguments == ["-S", f"finetune.batch_size={batch}", "-S", "finetune.learning_rate=1.0e-05",
                         "-S", 'finetune.init="random"']
    for value in (1e-05, 2.5e-07, 0.3, 1e20):
        assert yaml.safe_load(yaml_scalar(value)) == value
