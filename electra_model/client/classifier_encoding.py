"""The torch-free half of sequence classification: texts (or pairs) to model inputs, and logits to labelled scores.

Training (:mod:`electra_model.tasks.classification.train`) encodes with :func:`encode` too, so the exported model
sees in serving exactly the inputs it was trained on. Only numpy, tokenizers and onnxruntime are imported, so the
light client can ship this module without torch::

    session = onnxruntime.InferenceSession("model.onnx")
    tokenizer = tokenizers.Tokenizer.from_file("tokenizer.json")
    classify(session, tokenizer, ["a gripping film"], labels=["0", "1"], max_len=128)
    # [{"label": "1", "score": 0.93, "scores": {"0": 0.07, "1": 0.93}}]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from electra_model.errors import ElectraError

CLS, SEP, PAD = "[CLS]", "[SEP]", "[PAD]"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Encoded:
    """One model input: ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``, with segment ids 0 for a and 1 for b."""

    input_ids: list[int]
    token_type_ids: list[int]


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """Ids of [CLS], [SEP] and [PAD], looked up by name: a foreign vocabulary orders them differently."""
    ids = {token: tokenizer.token_to_id(token) for token in (CLS, SEP, PAD)}
    missing = [token for token, index in ids.items() if index is None]
    if missing:
        raise ElectraError(f"the tokenizer lacks the special tokens {missing}; use the tokenizer saved with the model")
    return ids


def _truncate(first: list[int], second: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Cut the longer text's tail first (transformers' ``longest_first``), so a long premise does not erase a short
    hypothesis."""
    first, second = list(first), list(second)
    while len(first) + len(second) > budget:
        if len(first) >= len(second):
            first.pop()
        else:
            second.pop()
    return first, second


def encode(
    tokenizer: Tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_len: int
) -> list[Encoded]:
    """Model inputs of at most ``max_len`` tokens for each text (or text pair).

    Special tokens are added here rather than by the tokenizer's post-processor, so a checkpoint's tokenizer
    without one (or with another template) still gives the layout the model was fine-tuned on.
    """
    if pairs is not None and len(pairs) != len(texts):
        raise ElectraError(f"{len(texts)} texts but {len(pairs)} second texts; give one second text per text")
    ids = special_ids(tokenizer)
    budget = max_len - (3 if pairs is not None else 2)
    if budget < 2:
        raise ElectraError(f"max_len {max_len} leaves no room for text beside the special tokens; raise it")
    firsts = [encoding.ids for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    seconds = (
        [encoding.ids for encoding in tokenizer.encode_batch(list(pairs), add_special_tokens=False)]
        if pairs is not None
        else [[] for _ in texts]
    )
    encoded = []
    for first, second in zip(firsts, seconds, strict=True):
        first, second = _truncate(first, second, budget)
        input_ids = [ids[CLS], *first, ids[SEP]]
        if pairs is not None:
            input_ids += [*second, ids[SEP]]
        token_types = [0] * (len(first) + 2) + [1] * (len(input_ids) - len(first) - 2)
        encoded.append(Encoded(input_ids, token_types))
    return encoded


def pad_batch(encoded: Sequence[Encoded], pad_id: int) -> dict[str, np.ndarray]:
    """int64 arrays padded to the batch's longest input; the attention mask hides the padding."""
    width = max(len(item.input_ids) for item in encoded)
    batch = {name: np.zeros((len(encoded), width), dtype=np.int64) for name in INPUT_NAMES}
    batch["input_ids"].fill(pad_id)
    for row, item in enumerate(encoded):
        size = len(item.input_ids)
        batch["input_ids"][row, :size] = item.input_ids
        batch["attention_mask"][row, :size] = 1
        batch["token_type_ids"][row, :size] = item.token_type_ids
    return batch


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise probabilities, computed in float64 after subtracting the row maximum so large logits cannot
    overflow."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def to_predictions(logits: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per text ``{"label", "score", "scores"}``: the most probable label, its probability, and every label's."""
    if logits.ndim != 2 or logits.shape[1] != len(labels):
        raise ElectraError(
            f"the model gives {logits.shape[-1]} scores per text but there are {len(labels)} labels; the labels file "
            "does not belong to this model"
        )
    probabilities = softmax(logits)
    best = probabilities.argmax(axis=1)
    return [
        {
            "label": labels[index],
            "score": float(row[index]),
            "scores": {label: float(value) for label, value in zip(labels, row, strict=True)},
        }
        for index, row in zip(best, probabilities, strict=True)
    ]


def classify(
    session: ort.InferenceSession,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    labels: Sequence[str],
    max_len: int,
    pairs: Sequence[str] | None = None,
    batch_size: int = 32,
) -> list[dict[str, Any]]:
    """Label each text (or pair) with an ONNX classifier, in input order.

    Texts are batched in order of length (less padding), and only the inputs the graph declares are fed: an
    export may drop ``token_type_ids`` when a model ignores it.
    """
    if not texts:
        return []
    pad_id = special_ids(tokenizer)[PAD]
    encoded = encode(tokenizer, texts, pairs, max_len)
    wanted = [node.name for node in session.get_inputs()]
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index].input_ids))
    logits = np.zeros((len(encoded), len(labels)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = pad_batch([encoded[index] for index in indices], pad_id)
        (batch_logits,) = session.run(["logits"], {name: batch[name] for name in wanted})
        if batch_logits.shape[-1] != len(labels):
            raise ElectraError(
                f"the model gives {batch_logits.shape[-1]} scores per text but there are {len(labels)} labels; "
                "the labels file does not belong to this model"
            )
        logits[indices] = batch_logits
    return to_predictions(logits, labels)
