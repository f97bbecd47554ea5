"""A tiny sentence-pair-capable classifier for the export / client / CLI / registry tests, trained in seconds on CPU.

Sentiment is cued by one word (``POSITIVE`` / ``NEGATIVE``); in a pair split the cue is in the second text only, so
a client that dropped the pair (or its segment ids) would be at chance. The model is fine-tuned by the project's own
:func:`~electra_model.tasks.classification.train.finetune_classifier` from random weights of a tiny shape, and
saved as a finetune stage saves one (``save_pretrained`` weights + ``tokenizer.json``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from transformers import ElectraConfig, ElectraForPreTraining

from electra_model.data.tokenizer import as_transformers_tokenizer, train_wordpiece
from electra_model.export.result import ExportQuality
from electra_model.tasks.classification.data import TextExample
from electra_model.tasks.classification.train import finetune_classifier
from tests.params import section

POSITIVE = ["good", "great", "superb", "lovely"]
NEGATIVE = ["bad", "awful", "dull", "boring"]
FILLER = ["the", "film", "was", "plot", "acting", "really", "quite", "and", "a", "story"]
CLASSIFIER_LABELS = ["neg", "pos"]
CLASSIFIER_MAX_LEN = 24


def save_tiny_discriminator(directory: Path) -> Path:
    """A discriminator checkpoint over the cue words, laid out as the pretrain stage writes one (weights, config,
    tokenizer), for the fine-tuning tests to start from."""
    tokenizer = train_wordpiece([" ".join(POSITIVE + NEGATIVE + FILLER)] * 5, vocab_size=200, min_frequency=1,
                                lowercase=False)
    config = ElectraConfig(
        vocab_size=tokenizer.get_vocab_size(), embedding_size=16, hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=CLASSIFIER_MAX_LEN,
    )
    torch.manual_seed(0)
    ElectraForPreTraining(config).save_pretrained(directory)
    as_transformers_tokenizer(tokenizer, CLASSIFIER_MAX_LEN).save_pretrained(directory)
    return directory


def cue_split(count: int, seed: int, pairs: bool) -> list[TextExample]:
    """Labelled texts whose label one cue word decides (in the second text, for pairs)."""
    rng = random.Random(seed)
    examples = []
    for index in range(count):
        label = rng.choice(CLASSIFIER_LABELS)
        words = rng.choices(FILLER, k=rng.randint(2, 8))
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        cued = " ".join(words)
        if pairs:
            examples.append(TextExample(" ".join(rng.choices(FILLER, k=rng.randint(2, 8))), cued, label, f"made:{index}"))
        else:
            examples.append(TextExample(cued, None, label, f"made:{index}"))
    return examples


def write_jsonl(examples: list[TextExample], path: Path) -> Path:
    """A split as the task data stage writes one: ``{"text", "pair", "label"}`` per line."""
    lines = [json.dumps({"text": e.text, "pair": e.pair, "label": e.label}) for e in examples]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_classifier(directory: Path, pairs: bool) -> Path:
    """Fine-tune the tiny classifier on a cue split and save it to ``directory/model``."""
    tokenizer = train_wordpiece([" ".join(POSITIVE + NEGATIVE + FILLER)] * 5, vocab_size=200, min_frequency=1,
                                lowercase=False)
    base = directory / "pretrained"
    ElectraConfig(
        vocab_size=tokenizer.get_vocab_size(), embedding_size=16, hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
    ).save_pretrained(base)
    as_transformers_tokenizer(tokenizer, CLASSIFIER_MAX_LEN).save_pretrained(base)
    params = section("finetune", **dict(
        init="random", max_seq_len=CLASSIFIER_MAX_LEN, batch_size=8, epochs=6, learning_rate=5e-3,
        warmup_ratio=0.1, layer_lr_decay=1.0, patience=6, device="cpu",
    ))
    task = section("classification", labels=CLASSIFIER_LABELS)
    model, trained_tokenizer, _ = finetune_classifier(
        params, task, 7, base, cue_split(240, 1, pairs), cue_split(60, 2, pairs), lambda step, metrics: None
    )
    out = directory / "model"
    model.save_pretrained(out)
    as_transformers_tokenizer(trained_tokenizer, CLASSIFIER_MAX_LEN).save_pretrained(out)
    return out


def classifier_quality(accuracy: float, parity_passed: bool = True) -> ExportQuality:
    """What :func:`electra_model.export.choose.check_and_choose` returns for a classifier serving fp32."""
    variants = {"fp32": {"accuracy": accuracy, "macro_f1": accuracy, "max_abs_logit_diff": 1e-7, "latency_ms_b1": 1.0}}
    return ExportQuality(
        task="classification", metric="accuracy", higher_is_better=True, score=accuracy, scores={"accuracy": accuracy, "macro_f1": accuracy},
        serve_variant="fp32", serve_reason="fp32: set by export.serve_variant", max_abs_logit_diff=1e-7,
        labels_identical=parity_passed, parity_passed=parity_passed, parity_atol=1e-3, variants=variants,
        fused_operators={"Attention": 2}, selection_split="valid",
    )
