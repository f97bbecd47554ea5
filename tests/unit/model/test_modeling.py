"""Pins the ELECTRA invariants of Clark et al. (2020) that modeling.py implements."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    ElectraForPreTraining,
    ElectraForTokenClassification,
)

from electra_model.config import load_params
from electra_model.pretraining.backbones import BACKBONES
from electra_model.pretraining.modeling import (
    ElectraPretrainingModel,
    MaskedLMPretrainingModel,
    electra_configs,
    mask_slots,
    mask_tokens,
    replaced_token_labels,
    sample_replacements,
)

VOCAB, PAD, CLS, SEP, MASK = 97, 0, 2, 3, 4


@pytest.fixture
def presets():
    return load_params("params.yaml").pretrain.presets


@pytest.fixture
def model(presets):
    discriminator, generator = electra_configs(presets["tiny"], VOCAB, 32, PAD, 0.1, "hf", "electra")
    torch.manual_seed(0)
    return ElectraPretrainingModel(discriminator, generator, disc_weight=50.0)


@pytest.fixture(params=sorted(BACKBONES))
def any_backbone(request, presets):
    """The tiny pair of each ``pretrain.backbone``."""
    discriminator, generator = electra_configs(presets["tiny"], VOCAB, 32, PAD, 0.1, "hf", request.param)
    torch.manual_seed(0)
    return ElectraPretrainingModel(discriminator, generator, disc_weight=50.0)


def batch(rows: int = 4, length: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, VOCAB, (rows, length))
    ids[:, 0], ids[:, -1] = CLS, SEP
    ids[0, 20:] = PAD
    return ids, (ids != PAD).long()


def test_embeddings_are_the_same_tensors(model):
    disc, gen = model.discriminator.electra.embeddings, model.generator.electra.embeddings
    assert gen is disc
    assert gen.word_embeddings.weight is disc.word_embeddings.weight
    assert gen.position_embeddings.weight is disc.position_embeddings.weight
    assert gen.LayerNorm.weight is disc.LayerNorm.weight
    assert model.generator.generator_lm_head.weight is disc.word_embeddings.weight


@pytest.mark.parametrize(
    ("preset", "hidden", "gen_hidden", "gen_heads"), [("tiny", 128, 32, 1), ("small", 256, 64, 1), ("base", 768, 256, 4)]
)
def test_generator_has_discriminator_depth_and_a_fraction_of_its_width(presets, preset, hidden, gen_hidden, gen_heads):
    discriminator, generator = electra_configs(presets[preset], VOCAB, 128, PAD, 0.1, "hf", "electra")
    assert discriminator.hidden_size == hidden
    assert generator.hidden_size == gen_hidden
    assert generator.num_attention_heads == gen_heads
    assert generator.num_hidden_layers == discriminator.num_hidden_layers
    assert generator.embedding_size == discriminator.embedding_size


def test_masking_proportions_and_excluded_positions():
    ids = torch.randint(5, VOCAB, (64, 128))
    ids[:, 0], ids[:, -1], ids[:, 100:] = CLS, SEP, PAD
    maskable = ~torch.isin(ids, torch.tensor([CLS, SEP, PAD]))
    masked = mask_tokens(ids, maskable, MASK, 0.15, 0.85, torch.Generator().manual_seed(0))
    assert not masked.is_masked[~maskable].any()
    rate = masked.is_masked.sum() / maskable.sum()
    assert abs(rate.item() - 0.15) < 0.01
    became_mask = (masked.input_ids == MASK) & masked.is_masked
    share = became_mask.sum() / masked.is_masked.sum()
    assert abs(share.item() - 0.85) < 0.02
    kept = masked.is_masked & ~became_mask
    assert torch.equal(masked.input_ids[kept], ids[kept])  # the other 15% keep the original: no random tokens
    assert torch.equal(masked.input_ids[~masked.is_masked], ids[~masked.is_masked])


def test_full_rows_mask_exactly_the_reference_count_of_distinct_positions():
    ids = torch.randint(5, VOCAB, (16, 128))
    ids[:, 0], ids[:, -1] = CLS, SEP
    maskable = ~torch.isin(ids, torch.tensor([CLS, SEP, PAD]))
    masked = mask_tokens(ids, maskable, MASK, 0.15, 0.85, torch.Generator().manual_seed(0))
    assert mask_slots(128, 0.15) == 19  # google-research/electra: max_predictions_per_seq for 128 tokens
    assert masked.valid.all() and (masked.is_masked.sum(1) == 19).all()
    assert torch.equal(masked.original, ids.gather(1, masked.positions))


def test_sample_equal_to_original_is_labelled_original():
    original = torch.tensor([[5, 6, 7, 8]])
    corrupted = torch.tensor([[5, 9, 7, 10]])
    assert replaced_token_labels(corrupted, original).tolist() == [[0.0, 1.0, 0.0, 1.0]]


def test_sampling_is_not_differentiable():
    logits = torch.randn(6, VOCAB, requires_grad=True)
    assert not sample_replacements(logits).requires_grad


def test_samples_follow_the_generator_softmax():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5]).log_softmax(-1)
    draws = sample_replacements(logits.expand(40_000, -1), torch.Generator().manual_seed(0))
    frequencies = torch.bincount(draws, minlength=5).float() / len(draws)
    assert torch.allclose(frequencies, logits.exp(), atol=0.01), frequencies


def test_a_higher_temperature_flattens_the_samples_toward_uniform():
    logits = torch.tensor([4.0, 0.0, 0.0, 0.0, 0.0]).log_softmax(-1)
    for temperature in (1.0, 4.0):
        draws = sample_replacements(logits.expand(40_000, -1), torch.Generator().manual_seed(0), temperature=temperature)
        frequencies = torch.bincount(draws, minlength=5).float() / len(draws)
        expected = (logits / temperature).softmax(-1)
        assert torch.allclose(frequencies, expected, atol=0.01), (temperature, frequencies)
    assert expected[0] < 0.5  # at 4, the favourite is drawn far less often than at 1 (0.93)


def test_special_tokens_are_never_sampled():
    logits = torch.zeros(2000, VOCAB)
    logits[:, [PAD, CLS, SEP, MASK]] = 5.0  # even where the generator favours them
    never = torch.tensor([PAD, CLS, SEP, MASK])
    draws = sample_replacements(logits, torch.Generator().manual_seed(0), never)
    assert not torch.isin(draws, never).any()


def test_rtd_loss_sends_no_gradient_into_the_generator(any_backbone):
    model = any_backbone
    ids, attention = batch()
    maskable = ~torch.isin(ids, torch.tensor([CLS, SEP, PAD]))
    masked = mask_tokens(ids, maskable, MASK, 0.3, 0.85, torch.Generator().manual_seed(1))
    output = model(ids, attention, masked, torch.Generator().manual_seed(2))
    shared = {id(p) for p in model.discriminator.parameters()}
    generator_only = [p for p in model.generator.parameters() if id(p) not in shared]
    assert generator_only
    rtd_grads = torch.autograd.grad(output.rtd_loss, generator_only, allow_unused=True, retain_graph=True)
    assert all(g is None for g in rtd_grads)
    mlm_grads = torch.autograd.grad(output.mlm_loss, generator_only, allow_unused=True)
    assert all(g is not None for g in mlm_grads)  # the generator learns from its own MLM loss only


def test_loss_is_mlm_plus_weighted_rtd(any_backbone):
    model = any_backbone
    ids, attention = batch()
    maskable = ~torch.isin(ids, torch.tensor([CLS, SEP, PAD]))
    masked = mask_tokens(ids, maskable, MASK, 0.3, 0.85, torch.Generator().manual_seed(1))
    output = model(ids, attention, masked, torch.Generator().manual_seed(2))
    assert torch.allclose(output.loss, output.mlm_loss + 50.0 * output.rtd_loss)
    model.disc_weight = 1.0
    again = model(ids, attention, masked, torch.Generator().manual_seed(2))
    assert torch.allclose(again.loss, again.mlm_loss + again.rtd_loss)


def test_discriminator_round_trips_through_transformers(model, tmp_path):
    model.discriminator.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = ElectraForPreTraining.from_pretrained(tmp_path)
    ids, attention = batch()
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(ids, attention_mask=attention).logits, model.discriminator(ids, attention_mask=attention).logits, atol=1e-6)
    classifier = ElectraForTokenClassification.from_pretrained(tmp_path, num_labels=5)
    assert torch.equal(
        classifier.electra.embeddings.word_embeddings.weight, model.discriminator.electra.embeddings.word_embeddings.weight
    )


@pytest.mark.parametrize(("init_scale", "disc_std", "gen_std"), [("hf", 0.02, 0.02), ("width", 128**-0.5, 32**-0.5)])
def test_the_init_is_hf_electras_or_scaled_to_each_halfs_width(presets, init_scale, disc_std, gen_std):
    discriminator, generator = electra_configs(presets["tiny"], VOCAB, 32, PAD, 0.1, init_scale, "electra")
    assert (discriminator.initializer_range, generator.initializer_range) == pytest.approx((disc_std, gen_std))
    torch.manual_seed(0)
    model = ElectraPretrainingModel(discriminator, generator, disc_weight=50.0)
    query = model.discriminator.electra.encoder.layer[0].attention.self.query.weight
    assert query.std().item() == pytest.approx(disc_std, rel=0.05)


def test_a_pre_ln_generator_narrower_than_its_discriminator_keeps_its_own_tied_embeddings(presets):
    """RoBERTa-PreLayerNorm has no embedding projection: a 32-wide generator cannot read 128-wide embeddings."""
    discriminator, generator = electra_configs(presets["tiny"], VOCAB, 32, PAD, 0.1, "hf", "roberta_prelayernorm")
    model = ElectraPretrainingModel(discriminator, generator, disc_weight=50.0)
    own = model.generator.base_model.embeddings
    assert own is not model.discriminator.base_model.embeddings
    assert own.word_embeddings.weight.shape == (VOCAB, 32)
    assert model.generator.lm_head.decoder.weight is own.word_embeddings.weight
    assert discriminator.max_position_embeddings == 32 + PAD + 1  # RoBERTa numbers positions after the padding id


def test_a_pre_ln_generator_of_the_discriminators_width_shares_its_embeddings(presets):
    whole = presets["tiny"].model_copy(update={"generator_fraction": 1.0})
    model = ElectraPretrainingModel(
        *electra_configs(whole, VOCAB, 32, PAD, 0.1, "hf", "roberta_prelayernorm"), disc_weight=50.0
    )
    shared = model.discriminator.base_model.embeddings
    assert model.generator.base_model.embeddings is shared
    assert model.generator.lm_head.decoder.weight is shared.word_embeddings.weight


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_an_mlm_only_encoder_ties_its_output_layer_to_its_token_embeddings(presets, backbone):
    discriminator, _ = electra_configs(presets["tiny"], VOCAB, 32, PAD, 0.1, "hf", backbone)
    encoder = MaskedLMPretrainingModel(discriminator).encoder
    assert encoder.get_output_embeddings().weight is encoder.base_model.embeddings.word_embeddings.weight


def test_every_backbone_saves_and_loads_under_the_auto_task_heads(any_backbone, tmp_path):
    """What fine-tuning needs of the saved discriminator: both Auto heads load the very body it trained."""
    discriminator = any_backbone.discriminator
    discriminator.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    ids, attention = batch()
    discriminator.eval()
    with torch.no_grad():
        body = discriminator.base_model(ids, attention_mask=attention).last_hidden_state
    for auto in (AutoModelForTokenClassification, AutoModelForSequenceClassification):
        loaded, info = auto.from_pretrained(tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
        assert type(loaded.base_model) is type(discriminator.base_model)
        new = {*info["missing_keys"], *(entry[0] for entry in info["mismatched_keys"])}
        assert new and all(key.startswith("classifier.") for key in new)
        with torch.no_grad():
            again = loaded.eval().base_model(ids, attention_mask=attention).last_hidden_state
        assert torch.allclose(again, body, atol=1e-6)
