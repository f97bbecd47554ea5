"""Words to sub-token model inputs and back: the one alignment rule used by training, evaluation and serving.

The label of a word sits on its first sub-token; the other sub-tokens get ``IGNORE_INDEX`` so the loss skips them,
and a word's prediction is read from its first sub-token. Only ``tokenizers`` and numpy are used, so the
torch-free inference client shares this code with training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedSentence:
    """One sentence as model input, with the position of each word's first sub-token (-1 if it was cut off)."""

    input_ids: list[int]
    labels: list[int]
    first_subtoken: list[int]


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


def word_tags(
    logits: np.ndarray, sentences: Sequence[EncodedSentence], id2label: dict[int, str], fallback: str = "O"
) -> list[list[str]]:
    """Read each word's tag from its first sub-token's logits; a word cut off by ``max_len`` gets ``fallback``."""
    predicted = logits.argmax(-1)
    result = []
    for row, sentence in enumerate(sentences):
        result.append(
            [id2label[int(predicted[row, position])] if position >= 0 else fallback for position in sentence.first_subtoken]
        )
    return result
