"""Tiny NER models for the export / inference / registry / CLI tests, built in seconds on CPU.

The CRF pattern model (:func:`make_crf_pattern`) is the pattern model with a CRF head whose learned chain forbids
a sentence to open with a person (``CRF_START_PENALTY``), so its own decoding differs from its emissions' wherever a
sentence starts with "John" or "Müller": what a test needs to see that every path decodes with the chain.
All are laid out as the finetune stage writes a model (``save_pretrained`` model + tokenizer in one directory).
The pattern model's weights are set by hand so that each word's label depends only on its token -- "John" B-PER,
"Smith" I-PER, "Paris" B-LOC, ... (``PATTERN``), everything else O -- so a test knows exactly which entities to
expect (:func:`expected_tags`, which also says how decoding repairs an ``I-`` that continues nothing) and fails if
offsets, windows or decoding are wrong. Fixtures using these live in tests/unit/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import ElectraConfig, ElectraForTokenClassification

from electra_model.data.tokenizer import as_transformers_tokenizer, train_wordpiece
from electra_model.export.result import ExportQuality
from electra_model.tasks.ner.crf import ElectraCRFForTokenClassification
from tests.params import section

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
PATTERN = {  # token -> the label the pattern model gives it; every other token gets O
    "John": "B-PER",
    "Smith": "I-PER",
    "Müller": "B-PER",
    "Paris": "B-LOC",
    "Zürich": "B-LOC",
    "New": "B-LOC",
    "York": "I-LOC",
}
CORPUS = [
    "John Smith visited Paris yesterday .",
    "Müller lives in Zürich , not in New York !",
    "The café in Paris is nice , isn't it ?",
    "John and Smith met Müller in New York .",
]
MAX_LEN = 16
LIMITS = section("export").limits  # what the fixture models' servers enforce: params.yaml's
HIDDEN = 8
O_BONUS = 1.0  # logit bonus of O over the other non-pattern labels, so that decoding has no ties to break
CRF_START_PENALTY = -100.0  # the CRF pattern model's start score for B-PER


def expected_tags(words: list[str]) -> list[str]:
    """The tags the pattern model predicts, written out independently of the model (the tests' ground truth).

    Each word's scores favour its ``PATTERN`` label by a wide margin and ``O`` slightly over the rest (``O_BONUS``),
    so the most probable *valid* sequence is the pattern, except where the pattern puts an ``I-X`` that does not
    continue an X entity: alone, such a word costs least as ``O``; a run of two or more costs least with its first
    word turned into ``B-X`` (one change instead of several). (Right after another entity's word, such a run ties
    with turning that word into ``B-X``; the tests' inputs avoid that one ambiguous case.)"""
    raw = [PATTERN.get(word, "O") for word in words]
    tags = list(raw)
    start = 0
    while start < len(raw):
        end = start + 1
        while end < len(raw) and raw[end] == raw[start]:
            end += 1
        tag = raw[start]
        continues = start > 0 and tags[start - 1] != "O" and tags[start - 1][2:] == tag[2:]
        if tag.startswith("I-") and not continues:
            tags[start] = "O" if end - start == 1 else f"B-{tag[2:]}"
        start = end
    return tags


def build_tokenizer() -> Tokenizer:
    tokenizer = train_wordpiece(CORPUS * 3, vocab_size=300, min_frequency=1, lowercase=False)
    for word in PATTERN:
        assert tokenizer.token_to_id(word) is not None, f"fixture vocabulary lacks {word!r}"
    return tokenizer


def model_config(tokenizer: Tokenizer) -> ElectraConfig:
    return ElectraConfig(
        vocab_size=tokenizer.get_vocab_size(),
        embedding_size=HIDDEN,
        hidden_size=HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
        id2label=dict(enumerate(LABELS)),
        label2id={label: index for index, label in enumerate(LABELS)},
    )


def save_model_dir(model: ElectraForTokenClassification, tokenizer: Tokenizer, directory: Path) -> Path:
    model.save_pretrained(directory)
    as_transformers_tokenizer(tokenizer, MAX_LEN).save_pretrained(directory)
    return directory


def make_pattern(model: ElectraForTokenClassification, tokenizer: Tokenizer) -> None:
    """Zero the positional and residual-branch weights so each hidden state is LayerNorm(word embedding), make the
    embedding of a token point at its label's axis, and let the classifier read that axis."""
    with torch.no_grad():
        embeddings = model.electra.embeddings
        embeddings.position_embeddings.weight.zero_()
        embeddings.token_type_embeddings.weight.zero_()
        vocab = tokenizer.get_vocab()
        axis = torch.zeros(len(vocab), dtype=torch.long)
        for token, index in vocab.items():
            axis[index] = LABELS.index(PATTERN.get(token, "O"))
        words = torch.nn.functional.one_hot(axis, HIDDEN).float() - 1.0 / HIDDEN
        embeddings.word_embeddings.weight.copy_(words)
        for layer in model.electra.encoder.layer:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        for index in range(len(LABELS)):
            model.classifier.weight[index, index] = 10.0
        model.classifier.bias[LABELS.index("O")] = O_BONUS


def make_crf_pattern(tokenizer: Tokenizer) -> ElectraCRFForTokenClassification:
    """The pattern model's emissions under a CRF head whose chain all but forbids ``B-PER`` first in a sentence."""
    torch.manual_seed(0)
    model = ElectraCRFForTokenClassification(model_config(tokenizer)).eval()
    make_pattern(model, tokenizer)
    with torch.no_grad():
        model.classifier.start_scores[LABELS.index("B-PER")] = CRF_START_PENALTY
        model.classifier.transitions[LABELS.index("O"), LABELS.index("B-LOC")] = 0.5  # any other learned score
    return model


def quality(f1: float, parity_passed: bool = True, diff: float = 2e-6) -> ExportQuality:
    """What :func:`electra_model.export.choose.check_and_choose` returns, for a model whose int8 variant is served."""
    variants = {
        "fp32": {"f1": f1, "max_abs_logit_diff": diff, "latency_ms_b1": 3.5},
        "int8": {"f1": f1, "max_abs_logit_diff": 0.02, "labels_identical": False, "latency_ms_b1": 1.25},
    }
    return ExportQuality(
        task="ner",
        metric="f1",
        higher_is_better=True,
        score=f1,
        scores={"f1": f1, "precision": f1, "recall": f1},
        serve_variant="int8",
        serve_reason="int8: fastest",
        max_abs_logit_diff=diff,
        labels_identical=parity_passed,
        parity_passed=parity_passed,
        parity_atol=1e-4,
        variants=variants,
        fused_operators={"Attention": 1},
        selection_split="valid",
    )
