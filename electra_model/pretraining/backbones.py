"""The transformer encoders the ELECTRA objective can train (``pretrain.backbone``), all classes transformers ships.

``electra``: HF ELECTRA, post-LN (LayerNorm after each residual sum), an embedding projection when the embedding
width differs from the hidden width, and ``ElectraForPreTraining``'s two-layer RTD head.

``roberta_prelayernorm``: RoBERTa-PreLayerNorm, pre-LN (LayerNorm before attention and the feed-forward, one final
LayerNorm), the encoder shape budget-pretraining recipes use (cramming, academic-budget BERT); the issue's side
experiment found it leaves the masked-LM plateau sooner. Transformers ships no RTD head for it, so the discriminator
is ``RobertaPreLayerNormForTokenClassification`` with one label, whose linear ``classifier`` gives the per-token
"replaced" logit; fine-tuning replaces that head like ELECTRA's. Its embeddings have no projection, so they are
``hidden_size`` wide: the generator, narrower than the discriminator, cannot share them and keeps its own (its
output layer is tied to its own token embeddings). Positions start after the padding id, as RoBERTa numbers them,
so the position table is ``pad_token_id + 1`` rows longer than the longest block.

Every backbone's discriminator saves with ``save_pretrained`` and loads under ``AutoModelForTokenClassification``
and ``AutoModelForSequenceClassification``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import (
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    PretrainedConfig,
    PreTrainedModel,
    RobertaPreLayerNormConfig,
    RobertaPreLayerNormForMaskedLM,
    RobertaPreLayerNormForTokenClassification,
)

from electra_model.config import ArchitectureParams


@dataclass(frozen=True)
class Backbone:
    """How one transformers encoder family plays the generator, the discriminator and the MLM-only encoder."""

    config_class: type[PretrainedConfig]
    masked_lm_class: type[PreTrainedModel]
    discriminator_class: type[PreTrainedModel]
    has_embedding_projection: bool  # an embedding width apart from the hidden width (ELECTRA's embeddings_project)

    def config(self, hidden: int, heads: int, intermediate: int, embedding: int, **shared: Any) -> PretrainedConfig:
        if self.has_embedding_projection:
            shared["embedding_size"] = embedding
        else:
            shared["max_position_embeddings"] += shared["pad_token_id"] + 1  # positions pad+1 .. pad+L
            shared["num_labels"] = 1  # the discriminator's RTD logit, from the token-classification head
        return self.config_class(
            hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate, **shared
        )

    def masked_lm_head(self, model: PreTrainedModel, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits from the encoder's hidden states (at the masked slots only, as the caller gathers)."""
        if isinstance(model, ElectraForMaskedLM):
            return model.generator_lm_head(model.generator_predictions(hidden))
        return model.lm_head(hidden)

    def rtd_logits(self, model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
        """The discriminator's "replaced" logit per token: (B, L)."""
        logits = model(input_ids, attention_mask=attention_mask).logits
        return logits if logits.dim() == 2 else logits.squeeze(-1)

    @staticmethod
    def tie_output_to_input(model: PreTrainedModel, embeddings: nn.Module) -> None:
        """The masked-LM's vocabulary projection is the token embedding matrix (the reference ties them)."""
        model.get_output_embeddings().weight = embeddings.word_embeddings.weight


BACKBONES: dict[str, Backbone] = {
    "electra": Backbone(ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, has_embedding_projection=True),
    "roberta_prelayernorm": Backbone(
        RobertaPreLayerNormConfig,
        RobertaPreLayerNormForMaskedLM,
        RobertaPreLayerNormForTokenClassification,
        has_embedding_projection=False,
    ),
}
"""``pretrain.backbone`` values; the config model's Literal lists the same names."""


def backbone_configs(
    arch: ArchitectureParams,
    backbone: str,
    vocab_size: int,
    max_positions: int,
    pad_token_id: int,
    dropout: float,
    init_std: dict[str, float],
    generator_init_std: dict[str, float],
) -> tuple[PretrainedConfig, PretrainedConfig]:
    """Discriminator and generator configs of ``backbone``: same depth, the generator a fraction of the width."""
    chosen = BACKBONES[backbone]
    shared = dict(
        vocab_size=vocab_size,
        num_hidden_layers=arch.num_layers,
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        attn_implementation="sdpa",
    )
    discriminator = chosen.config(
        arch.hidden_size, arch.num_heads, arch.intermediate_size, arch.embedding_size, **init_std, **shared
    )
    generator = chosen.config(
        arch.generator_hidden_size,
        arch.generator_heads,
        max(1, round(arch.intermediate_size * arch.generator_fraction)),
        arch.embedding_size,
        **generator_init_std,
        **shared,
    )
    return discriminator, generator


def backbone_of(config: PretrainedConfig) -> Backbone:
    """The backbone a config belongs to."""
    return next(b for b in BACKBONES.values() if isinstance(config, b.config_class))
