"""Pretraining input: the corpus tokenized once and packed into full-length [CLS] ... [SEP] blocks.

Packing the token stream into blocks of exactly ``max_seq_len`` wastes no compute on padding. The blocks are stored
as a uint16 (or uint32 for large vocabularies) ``.npy`` array, memory-mapped at training time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from electra_model.errors import ElectraError
from electra_model.io import atomic_file
from electra_model.progress import log_line, progress


def _batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(lines)
    while batch := list(islice(iterator, size)):
        yield batch


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every token id: half the memory of int32 for vocabularies < 65,536."""
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def pack_blocks(tokenizer: Tokenizer, lines: Iterable[str], max_seq_len: int, batch_lines: int = 2048) -> np.ndarray:
    """Tokenize ``lines`` (in parallel batches) and cut the stream into blocks of ``max_seq_len`` with [CLS]/[SEP]."""
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    body = max_seq_len - 2
    dtype = token_dtype(tokenizer.get_vocab_size())
    chunks: list[np.ndarray] = []
    total_tokens = 0
    for batch in progress(_batches(lines, batch_lines), total=None, description="tokenizing corpus"):
        for encoding in tokenizer.encode_batch(batch, add_special_tokens=False):
            chunks.append(np.asarray(encoding.ids, dtype=dtype))
            total_tokens += len(encoding.ids)
    stream = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
    n_blocks = len(stream) // body
    if n_blocks == 0:
        raise ElectraError(
            f"the corpus has {len(stream)} tokens, fewer than one block of pretrain.max_seq_len={max_seq_len}; "
            "use a larger corpus or a smaller pretrain.max_seq_len"
        )
    blocks = np.empty((n_blocks, max_seq_len), dtype=dtype)
    blocks[:, 0] = cls_id
    blocks[:, 1:-1] = stream[: n_blocks * body].reshape(n_blocks, body)
    blocks[:, -1] = sep_id
    log_line(f"packed {total_tokens:,} tokens into {n_blocks:,} blocks of {max_seq_len}")
    return blocks


def save_blocks(blocks: np.ndarray, path: Path) -> None:
    """Write the block array atomically, so a killed run never leaves a truncated cache behind."""
    with atomic_file(path, "wb") as handle:
        np.save(handle, blocks)


def load_blocks(path: Path) -> np.ndarray:
    """Memory-map the block array: the corpus need not fit in RAM."""
    return np.load(path, mmap_mode="r")
