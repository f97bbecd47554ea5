"""Every ``pretrain.backbone`` goes the whole way after pretraining: its discriminator fine-tunes under the task
heads, and the fine-tuned model exports to ONNX with parity, quantizes to int8 and serves through the torch-free
client. Tiny random models; ELECTRA's own export path is pinned in detail by test_export.py and
test_export_classifier.py, so the export tests here run the other backbones only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from electra_model.client.loader import predictor_for_dir
from electra_model.data.tokenizer import as_transformers_tokenizer
from electra_model.errors import ElectraError
from electra_model.export.build import export_onnx
from electra_model.export.choose import check_variants
from electra_model.pretraining.backbones import BACKBONES
from electra_model.tasks.checkpoints import load_model
from electra_model.tasks.classification.train import load_classifier
from electra_model.tasks.ner.conll import Sentence
from electra_model.tasks.ner.crf import ElectraCRFForTokenClassification
from electra_model.tasks.ner.heads import HEADS, load_finetuned
from tests.fixtures_classifier import CLASSIFIER_LABELS, CLASSIFIER_MAX_LEN, cue_split
from tests.fixtures_models import LABELS, LIMITS, MAX_LEN, save_model_dir

OTHER_BACKBONES = sorted(set(BACKBONES) - {"electra"})
TEXTS = ["John Smith visited Paris yesterday .", "Müller lives in Zürich , not in New York !", "Paris"]


def tiny_config(backbone: str, tokenizer: Tokenizer, labels: list[str]):
    """A one-layer discriminator config of ``backbone``, as the pretrain stage builds one (its own config code)."""
    return BACKBONES[backbone].config(
        16, 2, 32, 16, vocab_size=tokenizer.get_vocab_size(), num_hidden_layers=1, max_position_embeddings=64,
        pad_token_id=tokenizer.token_to_id("[PAD]"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )


def pretrained_dir(backbone: str, tokenizer: Tokenizer, directory: Path) -> Path:
    """A pretrain stage's output for ``backbone``: the discriminator and the tokenizer."""
    torch.manual_seed(0)
    discriminator = BACKBONES[backbone].discriminator_class(tiny_config(backbone, tokenizer, ["replaced"]))
    discriminator.save_pretrained(directory)
    as_transformers_tokenizer(tokenizer, MAX_LEN).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("backbone", OTHER_BACKBONES)
def test_a_ner_model_of_every_backbone_exports_with_parity_quantizes_and_serves(
    backbone: str, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    source = pretrained_dir(backbone, tokenizer, tmp_path / "pretrained")
    model = load_model("pretrained", source, LABELS, HEADS["softmax"])  # the finetune stage's call
    assert type(model) is type(AutoModelForTokenClassification.from_config(model.config))  # the body's own class
    model_dir = save_model_dir(model.eval(), tokenizer, tmp_path / "ner")
    assert type(load_finetuned(model_dir)) is type(model)

    onnx_dir = export_onnx(model_dir, tmp_path / "onnx", opset=17, max_len=MAX_LEN, limits=LIMITS)
    sentences = [Sentence(tuple(text.split()), tuple("O" for _ in text.split())) for text in TEXTS]
    results = check_variants(model_dir, onnx_dir, sentences, batch_size=2)
    for name in ("fp32", "optimized"):
        assert results[name]["labels_identical"] is True and results[name]["max_abs_logit_diff"] < 1e-5
    assert 0 < results["int8"]["max_abs_logit_diff"] < 0.1

    served = predictor_for_dir(onnx_dir, providers=["CPUExecutionProvider"], variant="int8")
    tags = served.tag_words([text.split() for text in TEXTS])
    assert [len(row) for row in tags] == [len(text.split()) for text in TEXTS]
    assert {tag for row in tags for tag in row} <= set(LABELS)


@pytest.mark.parametrize("backbone", OTHER_BACKBONES)
def test_a_classifier_of_every_backbone_exports_with_parity_quantizes_and_serves(
    backbone: str, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    model = load_classifier("pretrained", pretrained_dir(backbone, tokenizer, tmp_path / "pretrained"), CLASSIFIER_LABELS)
    assert type(model) is type(AutoModelForSequenceClassification.from_config(model.config))  # the body's own class
    model.save_pretrained(tmp_path / "model")
    as_transformers_tokenizer(tokenizer, CLASSIFIER_MAX_LEN).save_pretrained(tmp_path / "model")

    onnx_dir = export_onnx(tmp_path / "model", tmp_path / "onnx", opset=17, max_len=CLASSIFIER_MAX_LEN, limits=LIMITS)
    results = check_variants(tmp_path / "model", onnx_dir, cue_split(12, 3, pairs=False), batch_size=4)
    for name in ("fp32", "optimized"):
        assert results[name]["labels_identical"] is True and results[name]["max_abs_logit_diff"] < 1e-5
    assert 0 < results["int8"]["max_abs_logit_diff"] < 0.1

    served = predictor_for_dir(onnx_dir, providers=["CPUExecutionProvider"], variant="int8")
    assert {row["label"] for row in served.predict(["the film was good", "boring"])} <= set(CLASSIFIER_LABELS)


def test_the_crf_head_on_a_pre_ln_body_is_refused_naming_the_head_to_use(tokenizer: Tokenizer, tmp_path: Path) -> None:
    source = pretrained_dir("roberta_prelayernorm", tokenizer, tmp_path / "pretrained")
    with pytest.raises(ElectraError, match="finetune.head: softmax"):
        load_model("pretrained", source, LABELS, ElectraCRFForTokenClassification)
