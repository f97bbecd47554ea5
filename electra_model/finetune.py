"""Token-classification fine-tuning and prediction on CoNLL-style NER data.

The model starts from our pretrained discriminator, from any local transformers checkpoint directory, or from
random weights of the same shape; it is trained with AdamW and a warmup + linear schedule, evaluated on the
validation split each epoch by entity F1, stopped early when that stops improving, and the best epoch is kept.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoConfig, ElectraForTokenClassification

from electra_model.config import FinetuneParams
from electra_model.data.conll import Sentence
from electra_model.errors import ElectraError
from electra_model.metrics import entity_scores
from electra_model.ner_encoding import EncodedSentence, encode_words, pad_batch, word_tags
from electra_model.progress import log_line, progress
from electra_model.training import build_optimizer, linear_schedule, resolve_device, seed_everything

MetricsCallback = Callable[[int, dict[str, float]], None]


def label_list(train: Sequence[Sentence]) -> list[str]:
    """Labels seen in training, ``O`` first, then grouped by entity type, so ids are stable for a given dataset."""
    tags = {tag for sentence in train for tag in sentence.tags}
    return sorted(tags, key=lambda tag: (tag != "O", tag[2:], tag))


def load_model(init: str, pretrained_dir: Path, labels: list[str]) -> ElectraForTokenClassification:
    """Weights per ``finetune.init``: our pretrained discriminator, random of the same shape, or a checkpoint dir."""
    label_maps = dict(id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    if init == "random":
        config = AutoConfig.from_pretrained(pretrained_dir, num_labels=len(labels), **label_maps)
        return ElectraForTokenClassification(config)
    source = pretrained_dir if init == "pretrained" else Path(init)
    if not (source / "config.json").is_file():
        raise ElectraError(
            f"finetune.init: {source} is not a transformers checkpoint directory (no config.json); "
            "use 'pretrained', 'random' or the path of a saved model"
        )
    return ElectraForTokenClassification.from_pretrained(
        source, num_labels=len(labels), ignore_mismatched_sizes=True, **label_maps
    )


@dataclass(frozen=True)
class EncodedSplit:
    sentences: list[Sentence]
    encoded: list[EncodedSentence]


def encode_split(
    tokenizer: Tokenizer, sentences: Sequence[Sentence], label2id: dict[str, int], max_len: int
) -> EncodedSplit:
    encoded = [encode_words(tokenizer, s.tokens, max_len, [label2id[tag] for tag in s.tags]) for s in sentences]
    return EncodedSplit(list(sentences), encoded)


def _to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(array).to(device) for name, array in batch.items()}


def predict_tags(
    model: ElectraForTokenClassification,
    tokenizer: Tokenizer,
    sentences: Sequence[Sentence],
    max_len: int,
    batch_size: int,
) -> list[list[str]]:
    """Word-level IOB2 predictions, read from each word's first sub-token."""
    device = next(model.parameters()).device
    pad_id = tokenizer.token_to_id("[PAD]")
    id2label = {int(i): label for i, label in model.config.id2label.items()}
    model.eval()
    predictions: list[list[str]] = []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            chunk = [encode_words(tokenizer, s.tokens, max_len) for s in sentences[start : start + batch_size]]
            batch = _to_device(pad_batch(chunk, pad_id), device)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            predictions.extend(word_tags(logits.float().cpu().numpy(), chunk, id2label))
    return predictions


def finetune(
    params: FinetuneParams,
    seed: int,
    tokenizer: Tokenizer,
    pretrained_dir: Path,
    train: Sequence[Sentence],
    valid: Sequence[Sentence],
    on_log: MetricsCallback,
) -> tuple[ElectraForTokenClassification, dict[str, float]]:
    """Train, keep the epoch with the best validation entity F1, stop after ``patience`` epochs without gain."""
    seed_everything(seed)
    device = resolve_device(params.device)
    labels = label_list(train)
    model = load_model(params.init, pretrained_dir, labels).to(device)
    train_split = encode_split(tokenizer, train, model.config.label2id, params.max_seq_len)
    steps_per_epoch = -(-len(train_split.encoded) // params.batch_size)
    total_steps = steps_per_epoch * params.epochs
    optimizer = build_optimizer(model, params.learning_rate, params.weight_decay, device)
    scheduler = linear_schedule(optimizer, round(params.warmup_ratio * total_steps), total_steps)
    pad_id = tokenizer.token_to_id("[PAD]")
    rng = np.random.default_rng(seed)

    best_f1, best_state, best_epoch, stale_epochs, step = -1.0, None, 0, 0, 0
    summary: dict[str, float] = {}
    for epoch in range(1, params.epochs + 1):
        model.train()
        order = rng.permutation(len(train_split.encoded))
        losses = []
        batches = range(0, len(order), params.batch_size)
        for start in progress(batches, total=len(batches), description=f"fine-tuning epoch {epoch}"):
            chunk = [train_split.encoded[i] for i in order[start : start + params.batch_size]]
            batch = _to_device(pad_batch(chunk, pad_id), device)
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(loss.item())
            on_log(step, {"train_loss": losses[-1], "learning_rate": scheduler.get_last_lr()[0]})

        valid_tags = predict_tags(model, tokenizer, valid, params.max_seq_len, params.batch_size * 2)
        valid_f1 = entity_scores([s.tags for s in valid], valid_tags)["overall"]["f1"]
        summary = {"epoch": epoch, "epoch_train_loss": float(np.mean(losses)), "valid_f1": valid_f1}
        on_log(step, summary)
        log_line(f"epoch {epoch}: train loss {summary['epoch_train_loss']:.4f}, valid entity F1 {valid_f1:.4f}")
        if valid_f1 > best_f1:
            best_f1, best_epoch, stale_epochs = valid_f1, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale_epochs += 1
            if stale_epochs >= params.patience:
                log_line(f"early stop: no gain in valid F1 for {params.patience} epochs")
                break
    model.load_state_dict(best_state)
    return model, {"best_valid_f1": best_f1, "best_epoch": best_epoch, "epochs_run": epoch, "steps": step}
