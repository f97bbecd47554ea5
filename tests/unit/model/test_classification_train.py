"""Sequence-classification fine-tuning on tiny models in seconds: what each ``finetune.init`` loads, that single
texts and pairs are learned (a pair task whose label only the second text decides fails if pairs were dropped),
that the best validation epoch is the one returned, and that the torch-free ONNX path gives the torch model's
probabilities."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from tokenizers import Tokenizer
from safetensors.torch import load_file, save_file
from transformers import ElectraForPreTraining

from electra_model.config import FinetuneParams
from electra_model.errors import ElectraError
from tests.fixtures_classifier import CLASSIFIER_MAX_LEN, FILLER, NEGATIVE, POSITIVE, save_tiny_discriminator
from electra_model.tasks.classification.data import TextExample
from electra_model.client.classifier_encoding import classify, encode
from electra_model.tasks.classification.train import (
    evaluate_split,
    finetune_classifier,
    load_classifier,
    model_labels,
    predict_probabilities,
)
from tests.params import section

MAX_LEN = CLASSIFIER_MAX_LEN


def sentence(rng: random.Random, cue: str) -> str:
    words = rng.choices(FILLER, k=rng.randint(2, 8))
    words.insert(rng.randint(0, len(words)), cue)
    return " ".join(words)


def make_split(count: int, seed: int, pairs: bool = False) -> list[TextExample]:
    """Sentiment cued by one word; for pairs, the cue is in the second text only (a model that read only the first
    text would be at chance)."""
    rng = random.Random(seed)
    examples = []
    for index in range(count):
        label = rng.choice(["neg", "pos"])
        cue = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        if pairs:
            first = " ".join(rng.choices(FILLER, k=rng.randint(2, 8)))
            examples.append(TextExample(first, sentence(rng, cue), label, f"made:{index}"))
        else:
            examples.append(TextExample(sentence(rng, cue), None, label, f"made:{index}"))
    return examples


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A discriminator checkpoint laid out as the pretrain stage writes one (weights, config, tokenizer)."""
    return save_tiny_discriminator(tmp_path_factory.mktemp("pretrained"))


def finetune_params(**overrides: object) -> FinetuneParams:
    base = dict(init="random", max_seq_len=MAX_LEN, batch_size=8, epochs=4, learning_rate=2e-3, warmup_ratio=0.1,
                layer_lr_decay=1.0, patience=2, device="cpu")
    return section("finetune", **{**base, **overrides})


def test_pretrained_init_keeps_the_body_and_adds_only_the_head(pretrained_dir: Path) -> None:
    model = load_classifier("pretrained", pretrained_dir, ["neg", "pos"])
    saved = ElectraForPreTraining.from_pretrained(pretrained_dir)
    for name, tensor in saved.electra.state_dict().items():
        assert torch.equal(model.electra.state_dict()[name], tensor), name
    assert model_labels(model) == ["neg", "pos"] and model.classifier.out_proj.out_features == 2


def test_random_init_has_the_pretrained_shape_but_not_its_weights(pretrained_dir: Path) -> None:
    model = load_classifier("random", pretrained_dir, ["a", "b", "c"])
    saved = ElectraForPreTraining.from_pretrained(pretrained_dir)
    assert model.config.hidden_size == saved.config.hidden_size and model.config.num_labels == 3
    assert not torch.equal(
        model.electra.embeddings.word_embeddings.weight, saved.electra.embeddings.word_embeddings.weight
    )


def test_a_saved_classifier_with_other_labels_loads_as_a_checkpoint(pretrained_dir: Path, tmp_path: Path) -> None:
    other = load_classifier("pretrained", pretrained_dir, ["x", "y", "z"])
    other.save_pretrained(tmp_path / "ckpt")
    model = load_classifier(str(tmp_path / "ckpt"), pretrained_dir, ["neg", "pos"])
    assert torch.equal(model.classifier.dense.weight, other.classifier.dense.weight)
    assert model.classifier.out_proj.out_features == 2


def test_a_checkpoint_without_the_whole_body_is_refused(pretrained_dir: Path, tmp_path: Path) -> None:
    ElectraForPreTraining.from_pretrained(pretrained_dir).save_pretrained(tmp_path / "partial")
    weights = load_file(tmp_path / "partial" / "model.safetensors")
    kept = {name: tensor for name, tensor in weights.items() if ".layer.1." not in name}
    assert len(kept) < len(weights)
    save_file(kept, tmp_path / "partial" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ElectraError, match=r"does not hold the whole model body; \d+ tensors would be initialised "
                       r"at random: electra.encoder.layer.1"):
        load_classifier(str(tmp_path / "partial"), pretrained_dir, ["neg", "pos"])
    with pytest.raises(ElectraError, match="not a transformers checkpoint directory"):
        load_classifier(str(tmp_path), pretrained_dir, ["neg", "pos"])


def test_pair_inputs_are_cls_a_sep_b_sep_with_segments(pretrained_dir: Path) -> None:
    tokenizer = Tokenizer.from_file(str(pretrained_dir / "tokenizer.json"))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    good, film, dull = (tokenizer.token_to_id(word) for word in ("good", "film", "dull"))
    (single,) = encode(tokenizer, ["good film"], None, MAX_LEN)
    assert single.input_ids == [cls, good, film, sep] and single.token_type_ids == [0, 0, 0, 0]
    (pair,) = encode(tokenizer, ["good film"], ["dull"], MAX_LEN)
    assert pair.input_ids == [cls, good, film, sep, dull, sep]
    assert pair.token_type_ids == [0, 0, 0, 0, 1, 1]
    (cut,) = encode(tokenizer, ["good film good film good"], ["dull film"], 8)  # 5 budget: the longer text is cut
    assert cut.input_ids == [cls, good, film, good, sep, dull, film, sep] and len(cut.token_type_ids) == 8
    with pytest.raises(ElectraError, match="2 texts but 1 second texts"):
        encode(tokenizer, ["a", "b"], ["c"], MAX_LEN)


@pytest.mark.parametrize("pairs", [False, True], ids=["single", "pair"])
def test_finetuning_learns_and_returns_the_best_validation_epoch(pretrained_dir: Path, pairs: bool) -> None:
    train, valid = make_split(240, 1, pairs), make_split(60, 2, pairs)
    logged: list[dict[str, float]] = []
    task = section("classification", selection_metric="macro_f1")
    model, tokenizer, summary = finetune_classifier(
        finetune_params(epochs=6, patience=6, learning_rate=5e-3), task, 7, pretrained_dir, train, valid,
        lambda step, metrics: logged.append(metrics),
    )
    epochs = [entry for entry in logged if "epoch" in entry]
    best = max(epochs, key=lambda entry: entry["valid_macro_f1"])
    assert summary["best_valid_macro_f1"] == best["valid_macro_f1"] and summary["best_epoch"] == best["epoch"]
    assert summary["best_valid_macro_f1"] >= 0.9, epochs
    scores, _ = evaluate_split(model, tokenizer, valid, MAX_LEN, 16)
    assert scores["macro_f1"] == pytest.approx(best["valid_macro_f1"])  # the kept weights are the best epoch's


def test_same_seed_same_result_and_early_stop(pretrained_dir: Path) -> None:
    train, valid = make_split(80, 3), make_split(40, 4)
    params = finetune_params(epochs=6, patience=1, learning_rate=1e-6)  # too low to improve: stops after epoch 2
    runs = [
        finetune_classifier(params, section("classification"), 11, pretrained_dir, train, valid, lambda s, m: None)[2]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert runs[0]["epochs_run"] < 6


def test_the_same_seed_gives_the_metrics_recorded_before_the_loop_was_shared(pretrained_dir: Path) -> None:
    """Recorded from the classification loop before it became every task's (tasks/finetuning.py): the best epoch is
    the first to reach macro-F1 1.0, and patience 2 stops the run two epochs later."""
    logged: list[dict[str, float]] = []
    _, _, summary = finetune_classifier(
        finetune_params(epochs=5, patience=2, learning_rate=5e-3), section("classification", selection_metric="macro_f1"),
        7, pretrained_dir, make_split(160, 1), make_split(40, 2), lambda step, metrics: logged.append(metrics),
    )
    epochs = [metrics for metrics in logged if "epoch" in metrics]
    assert [metrics["epoch_train_loss"] for metrics in epochs] == pytest.approx(
        [0.6935927718877792, 0.6930143505334854, 0.6638376265764236, 0.29161828123033046, 0.06972722299396991],
        rel=1e-5,
    )
    assert [metrics["valid_accuracy"] for metrics in epochs] == pytest.approx([0.45, 0.45, 1.0, 1.0, 1.0])
    assert [metrics["valid_macro_f1"] for metrics in epochs] == pytest.approx([0.3103448275862069] * 2 + [1.0] * 3)
    assert summary == {"best_valid_macro_f1": 1.0, "best_epoch": 3, "epochs_run": 5, "steps": 100}


def test_onnx_client_path_matches_the_torch_model(pretrained_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(5)
    model = load_classifier("random", pretrained_dir, ["neg", "neu", "pos"]).eval()
    tokenizer = Tokenizer.from_file(str(pretrained_dir / "tokenizer.json"))
    examples = make_split(10, 9, pairs=True)
    path = tmp_path / "model.onnx"
    sample = {name: torch.ones((2, 6), dtype=torch.long) for name in ("input_ids", "attention_mask", "token_type_ids")}
    dynamic = {name: {0: "batch", 1: "sequence"} for name in sample}
    torch.onnx.export(
        model, (), str(path), kwargs=sample, input_names=list(sample), output_names=["logits"],
        dynamic_axes={**dynamic, "logits": {0: "batch"}}, opset_version=17, dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    texts, pairs = [e.text for e in examples], [str(e.pair) for e in examples]
    served = classify(session, tokenizer, texts, ["neg", "neu", "pos"], MAX_LEN, pairs=pairs, batch_size=4)
    expected = predict_probabilities(model, tokenizer, examples, MAX_LEN, 3)
    got = np.array([[item["scores"][label] for label in ("neg", "neu", "pos")] for item in served])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    for item, row in zip(served, expected, strict=True):
        assert item["label"] == ["neg", "neu", "pos"][int(row.argmax())]
        assert item["score"] == pytest.approx(float(row.max()), abs=1e-5)
        assert sum(item["scores"].values()) == pytest.approx(1.0)


def test_predict_module_imports_no_torch() -> None:
    code = "import sys, electra_model.client.classifier_encoding; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
