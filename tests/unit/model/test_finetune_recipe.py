"""The seed tutorial's fine-tuning recipe as ``finetune.preset: seed`` (one ``-S`` flag), how a preset meets the
top-level keys, and ``finetune.mixed_precision``: autocast and a gradient scaler on CUDA only, fp32 on CPU."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
import torch
import yaml
from transformers import ElectraConfig, ElectraForPreTraining

from electra_model.config import FinetuneParams, parse_params
from electra_model.data.tokenizer import as_transformers_tokenizer, train_wordpiece
from electra_model.errors import ElectraError
from electra_model.tasks.classification.data import TextExample
from electra_model.tasks.classification.train import finetune_classifier
from electra_model.training import MixedPrecision, autocast_dtype
from tests.params import section

SEED_RECIPE = dict(learning_rate=5e-5, epochs=3, batch_size=16, weight_decay=0.01, layer_lr_decay=1.0,
                   warmup_ratio=0.0, adam_epsilon=1e-8, max_grad_norm=1.0, mixed_precision="fp16")


@pytest.fixture(scope="module")
def raw() -> dict:
    with open("params.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def finetune_with(raw: dict, **changes: object) -> FinetuneParams:
    changed = copy.deepcopy(raw)
    changed["finetune"].update(changes)
    return parse_params(changed).finetune


def recipe_of(params: FinetuneParams) -> dict:
    return {key: getattr(params, key) for key in SEED_RECIPE}


# ------------------------------------------------------------------------------------------------- presets
def test_preset_seed_is_the_tutorials_trainer_recipe(raw: dict) -> None:
    assert recipe_of(finetune_with(raw, preset="seed")) == SEED_RECIPE


def test_the_committed_default_has_no_preset_and_electras_recipe(raw: dict) -> None:
    params = parse_params(raw).finetune
    assert params.preset is None and (params.learning_rate, params.layer_lr_decay, params.epochs) == (3e-4, 0.8, 8)
    assert params.mixed_precision == "fp32"


def test_the_preset_wins_over_top_level_keys_and_a_key_set_in_the_preset_wins_over_it(raw: dict) -> None:
    params = finetune_with(raw, preset="seed", learning_rate=1e-3, patience=5)
    assert params.learning_rate == 5e-5, "a recipe key: the preset's"
    assert params.patience == 5, "not a recipe key: the top level's"
    changed = copy.deepcopy(raw)
    changed["finetune"]["preset"] = "seed"
    changed["finetune"]["presets"]["seed"]["learning_rate"] = 1e-4
    assert parse_params(changed).finetune.learning_rate == 1e-4


def test_an_unknown_preset_is_refused_naming_the_known_ones(raw: dict) -> None:
    with pytest.raises(ElectraError, match=r"finetune.*preset 'sed' is not one of finetune.presets: \['seed'\]"):
        finetune_with(raw, preset="sed")


def test_a_preset_with_an_unknown_or_bad_key_is_refused(raw: dict) -> None:
    changed = copy.deepcopy(raw)
    changed["finetune"]["presets"]["mine"] = {"learning_rat": 1e-4}
    with pytest.raises(ElectraError, match=r"finetune\.presets\.mine\.learning_rat"):
        parse_params(changed)
    changed["finetune"]["presets"]["mine"] = {"mixed_precision": "fp8"}
    with pytest.raises(ElectraError, match=r"mixed_precision"):
        parse_params(changed)


# ----------------------------------------------------------------------------------------- mixed precision
@pytest.mark.parametrize("mode", ["fp32", "auto", "fp16", "bf16"])
def test_on_cpu_every_mode_trains_in_fp32(mode: str) -> None:
    precision = MixedPrecision(mode, torch.device("cpu"))
    assert autocast_dtype(mode, torch.device("cpu")) is None and not precision.scaler.is_enabled()
    with precision.autocast():
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("mode", "dtype", "scaled"), [("fp16", torch.float16, True), ("bf16", torch.bfloat16, False),
                                                       ("fp32", torch.float32, False)])
def test_on_cuda_the_forward_pass_autocasts_and_fp16_scales_gradients(mode: str, dtype: torch.dtype, scaled: bool) -> None:
    precision = MixedPrecision(mode, torch.device("cuda"))
    with precision.autocast():
        product = torch.ones(2, 2, device="cuda") @ torch.ones(2, 2, device="cuda")
    assert product.dtype == dtype and precision.scaler.is_enabled() == scaled


# ------------------------------------------------------------------------------------- the recipe in training
def texts(count: int, seed: int) -> list[TextExample]:
    rng = random.Random(seed)
    examples = []
    for index in range(count):
        label = rng.choice(["neg", "pos"])
        words = rng.choices(["the", "film", "was", "plot"], k=3) + ["good" if label == "pos" else "bad"]
        examples.append(TextExample(" ".join(words), None, label, f"made:{index}"))
    return examples


def test_the_seed_recipe_trains_with_a_flat_learning_rate_decaying_linearly_from_the_first_step(
    tmp_path: Path, raw: dict
) -> None:
    tokenizer = train_wordpiece(["the film was plot good bad"] * 3, vocab_size=80, min_frequency=1, lowercase=False)
    config = ElectraConfig(vocab_size=tokenizer.get_vocab_size(), embedding_size=8, hidden_size=16, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
    torch.manual_seed(0)
    ElectraForPreTraining(config).save_pretrained(tmp_path)
    as_transformers_tokenizer(tokenizer, 16).save_pretrained(tmp_path)
    params = finetune_with(raw, preset="seed", max_seq_len=16, device="cpu", patience=3)
    logged: list[dict] = []
    _, _, summary = finetune_classifier(params, section("classification"), 0, tmp_path, texts(48, 0), texts(8, 1),
                                        lambda step, metrics: logged.append(metrics))
    rates = [metrics["learning_rate"] for metrics in logged if "learning_rate" in metrics]
    total = 3 * 48 // 16  # 3 epochs of 3 batches of 16
    assert summary["epochs_run"] == 3 and len(rates) == total
    assert rates == pytest.approx([5e-5 * (total - step) / total for step in range(total)], rel=1e-9)
