"""The held-out masked-LM figure of a pretraining run: loss and top-1 accuracy at masked positions of blocks the run
never trains on, read against the corpus's unigram and bigram entropies (:mod:`electra_model.data.entropy`) to see
a plateau.

The held-out slice is the corpus's last blocks (:func:`split_heldout`). They are masked once, with the training's
masking rule but a fixed seed of their own (:data:`HELDOUT_SEED`, not the run's), so every evaluation of every run
on the same corpus and tokenizer (with the same ``max_seq_len``, ``eval_blocks`` and masking rates) scores the very
same positions, whatever its seed or batch size: the curve moves only because the model does. The
model that answers is the one that predicts masked tokens: the generator of an ELECTRA run, the encoder of an
MLM-only one; dropout is off while it answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from electra_model.data.blocks import Blocks, PackedBlocks
from electra_model.errors import ElectraError
from electra_model.pretraining.modeling import MaskedBatch, PretrainingModel, mask_tokens, masked_lm_loss

HELDOUT_SEED = 20_201_103  # fixed, not a run's seed: runs with different seeds are scored on the same masks
HELDOUT_MAX_SHARE = 10  # the held-out slice is at most 1/HELDOUT_MAX_SHARE of the corpus's blocks


def heldout_count(n_blocks: int, requested: int) -> int:
    """Blocks to hold out: ``requested``, but at most a tenth of the corpus and at least one block, so a small
    corpus still trains on most of its text."""
    if n_blocks < 2:
        raise ElectraError(
            f"the corpus packs into {n_blocks} block(s): pretraining needs at least 2 (one held out for "
            "evaluation); use a larger corpus or a smaller pretrain.max_seq_len"
        )
    return max(1, min(requested, n_blocks // HELDOUT_MAX_SHARE))


def split_heldout(blocks: Blocks, requested: int) -> tuple[Blocks, np.ndarray]:
    """The blocks to train on and the held-out tail (see :func:`heldout_count`), as an in-memory array."""
    n_train = len(blocks) - heldout_count(len(blocks), requested)
    heldout = blocks[np.arange(n_train, len(blocks))]
    train = blocks.head(n_train) if isinstance(blocks, PackedBlocks) else blocks[:n_train]
    return train, heldout


@dataclass(frozen=True)
class HeldOutSet:
    """The held-out blocks, masked once, in batches on the device."""

    batches: tuple[MaskedBatch, ...]

    @classmethod
    def build(
        cls,
        blocks: np.ndarray,
        unmaskable: torch.Tensor,
        mask_id: int,
        mask_prob: float,
        mask_token_prob: float,
        batch_size: int,
    ) -> HeldOutSet:
        """Mask ``blocks`` as training does, with the fixed :data:`HELDOUT_SEED`, all at once (so the masks do not
        depend on ``batch_size``), then cut into batches; ``unmaskable`` holds the special token ids (on the device
        the model is on)."""
        device = unmaskable.device
        sampler = torch.Generator(device=device).manual_seed(HELDOUT_SEED)
        input_ids = torch.from_numpy(blocks.astype(np.int64)).to(device)
        maskable = ~torch.isin(input_ids, unmaskable)
        masked = mask_tokens(input_ids, maskable, mask_id, mask_prob, mask_token_prob, sampler)
        parts = (masked.input_ids, masked.positions, masked.valid, masked.original)
        return cls(tuple(
            MaskedBatch(*(part[start : start + batch_size] for part in parts))
            for start in range(0, len(blocks), batch_size)
        ))

    @torch.no_grad()
    def evaluate(self, model: PretrainingModel, autocast: torch.autocast) -> dict[str, float]:
        """``heldout_mlm_loss`` (mean cross-entropy in nats over every used masked slot, pooled over batches) and
        ``heldout_mlm_accuracy`` (top-1 at those slots). The model is in eval mode meanwhile and returned to the
        mode it was in."""
        was_training = model.training
        model.eval()
        device = self.batches[0].input_ids.device
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        count = torch.zeros((), dtype=torch.long, device=device)
        for masked in self.batches:
            with autocast:
                logits = model.mlm_logits(masked, None)
            mean_loss, slot_correct = masked_lm_loss(logits, masked)
            used = masked.valid.sum()
            loss_sum += mean_loss.double() * used
            correct += slot_correct.sum()
            count += used
        model.train(was_training)
        n = max(1, int(count.item()))
        return {"heldout_mlm_loss": float(loss_sum.item()) / n, "heldout_mlm_accuracy": int(correct.item()) / n}
