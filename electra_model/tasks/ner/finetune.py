"""Token-classification fine-tuning and prediction on CoNLL-style NER data.

The model starts from our pretrained discriminator, from a transformers checkpoint directory or a Hugging Face model
id such as google/electra-small-discriminator (whose own tokenizer is then used; see
:mod:`electra_model.tasks.checkpoints`), or from random weights of our pretrained model's shape. It is trained as
ELECTRA's paper fine-tunes, in the loop every task shares (:mod:`electra_model.tasks.finetuning`: AdamW with
layer-wise learning-rate decay, warmup + linear decay, or as ``finetune.preset`` says). The head is ``finetune.head``
(:mod:`electra_model.tasks.ner.heads`: a CRF by default). It is scored on the validation split after every epoch by
entity F1 (conlleval rules, tags decoded as everywhere else: the model's own decoding, constrained to valid IOB2 and
with the CRF's learned transitions), stopped early when that stops improving, and the best epoch's weights are kept.
Test data is never read here.
Sentences longer than ``max_seq_len`` are handled by :func:`electra_model.client.ner_encoding.encode_examples`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import ElectraForTokenClassification

from electra_model.config import FinetuneParams
from electra_model.tasks.ner.conll import Sentence
from electra_model.tasks.base import MetricsCallback
from electra_model.tasks.checkpoints import load_model, load_tokenizer
from electra_model.tasks.finetuning import TrainBatches, Validation, finetune_loop, to_device
from electra_model.tasks.ner.metrics import entity_scores
from electra_model.client.ner_encoding import Example, encode_examples, merge_word_scores, pad_batch, word_log_probs
from electra_model.tasks.ner.crf import model_chain
from electra_model.tasks.ner.heads import HEADS
from electra_model.client.tag_decoding import CONSTRAINED, decode_tags
from electra_model.training import resolve_device, seed_everything


def label_list(train: Sequence[Sentence]) -> list[str]:
    """Labels seen in training, ``O`` first, then grouped by entity type, so ids are stable for a given dataset."""
    tags = {tag for sentence in train for tag in sentence.tags}
    return sorted(tags, key=lambda tag: (tag != "O", tag[2:], tag))


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
            batch = to_device(pad_batch(encoded, pad_id), device)
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
    """Train the ``params.head`` head in the shared loop (:mod:`electra_model.tasks.finetuning`), keeping the epoch
    with the best validation entity F1 by the model's own decoding (:func:`predict_tags`, as evaluation decodes)."""
    seed_everything(seed)
    device = resolve_device(params.device)
    model = load_model(params.init, pretrained_dir, label_list(train), HEADS[params.head]).to(device)
    tokenizer = load_tokenizer(params.init, pretrained_dir)
    examples = encode_split(tokenizer, train, params.max_seq_len, params.document_context, model.config.label2id)
    pad_id = tokenizer.token_to_id("[PAD]")
    batches = TrainBatches(
        [len(example.encoded.input_ids) for example in examples],
        lambda indices: pad_batch([examples[index].encoded for index in indices], pad_id),
    )
    validation = Validation(lambda trained: {"valid_f1": valid_f1(trained, tokenizer, valid, params)}, "valid_f1")
    return model, tokenizer, finetune_loop(model, params, seed, batches, validation, on_log)


def valid_f1(
    model: ElectraForTokenClassification, tokenizer: Tokenizer, valid: Sequence[Sentence], params: FinetuneParams
) -> float:
    """Entity F1 on the valid split, predicted in batches twice the training size (no gradients to hold)."""
    tags = predict_tags(model, tokenizer, valid, params.max_seq_len, params.batch_size * 2, params.document_context)
    return entity_scores([sentence.tags for sentence in valid], tags)["overall"]["f1"]
