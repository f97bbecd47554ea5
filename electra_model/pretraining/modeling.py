"""ELECTRA generator + discriminator with shared embeddings and the replaced-token-detection objective.

Clark et al. (2020), as google-research/electra implements it (pretrain_helpers.py, run_pretraining.py):

1. ``mask_tokens``: pick 15% of the real tokens (never [CLS]/[SEP]/padding), a fixed number of slots per row;
   85% of them become [MASK], the rest keep the original token (no random tokens).
2. The generator, a narrow masked language model, predicts the originals, with logits computed at the masked
   positions only (gathered first, so the vocabulary projection costs 15% of a full one).
3. ``sample_replacements``: Gumbel-max samples from the generator's softmax, with no gradient through sampling.
4. ``replaced_token_labels``: the discriminator's target is 1 where the sampled token differs from the original; a
   sample that equals the original counts as original.
5. Loss = L_MLM + disc_weight * L_RTD, the RTD loss averaged over all real tokens.

The generator and discriminator share the embedding module (token, position and type embeddings and its
LayerNorm), so the generator's output projection is tied to the same token embeddings. Not a GAN: the generator is
trained only by its own MLM loss. ``sampling_temperature`` divides the generator's logits before sampling, as the
reference's ``temperature`` does (1.0 there and by default here).

:class:`MaskedLMPretrainingModel` is the paper's comparison arm (``pretrain.objective: mlm``): the discriminator's
shape trained by MLM alone on the same masking, BERT-style, so that the same compute can say whether replaced-token
detection beats MLM.

Every shape in the forward pass is static (B x L tokens, B x N masked slots), so nothing in it waits for the host:
no boolean indexing, no data-dependent sizes. Both halves are transformers classes of the chosen ``pretrain.backbone``
(:mod:`electra_model.pretraining.backbones`: post-LN ELECTRA, or pre-LN RoBERTa-PreLayerNorm), so the discriminator
saves with ``save_pretrained`` and loads with ``AutoModelForTokenClassification.from_pretrained``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from electra_model.config import ArchitectureParams
from electra_model.pretraining.backbones import backbone_configs, backbone_of


def init_std(init_scale: str, hidden_size: int) -> dict[str, float]:
    """The config's ``initializer_range`` for ``init_scale``: ``hf`` keeps transformers' ELECTRA default (0.02);
    ``width`` is 1/sqrt(hidden_size), the scale at which a layer's outputs start at unit variance. The fixed 0.02 is
    that scale only at width 2,500; at the tiny width of 128 it is 4x smaller, which a copy task found to lengthen
    the early plateau (benchmarks/RESULTS.md measures it on text). A new head put on the saved model at fine-tuning
    draws from the same std, as the config carries it."""
    return {} if init_scale == "hf" else {"initializer_range": hidden_size**-0.5}


def electra_configs(
    arch: ArchitectureParams,
    vocab_size: int,
    max_positions: int,
    pad_token_id: int,
    dropout: float,
    init_scale: str,
    backbone: str,
) -> tuple[PretrainedConfig, PretrainedConfig]:
    """Discriminator and generator configs of ``backbone`` (:mod:`electra_model.pretraining.backbones`): same depth
    and embedding width, the generator a fraction of the width."""
    return backbone_configs(
        arch, backbone, vocab_size, max_positions, pad_token_id, dropout,
        init_std(init_scale, arch.hidden_size), init_std(init_scale, arch.generator_hidden_size),
    )


# ------------------------------------------------------------------------------------------------ corruption
@dataclass(frozen=True)
class MaskedBatch:
    """The generator's input and the positions it must reconstruct: ``slots`` per row, ``valid`` where used."""

    input_ids: torch.Tensor  # (B, L), [MASK] at 85% of the chosen positions
    positions: torch.Tensor  # (B, N) chosen positions, distinct within a row
    valid: torch.Tensor  # (B, N) bool; rows with fewer real tokens use fewer of their N slots
    original: torch.Tensor  # (B, N) the original token at each position

    @property
    def mask_token_slots(self) -> torch.Tensor:
        """(B, N) bool: the used slots shown to the generator as [MASK]; the other used slots kept their token."""
        return self.valid & (self.input_ids.gather(1, self.positions) != self.original)

    @property
    def is_masked(self) -> torch.Tensor:
        """(B, L) bool: the positions the generator must reconstruct."""
        return torch.zeros_like(self.input_ids, dtype=torch.bool).scatter(1, self.positions, self.valid)


UNMASKABLE = ("[CLS]", "[SEP]", "[PAD]", "[MASK]")
"""Tokens a masked position never falls on: the masked-LM loss, and the entropies it is read against, are over the
other tokens."""


def mask_slots(seq_len: int, mask_prob: float) -> int:
    """Masked slots per row, the reference's ``max_predictions_per_seq``: a full row masks exactly this many."""
    return max(1, round(seq_len * mask_prob))


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_token_id: int,
    mask_prob: float,
    mask_token_prob: float,
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """Mask ``round(mask_prob * maskable)`` positions per row, drawn without replacement; [MASK] at
    ``mask_token_prob`` of them, the original token at the rest.

    A fixed number of slots per row (as the reference does) keeps every shape static, so gathering the masked
    positions needs no host-device synchronisation.
    """
    rows, length = input_ids.shape
    slots = mask_slots(length, mask_prob)
    noise = torch.rand((rows, length + slots), device=input_ids.device, generator=generator)
    scores = noise[:, :length].masked_fill(~maskable, -1.0)
    positions = scores.topk(slots, dim=1).indices
    n_maskable = maskable.sum(dim=1, keepdim=True)
    wanted = torch.minimum((n_maskable * mask_prob).round().long().clamp_min(1), n_maskable)
    valid = torch.arange(slots, device=input_ids.device) < wanted
    original = input_ids.gather(1, positions)
    use_mask_token = valid & (noise[:, length:] < mask_token_prob)
    replaced = torch.where(use_mask_token, torch.full_like(original, mask_token_id), original)
    return MaskedBatch(input_ids.scatter(1, positions, replaced), positions, valid, original)


def sample_replacements(
    logits: torch.Tensor,
    generator: torch.Generator | None = None,
    never: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Gumbel-max sampling from the generator's softmax at ``temperature``; no gradient flows through it.
    A temperature above 1 flattens the distribution, so replacements are less plausible and easier to detect.

    ``never`` holds token ids that can never be the original at a masked position ([PAD], [CLS], [SEP], [MASK]).
    google-research/electra leaves them samplable; a sampled one is a free "replaced" signal to the discriminator,
    so they are excluded here. The noise is ``-log(-log(u + eps) + eps)``, as in the reference.
    """
    with torch.no_grad():
        noise = torch.rand(logits.shape, device=logits.device, generator=generator)
        scores = logits.detach().float() / temperature - torch.log(-torch.log(noise + 1e-9) + 1e-9)
        if never is not None:
            scores.index_fill_(-1, never, float("-inf"))
        return scores.argmax(dim=-1)


def replaced_token_labels(corrupted_ids: torch.Tensor, original_ids: torch.Tensor) -> torch.Tensor:
    """1.0 where the token was actually changed; a sample equal to the original is labelled original (0.0)."""
    return (corrupted_ids != original_ids).float()


# ------------------------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class ElectraOutput:
    """The combined loss and the pieces worth logging."""

    loss: torch.Tensor
    mlm_loss: torch.Tensor
    rtd_loss: torch.Tensor
    mlm_correct: torch.Tensor
    mlm_count: torch.Tensor
    mlm_slot_correct: torch.Tensor  # (B, N) bool: the generator's top guess is the original, at a used slot
    rtd_logits: torch.Tensor
    rtd_labels: torch.Tensor
    real_tokens: torch.Tensor


def masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over the weighted entries; stays finite when every weight is zero."""
    return (values * weights).sum() / weights.sum().clamp_min(1)


def masked_lm_logits(
    model: PreTrainedModel, masked: MaskedBatch, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """Vocabulary logits at the masked slots only: (B, N, vocab)."""
    hidden = model.base_model(masked.input_ids, attention_mask=attention_mask).last_hidden_state
    index = masked.positions.unsqueeze(-1).expand(-1, -1, hidden.size(-1))
    return backbone_of(model.config).masked_lm_head(model, hidden.gather(1, index))


def masked_lm_loss(logits: torch.Tensor, masked: MaskedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """The MLM loss over the used slots, and where the top guess is the original: (B, N) bool."""
    token_loss = F.cross_entropy(logits.float().transpose(1, 2), masked.original, reduction="none")
    slot_correct = (logits.argmax(-1) == masked.original) & masked.valid
    return masked_mean(token_loss, masked.valid.float()), slot_correct


class ElectraPretrainingModel(nn.Module):
    """Generator (MLM) and discriminator (RTD) trained jointly, sharing one embedding module."""

    def __init__(
        self,
        discriminator_config: PretrainedConfig,
        generator_config: PretrainedConfig,
        disc_weight: float,
        never_sample: Sequence[int] = (),
        sampling_temperature: float = 1.0,
    ):
        super().__init__()
        self.backbone = backbone_of(discriminator_config)
        self.discriminator = self.backbone.discriminator_class(discriminator_config)
        self.generator = self.backbone.masked_lm_class(generator_config)
        self.disc_weight = disc_weight
        self.sampling_temperature = sampling_temperature
        self.register_buffer("never_sample", torch.tensor(sorted(never_sample), dtype=torch.long), persistent=False)
        self._share_embeddings()

    def _share_embeddings(self) -> None:
        """One embedding module for both where the generator can read it (ELECTRA's embedding projection adapts
        the width; a backbone without one shares only at equal widths), and the generator's output layer tied to its
        token embeddings."""
        shared = self.discriminator.base_model.embeddings
        if self.backbone.has_embedding_projection or shared.word_embeddings.embedding_dim == self.generator.config.hidden_size:
            self.generator.base_model.embeddings = shared
        self.backbone.tie_output_to_input(self.generator, self.generator.base_model.embeddings)

    @property
    def finetuning_model(self) -> PreTrainedModel:
        """What fine-tuning starts from: the discriminator."""
        return self.discriminator

    @property
    def bodies(self) -> tuple[nn.Module, ...]:
        """The transformer bodies, for torch.compile."""
        return self.generator.base_model, self.discriminator.base_model

    def mlm_logits(self, masked: MaskedBatch, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The generator's vocabulary logits at the masked slots only: (B, N, vocab)."""
        return masked_lm_logits(self.generator, masked, attention_mask)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        masked: MaskedBatch,
        sampler: torch.Generator | None = None,
    ) -> ElectraOutput:
        """``attention_mask`` None means every token is real (packed blocks), which lets SDPA skip the mask."""
        mlm_logits = self.mlm_logits(masked, attention_mask)
        mlm_loss, slot_correct = masked_lm_loss(mlm_logits, masked)

        sampled = sample_replacements(mlm_logits, sampler, self.never_sample, self.sampling_temperature)
        corrupted = input_ids.scatter(1, masked.positions, torch.where(masked.valid, sampled, masked.original))
        rtd_labels = replaced_token_labels(corrupted, input_ids)

        rtd_logits = self.backbone.rtd_logits(self.discriminator, corrupted, attention_mask)
        real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        token_rtd_loss = F.binary_cross_entropy_with_logits(rtd_logits.float(), rtd_labels, reduction="none")
        rtd_loss = masked_mean(token_rtd_loss, real.float())
        return ElectraOutput(
            loss=mlm_loss + self.disc_weight * rtd_loss,
            mlm_loss=mlm_loss,
            rtd_loss=rtd_loss,
            mlm_correct=slot_correct.sum().detach(),
            mlm_count=masked.valid.sum(),
            mlm_slot_correct=slot_correct.detach(),
            rtd_logits=rtd_logits.detach(),
            rtd_labels=rtd_labels,
            real_tokens=real,
        )


class MaskedLMPretrainingModel(nn.Module):
    """The discriminator's shape trained by MLM alone (``pretrain.objective: mlm``): BERT's objective on ELECTRA's
    masking, the comparison arm of the paper. Its output has the RTD fields of an all-original batch (no loss, no
    replaced tokens), so the loop and its statistics are the same for both objectives."""

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        backbone = backbone_of(config)
        self.encoder = backbone.masked_lm_class(config)
        backbone.tie_output_to_input(self.encoder, self.encoder.base_model.embeddings)

    @property
    def finetuning_model(self) -> PreTrainedModel:
        """What fine-tuning starts from: the encoder (its MLM head is dropped on loading)."""
        return self.encoder

    @property
    def bodies(self) -> tuple[nn.Module, ...]:
        return (self.encoder.base_model,)

    def mlm_logits(self, masked: MaskedBatch, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder's vocabulary logits at the masked slots only: (B, N, vocab)."""
        return masked_lm_logits(self.encoder, masked, attention_mask)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        masked: MaskedBatch,
        sampler: torch.Generator | None = None,
    ) -> ElectraOutput:
        mlm_loss, slot_correct = masked_lm_loss(self.mlm_logits(masked, attention_mask), masked)
        real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        return ElectraOutput(
            loss=mlm_loss,
            mlm_loss=mlm_loss,
            rtd_loss=torch.zeros((), device=input_ids.device),
            mlm_correct=slot_correct.sum().detach(),
            mlm_count=masked.valid.sum(),
            mlm_slot_correct=slot_correct.detach(),
            rtd_logits=torch.zeros(input_ids.shape, device=input_ids.device),
            rtd_labels=torch.zeros(input_ids.shape, device=input_ids.device),
            real_tokens=real,
        )


PretrainingModel = ElectraPretrainingModel | MaskedLMPretrainingModel
