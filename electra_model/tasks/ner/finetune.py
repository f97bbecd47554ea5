"""Token-classification fine-tuning and prediction on CoNLL-style NER data.

The model starts from our pretrained discriminator, from a transformers checkpoint directory or a Hugging Face model
id such as google/electra-small-discriminator (whose own tokenizer is then used; see
:mod:`electra_model.tasks.checkpoints`), or from random weights of our pretrained model's shape. It is trained as
ELECTRA's paper fine-tunes: AdamW with layer-wise learning-rate decay, no weight decay on biases and LayerNorm,
warmup + linear decay (or as ``finetune.preset`` says). The head is ``finetune.head``
(:mod:`electra_model.tasks.ner.heads`: a CRF by default). It is scored on the validation split after every epoch by
entity F1 (conlleval rules, tags decoded as everywhere else: the model's own decoding, constrained to valid IOB2 and
with the CRF's learned transitions), stopped early when that stops improving, and the best epoch's weights are kept.
Test data is never read here.
Sentences longer than ``max_seq_len`` are handled by :func:`electra_model.client.ner_encoding.encode_examples`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoTokenizer, ElectraForTokenClassification, PreTrainedModel

from electra_model.config import FinetuneParams
from electra_model.tasks.ner.conll import Sentence
from electra_model.errors import ElectraError
from electra_model.tasks.checkpoints import model_source
from electra_model.tasks.ner.metrics import entity_scores
from electra_model.client.ner_encoding import Example, encode_examples, merge_word_scores, pad_batch, word_log_probs
from electra_model.progress import log_line, progress
from electra_model.tasks.ner.crf import model_chain
from electra_model.tasks.ner.heads import HEADS
from electra_model.client.tag_decoding import CONSTRAINED, decode_tags
from electra_model.data.tokenizer import load_backend_tokenizer, special_token_ids
from electra_model.training import (
    MixedPrecision,
    finetuning_step,
    linear_schedule,
    parameter_groups,
    resolve_device,
    seed_everything,
)

MetricsCallback = Callable[[int, dict[str, float]], None]
ModelWithHead = TypeVar("ModelWithHead", bound=PreTrainedModel)
LENGTH_GROUP = 50
"""Batches are drawn from pools of this many batches sorted by length: far less padding, still shuffled."""
HEAD_PREFIX = "classifier."
"""The task head's tensors: the only ones fine-tuning may initialise anew."""


def label_list(train: Sequence[Sentence]) -> list[str]:
    """Labels seen in training, ``O`` first, then grouped by entity type, so ids are stable for a given dataset."""
    tags = {tag for sentence in train for tag in sentence.tags}
    return sorted(tags, key=lambda tag: (tag != "O", tag[2:], tag))


def load_model(
    init: str,
    pretrained_dir: Path,
    labels: list[str],
    model_class: type[ModelWithHead] = ElectraForTokenClassification,
) -> ModelWithHead:
    """Weights per ``finetune.init``: our pretrained discriminator, random of the same shape, or a checkpoint dir.
    ``model_class`` is the head (:data:`electra_model.tasks.ner.heads.HEADS`, or sequence classification's), on
    the same body either way.

    Only the classification head may be newly initialised: a checkpoint of another shape or kind would otherwise
    be loaded with its mismatched tensors silently re-initialised, and a "pretrained" model would be partly random.
    """
    label_maps = dict(id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    source = model_source(init, pretrained_dir)
    if source is None:
        config = AutoConfig.from_pretrained(pretrained_dir, num_labels=len(labels), **label_maps)
        return model_class(config)
    model, info = model_class.from_pretrained(
        source, num_labels=len(labels), ignore_mismatched_sizes=True, output_loading_info=True, **label_maps
    )
    check_only_head_is_new(source, info)
    return model


def check_only_head_is_new(source: Path, loading_info: dict[str, Any]) -> None:
    """Refuse a load that left any tensor but the classifier head missing or re-initialised, naming the tensors."""
    mismatched = [entry[0] if isinstance(entry, tuple) else entry for entry in loading_info.get("mismatched_keys", [])]
    missing = list(loading_info.get("missing_keys", []))
    body = sorted(name for name in {*missing, *mismatched} if not name.startswith(HEAD_PREFIX))
    if body:
        raise ElectraError(
            f"finetune.init: {source} does not hold the whole model body; {len(body)} tensors would be initialised "
            f"at random: {', '.join(body[:8])}{' ...' if len(body) > 8 else ''}. Point finetune.init at an ELECTRA "
            "discriminator checkpoint of this shape, or use 'random' to train from scratch on purpose"
        )


def load_tokenizer(init: str, pretrained_dir: Path) -> Tokenizer:
    """The tokenizer that goes with the weights: a foreign checkpoint's own (``tokenizer.json``, or converted from
    its ``vocab.txt`` by transformers), else ours; never truncating or padding, since examples are built here."""
    source = model_source(init, pretrained_dir) or pretrained_dir
    if (source / "tokenizer.json").is_file():
        tokenizer = load_backend_tokenizer(source)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source).backend_tokenizer
        except (OSError, ValueError) as error:
            raise ElectraError(f"finetune.init: {source} has no usable tokenizer ({error})") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    special_token_ids(tokenizer)
    return tokenizer


def layer_depths(model: ElectraForTokenClassification) -> list[tuple[int, torch.nn.Module]]:
    """Modules by depth: embeddings 0, transformer layer i at i + 1, the classifier head on top."""
    layers = list(model.electra.encoder.layer)
    bottom = [model.electra.embeddings]
    if getattr(model.electra, "embeddings_project", None) is not None:
        bottom.append(model.electra.embeddings_project)
    return [
        *((0, module) for module in bottom),
        *((depth, layer) for depth, layer in enumerate(layers, start=1)),
        (len(layers) + 1, model.classifier),
    ]


def layerwise_groups(
    model: ElectraForTokenClassification, learning_rate: float, weight_decay: float, decay: float
) -> list[dict]:
    """AdamW groups with ELECTRA's layer-wise LR decay: the head trains at ``learning_rate`` and each layer below
    at ``decay`` times the one above, so the pretrained lower layers move least; biases and LayerNorm get no decay."""
    top = len(model.electra.encoder.layer) + 1
    groups = []
    for depth, module in layer_depths(model):
        for group in parameter_groups(module, weight_decay):
            if group["params"]:
                groups.append({**group, "lr": learning_rate * decay ** (top - depth)})
    return groups


def encode_split(
    tokenizer: Tokenizer,
    sentences: Sequence[Sentence],
    max_len: int,
    document_context: bool,
    label2id: dict[str, int] | None = None,
) -> list[Example]:
    """Model examples for a split, labelled when ``label2id`` is given."""
    tag_ids = [[label2id[tag] for tag in s.tags] for s in sentences] if label2id is not None else None
    words = [s.tokens for s in sentences]
    documents = [s.document for s in sentences]
    return encode_examples(tokenizer, words, max_len, tag_ids, documents, document_context)


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar-length examples: a random order is cut into pools, each pool sorted by length
    and cut into batches, and the batches shuffled -- what transformers calls ``group_by_length``."""
    order = rng.permutation(len(lengths))
    pool = batch_size * LENGTH_GROUP
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda index: lengths[index])
        batches += [np.asarray(chunk[i : i + batch_size]) for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(array).to(device) for name, array in batch.items()}


def _sorted_batches(examples: Sequence[Example], batch_size: int) -> Iterator[list[int]]:
    order = sorted(range(len(examples)), key=lambda index: len(examples[index].encoded.input_ids))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def predict_word_log_probs(
    model: ElectraForTokenClassification,
    tokenizer: Tokenizer,
    sentences: Sequence[Sentence],
    max_len: int,
    batch_size: int,
    document_context: bool = False,
) -> list[np.ndarray]:
    """Label log-probabilities of every word of every sentence, ``(words, labels)`` per sentence, each read from its
    word's first sub-token: the scores both decodings (constrained and argmax) read. For a CRF head these are its
    emissions up to a constant per word, which changes no path's rank (see tag_decoding)."""
    device = next(model.parameters()).device
    pad_id = tokenizer.token_to_id("[PAD]")
    examples = encode_split(tokenizer, sentences, max_len, document_context)
    example_scores: list[np.ndarray] = [np.zeros(0)] * len(examples)
    model.eval()
    with torch.no_grad():
        for indices in _sorted_batches(examples, batch_size):
            encoded = [examples[index].encoded for index in indices]
            batch = _to_device(pad_batch(encoded, pad_id), device)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            for index, scores in zip(indices, word_log_probs(logits.float().cpu().numpy(), encoded)):
                example_scores[index] = scores
    return merge_word_scores(examples, example_scores, [len(s.tokens) for s in sentences])


def model_labels(model: ElectraForTokenClassification) -> list[str]:
    """The model's labels in id order."""
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


def predict_tags(
    model: ElectraForTokenClassification,
    tokenizer: Tokenizer,
    sentences: Sequence[Sentence],
    max_len: int,
    batch_size: int,
    document_context: bool = False,
    decoding: str = CONSTRAINED,
) -> list[list[str]]:
    """One IOB2 tag per word of every sentence; ``constrained`` (the default everywhere) is the model's own
    decoding, with its learned chain for a CRF head, and never yields an invalid sequence, see
    :mod:`electra_model.client.tag_decoding`."""
    scores = predict_word_log_probs(model, tokenizer, sentences, max_len, batch_size, document_context)
    return decode_tags(scores, model_labels(model), decoding, model_chain(model))


def finetune(
    params: FinetuneParams,
    seed: int,
    pretrained_dir: Path,
    train: Sequence[Sentence],
    valid: Sequence[Sentence],
    on_log: MetricsCallback,
) -> tuple[ElectraForTokenClassification, Tokenizer, dict[str, float]]:
    """Train the ``params.head`` head, keep the epoch with the best validation entity F1 (by the model's own
    decoding, :func:`predict_tags`), stop after ``patience`` epochs without gain."""
    seed_everything(seed)
    device = resolve_device(params.device)
    model = load_model(params.init, pretrained_dir, label_list(train), HEADS[params.head]).to(device)
    tokenizer = load_tokenizer(params.init, pretrained_dir)
    examples = encode_split(tokenizer, train, params.max_seq_len, params.document_context, model.config.label2id)
    lengths = [len(example.encoded.input_ids) for example in examples]
    steps_per_epoch = -(-len(examples) // params.batch_size)
    total_steps = steps_per_epoch * params.epochs
    groups = layerwise_groups(model, params.learning_rate, params.weight_decay, params.layer_lr_decay)
    # the fused kernel: one pass per tensor instead of one per elementwise op (see training.build_optimizer)
    optimizer = torch.optim.AdamW(
        groups, lr=params.learning_rate, eps=params.adam_epsilon, fused=device.type in ("cuda", "cpu")
    )
    scheduler = linear_schedule(optimizer, round(params.warmup_ratio * total_steps), total_steps)
    precision = MixedPrecision(params.mixed_precision, device)
    pad_id = tokenizer.token_to_id("[PAD]")
    rng = np.random.default_rng(seed)

    best_f1, best_state, best_epoch, stale_epochs, step = -1.0, None, 0, 0, 0
    for epoch in range(1, params.epochs + 1):
        model.train()
        losses = []
        batches = length_grouped_batches(lengths, params.batch_size, rng)
        for indices in progress(batches, total=len(batches), description=f"fine-tuning epoch {epoch}"):
            batch = _to_device(pad_batch([examples[i].encoded for i in indices], pad_id), device)
            with precision.autocast():
                output = model(**batch)
            step += 1
            loss, head_lr = finetuning_step(output.loss, model, optimizer, scheduler, step, params, precision)
            losses.append(loss)
            on_log(step, {"train_loss": loss, "learning_rate": head_lr})

        valid_tags = predict_tags(
            model, tokenizer, valid, params.max_seq_len, params.batch_size * 2, params.document_context
        )
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
    summary = {"best_valid_f1": best_f1, "best_epoch": best_epoch, "epochs_run": epoch, "steps": step}
    return model, tokenizer, summary
