"""ELECTRA generator + discriminator with shared embeddings and the replaced-token-detection objective.

Clark et al. (2020), as google-research/electra implements it:

1. ``mask_tokens``: pick 15% of the real tokens (never [CLS]/[SEP]/padding); 85% of them become [MASK], the rest
   keep the original token.
2. The generator, a narrow masked language model, predicts the originals, with logits computed at masked
   positions only.
3. ``sample_replacements``: Gumbel-max samples from the generator's softmax, with no gradient through sampling.
4. ``replaced_token_labels``: the discriminator's target is 1 where the sampled token differs from the original; a
   sample that equals the original counts as original.
5. Loss = L_MLM + disc_weight * L_RTD, the RTD loss averaged over all real tokens.

The generator and discriminator share the embedding module (token, position and type embeddings and its
LayerNorm), so the generator's output projection is tied to the same token embeddings. Not a GAN: the generator is
trained only by its own MLM loss.

Both halves are transformers classes, so the discriminator saves with ``save_pretrained`` and loads with
``ElectraForPreTraining`` or ``ElectraForTokenClassification.from_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

from electra_model.config import ArchitectureParams


def electra_configs(
    arch: ArchitectureParams, vocab_size: int, max_positions: int, pad_token_id: int
) -> tuple[ElectraConfig, ElectraConfig]:
    """Discriminator and generator configs: same depth and embeddings, the generator a fraction of the width."""
    shared = dict(
        vocab_size=vocab_size,
        embedding_size=arch.embedding_size,
        num_hidden_layers=arch.num_layers,
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
        attn_implementation="sdpa",
    )
    discriminator = ElectraConfig(
        hidden_size=arch.hidden_size,
        num_attention_heads=arch.num_heads,
        intermediate_size=arch.intermediate_size,
        **shared,
    )
    generator = ElectraConfig(
        hidden_size=arch.generator_hidden_size,
        num_attention_heads=arch.generator_heads,
        intermediate_size=max(1, round(arch.intermediate_size * arch.generator_fraction)),
        **shared,
    )
    return discriminator, generator


@dataclass(frozen=True)
class MaskedBatch:
    """The generator's input and which positions it must reconstruct."""

    input_ids: torch.Tensor
    is_masked: torch.Tensor


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_token_id: int,
    mask_prob: float,
    mask_token_prob: float,
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """Choose ``mask_prob`` of the maskable positions; replace ``mask_token_prob`` of them with [MASK], keep the rest."""
    draw = torch.rand(input_ids.shape, device=input_ids.device, generator=generator)
    is_masked = (draw < mask_prob) & maskable
    use_mask_token = torch.rand(input_ids.shape, device=input_ids.device, generator=generator) < mask_token_prob
    masked_ids = torch.where(is_masked & use_mask_token, torch.full_like(input_ids, mask_token_id), input_ids)
    return MaskedBatch(masked_ids, is_masked)


def sample_replacements(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gumbel-max sampling (temperature 1) from the generator's softmax; no gradient flows through it."""
    with torch.no_grad():
        uniform = torch.rand(logits.shape, device=logits.device, generator=generator, dtype=torch.float32)
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-9)).clamp_min(1e-9))
        return (logits.detach().float() + gumbel).argmax(dim=-1)


def replaced_token_labels(corrupted_ids: torch.Tensor, original_ids: torch.Tensor) -> torch.Tensor:
    """1.0 where the token was actually changed; a sample equal to the original is labelled original (0.0)."""
    return (corrupted_ids != original_ids).float()


@dataclass(frozen=True)
class ElectraOutput:
    """The combined loss and the pieces worth logging."""

    loss: torch.Tensor
    mlm_loss: torch.Tensor
    rtd_loss: torch.Tensor
    mlm_correct: torch.Tensor
    mlm_count: torch.Tensor
    rtd_logits: torch.Tensor
    rtd_labels: torch.Tensor
    real_tokens: torch.Tensor


class ElectraPretrainingModel(nn.Module):
    """Generator (MLM) and discriminator (RTD) trained jointly, sharing one embedding module."""

    def __init__(self, discriminator_config: ElectraConfig, generator_config: ElectraConfig, disc_weight: float):
        super().__init__()
        self.discriminator = ElectraForPreTraining(discriminator_config)
        self.generator = ElectraForMaskedLM(generator_config)
        self.disc_weight = disc_weight
        self._share_embeddings()

    def _share_embeddings(self) -> None:
        """One embedding module for both, and the generator's output layer tied to its token embeddings."""
        shared = self.discriminator.electra.embeddings
        self.generator.electra.embeddings = shared
        self.generator.generator_lm_head.weight = shared.word_embeddings.weight

    def generator_logits(self, masked: MaskedBatch, attention_mask: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits at the masked positions only: (number of masked tokens, vocab)."""
        hidden = self.generator.electra(masked.input_ids, attention_mask=attention_mask).last_hidden_state
        selected = hidden[masked.is_masked]
        return self.generator.generator_lm_head(self.generator.generator_predictions(selected))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        masked: MaskedBatch,
        sampler: torch.Generator | None = None,
    ) -> ElectraOutput:
        original = input_ids[masked.is_masked]
        mlm_logits = self.generator_logits(masked, attention_mask)
        # A sum over masked tokens divided by their count (at least 1) stays finite for a batch with no masks.
        mlm_count = torch.tensor(original.numel(), device=input_ids.device)
        mlm_loss = F.cross_entropy(mlm_logits.float(), original, reduction="sum") / mlm_count.clamp_min(1)

        corrupted = input_ids.clone()
        corrupted[masked.is_masked] = sample_replacements(mlm_logits, sampler)
        rtd_labels = replaced_token_labels(corrupted, input_ids)

        rtd_logits = self.discriminator(corrupted, attention_mask=attention_mask).logits
        real = attention_mask.bool()
        rtd_loss = F.binary_cross_entropy_with_logits(rtd_logits[real].float(), rtd_labels[real])
        return ElectraOutput(
            loss=mlm_loss + self.disc_weight * rtd_loss,
            mlm_loss=mlm_loss,
            rtd_loss=rtd_loss,
            mlm_correct=(mlm_logits.argmax(-1) == original).sum().detach(),
            mlm_count=mlm_count,
            rtd_logits=rtd_logits.detach(),
            rtd_labels=rtd_labels,
            real_tokens=real,
        )
