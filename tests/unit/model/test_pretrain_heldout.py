"""The held-out masked-LM figure: the corpus's tail is held out of training, masked once with a fixed seed, and
scored only at its masked slots, against the original tokens, the same way at every evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from electra_model.config import load_params
from electra_model.data.blocks import PackedBlocks, pack_blocks
from electra_model.data.tokenizer import special_token_ids, train_wordpiece
from electra_model.pretraining.heldout import HeldOutSet, heldout_count, split_heldout
from electra_model.pretraining.loop import Trainer, pretrain
from electra_model.pretraining.modeling import UNMASKABLE, MaskedBatch
from electra_model.training import Distributed

NAMES, OTHERS = ["Anna", "Boris", "Chen", "Dara"] * 6, ["Eli", "Fay", "Gus", "Hal"] * 6
CITIES = ["Paris", "Oslo", "Lima", "Kyiv", "Rome", "Bern"] * 4
LINES = [f"{name} met {other} in {city} on day {day} ." for name, other, city in zip(NAMES, OTHERS, CITIES)
         for day in range(1, 6)]
NO_AUTOCAST = torch.autocast(device_type="cpu", enabled=False)


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(LINES, vocab_size=150, min_frequency=1, lowercase=False)


@pytest.fixture(scope="module")
def blocks(tokenizer):
    return pack_blocks(tokenizer, LINES, max_seq_len=32)


@pytest.fixture(scope="module")
def params():
    params = load_params("params.yaml").pretrain
    return params.model_copy(update={"max_steps": 20, "batch_size": 8, "max_seq_len": 32, "warmup_steps": 2,
                                     "log_every": 5, "eval_every": 10, "eval_blocks": 3, "checkpoint_every": 10})


def heldout_set(tokenizer, blocks: np.ndarray, batch_size: int = 3) -> HeldOutSet:
    special = special_token_ids(tokenizer)
    unmaskable = torch.tensor([special[t] for t in UNMASKABLE])
    return HeldOutSet.build(blocks, unmaskable, special["[MASK]"], 0.15, 0.85, batch_size)


class StubModel(nn.Module):
    """Answers every masked slot with fixed logits built from the masked batch: ``uniform`` (all equal) or
    ``copy`` (the token the slot shows, [MASK] or the kept original)."""

    def __init__(self, vocab_size: int, answer: str):
        super().__init__()
        self.vocab_size, self.answer = vocab_size, answer

    def mlm_logits(self, masked: MaskedBatch, attention_mask: torch.Tensor | None) -> torch.Tensor:
        shown = masked.input_ids.gather(1, masked.positions)
        if self.answer == "uniform":
            return torch.zeros(*shown.shape, self.vocab_size)
        return nn.functional.one_hot(shown, self.vocab_size).float() * 20.0


def test_the_tail_is_held_out_at_most_a_tenth_of_the_blocks_and_training_never_sees_it(tokenizer, blocks):
    assert heldout_count(1000, 256) == 100 and heldout_count(10_000, 256) == 256 and heldout_count(5, 256) == 1
    train, held = split_heldout(blocks, 3)
    assert len(train) + len(held) == len(blocks) and len(held) == 3
    assert np.array_equal(held, blocks[-3:]) and np.array_equal(train, blocks[:-3])

    stream = blocks[:, 1:-1].ravel()
    packed = PackedBlocks.for_tokenizer(stream, tokenizer, 32)
    packed_train, packed_held = split_heldout(packed, 3)
    assert isinstance(packed_train, PackedBlocks) and len(packed_train) == len(blocks) - 3
    assert np.array_equal(packed_held, blocks[-3:])
    assert np.array_equal(packed_train[np.arange(len(packed_train))], blocks[:-3])


def test_the_loss_is_the_pooled_cross_entropy_over_the_masked_slots(tokenizer, blocks):
    """Uniform logits cost exactly log(V) at every slot, however the slots fall into batches."""
    vocab = tokenizer.get_vocab_size()
    result = heldout_set(tokenizer, blocks[:7]).evaluate(StubModel(vocab, "uniform"), NO_AUTOCAST)
    assert result["heldout_mlm_loss"] == pytest.approx(math.log(vocab))


def test_only_masked_slots_are_scored_against_their_original_token(tokenizer, blocks):
    """A model that repeats what a slot shows is right exactly where masking kept the original: the accuracy is the
    kept share of the used masked slots, so [MASK] slots count as wrong, and no unmasked position is scored."""
    held = heldout_set(tokenizer, blocks[:7])
    used = sum(int(m.valid.sum()) for m in held.batches)
    kept = sum(int((m.valid & ~m.mask_token_slots).sum()) for m in held.batches)
    maskable = sum(int((~torch.isin(m.input_ids, torch.tensor(sorted(special_token_ids(tokenizer).values())))).sum())
                   for m in held.batches)
    assert 0 < kept < used < maskable and used == sum(int(m.is_masked.sum()) for m in held.batches)
    result = held.evaluate(StubModel(tokenizer.get_vocab_size(), "copy"), NO_AUTOCAST)
    assert result["heldout_mlm_accuracy"] == pytest.approx(kept / used)


def test_the_masks_are_fixed_and_an_evaluation_changes_nothing_in_the_run(tokenizer, blocks, params):
    first, again = heldout_set(tokenizer, blocks[:7]), heldout_set(tokenizer, blocks[:7])
    for a, b in zip(first.batches, again.batches, strict=True):
        assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.positions, b.positions)
    whole = heldout_set(tokenizer, blocks[:7], batch_size=7).batches[0]  # runs with other batch sizes: same masks
    assert torch.equal(torch.cat([b.input_ids for b in first.batches]), whole.input_ids)
    assert torch.equal(torch.cat([b.positions for b in first.batches]), whole.positions)
    trainer = Trainer(params, 3, tokenizer, blocks, Distributed())
    held = trainer.heldout_set(blocks[-3:])
    trainer.model.train()
    rng = torch.get_rng_state()
    scores = held.evaluate(trainer.model, trainer.autocast)
    assert trainer.model.training and torch.equal(torch.get_rng_state(), rng)
    assert held.evaluate(trainer.model, trainer.autocast) == scores
    assert 0 < scores["heldout_mlm_loss"] and 0 <= scores["heldout_mlm_accuracy"] <= 1


@pytest.mark.parametrize("objective", ["electra", "mlm"])
def test_a_run_reports_the_heldout_figures_every_eval_every_steps_and_at_the_end(tokenizer, blocks, params, objective):
    logged: list[tuple[int, dict]] = []
    run = params.model_copy(update={"objective": objective, "max_steps": 25})
    _, final = pretrain(run, 3, tokenizer, blocks, lambda step, metrics: logged.append((step, metrics)))
    evaluated = [step for step, metrics in logged if "heldout_mlm_loss" in metrics]
    assert [step for step, _ in logged] == [5, 10, 15, 20, 25] and evaluated == [10, 20, 25]
    assert final["heldout_blocks"] == 3 and {"heldout_mlm_loss", "heldout_mlm_accuracy"} <= set(final)
    again: list[tuple[int, dict]] = []
    pretrain(run, 3, tokenizer, blocks, lambda step, metrics: again.append((step, metrics)))
    assert [m.get("heldout_mlm_loss") for _, m in again] == [m.get("heldout_mlm_loss") for _, m in logged]
