"""What reveals a collapsing pretraining run early: RTD recall and AUC per logging window (the AUC from an on-device
histogram), generator accuracy at [MASK] and at kept slots apart, and a warning when recall stays near 0 after
warmup."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from electra_model.pretraining import loop as pretrain_module
from electra_model.config import load_params
from electra_model.data.blocks import pack_blocks
from electra_model.pretraining.loop import (
    COLLAPSE_RECALL,
    SCORE_BINS,
    RunningStats,
    Trainer,
    build_model,
    collapse_warning,
    histogram_auc,
    pretrain,
    score_bins,
)
from electra_model.data.tokenizer import train_wordpiece
from electra_model.training import Distributed
from tests.unit.model.test_pretrain import LINES  # the same small corpus



@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(LINES, vocab_size=200, min_frequency=1, lowercase=False)


@pytest.fixture(scope="module")
def blocks(tokenizer):
    return pack_blocks(tokenizer, LINES, max_seq_len=32)


@pytest.fixture(scope="module")
def params():
    return load_params("params.yaml").pretrain.model_copy(
        update={"max_steps": 30, "batch_size": 8, "max_seq_len": 32, "warmup_steps": 3, "log_every": 10}
    )


def histograms(replaced: torch.Tensor, original: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    count = lambda scores: torch.bincount(score_bins(scores), minlength=SCORE_BINS).double().numpy()  # noqa: E731
    return count(replaced), count(original)


def test_the_histogram_auc_matches_the_exact_auc_to_the_bin_width():
    generator = torch.Generator().manual_seed(0)
    original = torch.randn(5000, generator=generator) * 2 - 1
    replaced = torch.randn(700, generator=generator) * 2 + 1
    exact = roc_auc_score(np.r_[np.ones(700), np.zeros(5000)], torch.cat([replaced, original]).numpy())
    assert histogram_auc(*histograms(replaced, original)) == pytest.approx(exact, abs=0.005)
    assert histogram_auc(*histograms(torch.full((9,), 3.0), torch.full((50,), -3.0))) == 1.0
    assert histogram_auc(*histograms(torch.full((9,), -3.0), torch.full((50,), 3.0))) == 0.0
    assert histogram_auc(*histograms(torch.full((9,), -4.0), torch.full((50,), -4.0))) == 0.5  # constant scores
    assert histogram_auc(*histograms(torch.full((9,), 50.0), torch.full((50,), 12.0))) == 0.5  # beyond the range


def make_constant(model: torch.nn.Module, logit: float) -> torch.nn.Module:
    """The discriminator's output layer made to give ``logit`` for every token, whatever the input, and frozen."""
    head = model.discriminator.discriminator_predictions.dense_prediction
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(logit)
    head.requires_grad_(False)
    return model


def window(trainer: Trainer, steps: int) -> dict[str, float]:
    stats = RunningStats.zeros(trainer.device)
    for _ in range(steps):
        trainer.train_step(trainer.model, stats)
    return stats.summary(Distributed())


def test_a_constant_discriminator_scores_recall_0_and_auc_one_half_and_warns_after_warmup(params, tokenizer, blocks):
    trainer = Trainer(params, 0, tokenizer, blocks, Distributed())
    make_constant(trainer.model, -4.0)
    metrics = window(trainer, 2)
    assert metrics["rtd_recall"] == 0.0 and metrics["rtd_auc"] == 0.5
    assert metrics["rtd_accuracy"] == pytest.approx(1 - metrics["replaced_fraction"])  # "all original" exactly
    message = collapse_warning(metrics, window_first_step=4, step=13, warmup_steps=3)
    assert message is not None and message.startswith(f"RTD recall 0.000 < {COLLAPSE_RECALL} in steps 4-13")
    assert "pretrain.learning_rate" in message and "pretrain.warmup_steps" in message
    assert collapse_warning(metrics, window_first_step=3, step=12, warmup_steps=3) is None  # overlaps warmup


def test_a_discriminator_that_flags_replacements_does_not_warn(params, tokenizer, blocks):
    trainer = Trainer(params, 0, tokenizer, blocks, Distributed())
    make_constant(trainer.model, 4.0)  # calls everything replaced: recall 1, no collapse to "original"
    metrics = window(trainer, 2)
    assert metrics["rtd_recall"] == 1.0
    assert collapse_warning(metrics, window_first_step=20, step=30, warmup_steps=3) is None


def test_generator_accuracy_is_counted_apart_at_mask_and_at_kept_slots(params, tokenizer, blocks):
    """Checked against the generator's own predictions, with [MASK] slots found by their input token."""
    trainer = Trainer(params, 0, tokenizer, blocks, Distributed())
    window(trainer, 5)  # some training, so that accuracies are not all 0
    trainer.model.eval()  # no dropout: the forward below and the one inside the model agree
    stats = RunningStats.zeros(trainer.device)
    hits = {"masked": [0, 0], "kept": [0, 0]}
    for micro in trainer.micro_batches(6):
        with torch.no_grad():
            output = trainer.model(micro.input_ids, None, micro.masked, micro.sampler)
            guesses = trainer.model.mlm_logits(micro.masked, None).argmax(-1)
        stats.add(output, micro.masked)
        shown = micro.masked.input_ids.gather(1, micro.masked.positions)
        for kind, slots in (("masked", shown == trainer.mask_id), ("kept", shown != trainer.mask_id)):
            slots &= micro.masked.valid
            hits[kind][0] += int(((guesses == micro.masked.original) & slots).sum())
            hits[kind][1] += int(slots.sum())
    metrics = stats.summary(Distributed())
    assert hits["kept"][1] > 0 and hits["masked"][1] > 4 * hits["kept"][1]  # 85% of the slots show [MASK]
    assert hits["masked"][0] > 0 and hits["kept"][0] > 0, hits  # both counts are non-trivial
    assert metrics["mlm_accuracy_masked"] == pytest.approx(hits["masked"][0] / hits["masked"][1])
    assert metrics["mlm_accuracy_kept"] == pytest.approx(hits["kept"][0] / hits["kept"][1])
    total = hits["masked"][0] + hits["kept"][0], hits["masked"][1] + hits["kept"][1]
    assert metrics["mlm_accuracy"] == pytest.approx(total[0] / total[1])


def test_the_loop_warns_once_in_the_log_and_to_its_caller_when_the_discriminator_is_constant(
    params, tokenizer, blocks, monkeypatch, capsys
):
    monkeypatch.setattr(pretrain_module, "build_model", lambda p, t: make_constant(build_model(p, t), -4.0))
    warnings: list[str] = []
    logged: list[tuple[int, dict]] = []
    pretrain(params, 3, tokenizer, blocks, lambda s, m: logged.append((s, m)), on_warning=warnings.append)
    assert [m["rtd_recall"] for _, m in logged] == [0.0, 0.0, 0.0]
    assert [m["rtd_auc"] for _, m in logged] == [0.5, 0.5, 0.5]
    assert len(warnings) == 1 and "in steps 11-20" in warnings[0]  # steps 1-10 include warmup (3 steps)
    assert f"warning: {warnings[0]}" in capsys.readouterr().err
