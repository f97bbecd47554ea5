"""Words to sub-token model inputs and back: the one alignment rule used by training, evaluation and serving.

The label of a word sits on its first sub-token; the other sub-tokens get ``IGNORE_INDEX`` so the loss skips them,
and a word's scores are read from its first sub-token. Only ``tokenizers`` and numpy are used, so the
torch-free inference client shares this code with training.

:func:`encode_examples` is the form training and evaluation use: every word of every sentence is labelled in
exactly one example, however long the sentence. A sentence that does not fit ``max_len`` is cut into consecutive
*cores* of at most half the budget, and each core is given the words around it as unlabelled context, so the model
inputs overlap while every word is predicted once, with context on both sides. With ``document_context`` the
budget left after a sentence is filled with the neighbouring sentences of its document, as BERT did for CoNLL-2003.
:func:`merge_word_scores` maps the examples' per-word scores back to their sentences, where
:mod:`electra_model.client.tag_decoding` turns them into tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from electra_model.client.tag_decoding import log_softmax

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedSentence:
    """One sentence as model input, with the position of each word's first sub-token (-1 if it was cut off)."""

    input_ids: list[int]
    labels: list[int]
    first_subtoken: list[int]


@dataclass(frozen=True)
class Example:
    """Model input whose labelled words are words ``start .. start + len(encoded.first_subtoken)`` of sentence
    number ``sentence``; the tokens around them are context only."""

    sentence: int
    start: int
    encoded: EncodedSentence


def encode_words(
    tokenizer: Tokenizer,
    words: Sequence[str],
    max_len: int,
    tag_ids: Sequence[int] | None = None,
) -> EncodedSentence:
    """Encode pre-split words with [CLS]/[SEP]; words beyond ``max_len`` sub-tokens are marked as cut off."""
    encoding = tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
    body_limit = max_len - 2
    input_ids = [tokenizer.token_to_id("[CLS]")]
    labels = [IGNORE_INDEX]
    first_subtoken = [-1] * len(words)
    previous_word: int | None = None
    for token_id, word_index in zip(encoding.ids[:body_limit], encoding.word_ids[:body_limit]):
        is_first = word_index is not None and word_index != previous_word
        position = len(input_ids)
        input_ids.append(token_id)
        labels.append(tag_ids[word_index] if (is_first and tag_ids is not None) else IGNORE_INDEX)
        if is_first:
            first_subtoken[word_index] = position
        previous_word = word_index
    input_ids.append(tokenizer.token_to_id("[SEP]"))
    labels.append(IGNORE_INDEX)
    return EncodedSentence(input_ids, labels, first_subtoken)


def word_pieces(tokenizer: Tokenizer, words: Sequence[str]) -> list[list[int]]:
    """Sub-token ids of each word; a word the normalizer erases entirely (control characters) becomes ``[UNK]``,
    so that every word has a first sub-token to carry its label."""
    pieces: list[list[int]] = [[] for _ in words]
    if words:
        encoding = tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
        for token_id, word_index in zip(encoding.ids, encoding.word_ids):
            if word_index is not None:
                pieces[word_index].append(token_id)
    unk = tokenizer.token_to_id("[UNK]")
    return [word or [unk] for word in pieces]


def plan_cores(lengths: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive word ranges of at most ``budget`` sub-tokens each; a longer word gets a range of its own."""
    cores, start, used = [], 0, 0
    for index, count in enumerate(lengths):
        if used + count > budget and index > start:
            cores.append((start, index))
            start, used = index, 0
        used += count
    if lengths:
        cores.append((start, len(lengths)))
    return cores


def _flat(pieces: Sequence[Sequence[int]]) -> list[int]:
    return [token for word in pieces for token in word]


def _context(
    pieces: Sequence[list[list[int]]], documents: Sequence[int], row: int, step: int, limit: int, across: bool
) -> list[int]:
    """Up to ``limit`` sub-tokens of the sentences next to ``row`` in direction ``step`` (-1 before, +1 after),
    nearest first, without leaving the document; empty unless ``across`` (document context) is on."""
    tokens: list[int] = []
    other = row + step
    while across and len(tokens) < limit and 0 <= other < len(pieces) and documents[other] == documents[row]:
        sentence = _flat(pieces[other])
        tokens.extend(reversed(sentence) if step < 0 else sentence)
        other += step
    return tokens[:limit]


def _encode_core(
    pieces: list[list[int]],
    start: int,
    end: int,
    left: list[int],
    right: list[int],
    max_len: int,
    special: tuple[int, int],
    tag_ids: Sequence[int] | None,
) -> EncodedSentence:
    """[CLS] left context, core words, right context [SEP]; the context is split evenly within the budget, and a
    single word longer than the budget is cut after its first sub-tokens (its label is still read from the first)."""
    budget = max_len - 2
    core = [word[:budget] for word in pieces[start:end]]  # only a core of one word can exceed the budget
    room = budget - sum(map(len, core))
    take_left = min(len(left), max(room // 2, room - len(right)))
    take_right = min(len(right), room - take_left)
    cls_id, sep_id = special
    input_ids = [cls_id, *left[len(left) - take_left :]]
    labels = [IGNORE_INDEX] * len(input_ids)
    first_subtoken = []
    for offset, word in enumerate(core):
        first_subtoken.append(len(input_ids))
        input_ids.extend(word)
        labels.append(tag_ids[start + offset] if tag_ids is not None else IGNORE_INDEX)
        labels.extend([IGNORE_INDEX] * (len(word) - 1))
    input_ids += [*right[:take_right], sep_id]
    labels += [IGNORE_INDEX] * (take_right + 1)
    return EncodedSentence(input_ids, labels, first_subtoken)


def encode_examples(
    tokenizer: Tokenizer,
    sentences: Sequence[Sequence[str]],
    max_len: int,
    tag_ids: Sequence[Sequence[int]] | None = None,
    documents: Sequence[int] | None = None,
    document_context: bool = False,
) -> list[Example]:
    """Examples that label every word of every sentence exactly once (see the module docstring).

    ``documents`` gives each sentence's document number (neighbours from another document are never context).
    """
    pieces = [word_pieces(tokenizer, words) for words in sentences]
    documents = documents if documents is not None else [0] * len(sentences)
    special = (tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]"))
    budget = max_len - 2
    examples = []
    for row, words in enumerate(pieces):
        lengths = [len(word) for word in words]
        cores = [(0, len(words))] if sum(lengths) <= budget else plan_cores(lengths, max(1, budget // 2))
        for start, end in cores:
            left = [*_context(pieces, documents, row, -1, budget, document_context)[::-1], *_flat(words[:start])]
            right = [*_flat(words[end:]), *_context(pieces, documents, row, 1, budget, document_context)]
            tags = tag_ids[row] if tag_ids is not None else None
            examples.append(Example(row, start, _encode_core(words, start, end, left, right, max_len, special, tags)))
    return examples


def merge_word_scores(
    examples: Sequence[Example], example_scores: Sequence[np.ndarray], sentence_lengths: Sequence[int]
) -> list[np.ndarray]:
    """Per-word score rows of each sentence, ``(words, labels)``, put together from the examples that label them
    (every word is labelled by exactly one example, see :func:`encode_examples`)."""
    width = example_scores[0].shape[-1] if len(example_scores) else 0
    merged = [np.zeros((length, width)) for length in sentence_lengths]
    for example, scores in zip(examples, example_scores, strict=True):
        merged[example.sentence][example.start : example.start + len(scores)] = scores
    return merged


def pad_batch(sentences: Sequence[EncodedSentence], pad_id: int) -> dict[str, np.ndarray]:
    """Right-pad a batch to its longest member; the attention mask marks real tokens."""
    width = max(len(sentence.input_ids) for sentence in sentences)
    input_ids = np.full((len(sentences), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(sentences), width), dtype=np.int64)
    labels = np.full((len(sentences), width), IGNORE_INDEX, dtype=np.int64)
    for row, sentence in enumerate(sentences):
        length = len(sentence.input_ids)
        input_ids[row, :length] = sentence.input_ids
        attention_mask[row, :length] = 1
        labels[row, :length] = sentence.labels
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def word_log_probs(logits: np.ndarray, sentences: Sequence[EncodedSentence]) -> list[np.ndarray]:
    """Each word's label log-probabilities, read at its first sub-token, as ``(words, labels)`` per sentence; a word
    cut off by ``max_len`` (only :func:`encode_words` cuts) gets a uniform row, so decoding falls back to label 0."""
    log_probs = log_softmax(logits)
    uniform = np.full(logits.shape[-1], -np.log(logits.shape[-1]))
    return [
        np.stack([log_probs[row, position] if position >= 0 else uniform for position in sentence.first_subtoken])
        if sentence.first_subtoken
        else np.zeros((0, logits.shape[-1]))
        for row, sentence in enumerate(sentences)
    ]
