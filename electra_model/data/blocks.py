"""Pretraining input: the corpus tokenized once into a memory-mapped token stream, read as full-length blocks.

:func:`cached_token_stream` tokenizes the corpus in parallel batches (the tokenizers library encodes a batch on
all cores) with a progress bar, and writes the ids as one flat uint16 file (uint32 for vocabularies over 65,536)
whose name carries a key of the tokenizer and the corpus; a re-run memory-maps that file instead of tokenizing
again. :class:`PackedBlocks` cuts the stream into ``[CLS] + (max_seq_len - 2) tokens + [SEP]`` blocks on the fly:
no padding, and one tokenization serves every ``max_seq_len``.

Documents stay apart: a :data:`~electra_model.data.tokenizer.DOCUMENT_BREAK` line becomes a [SEP] in the stream, so a
block that spans two documents has a [SEP] between them. google-research/electra's example builder ends an example
at a document's end instead and pads the rest; a separator keeps every block full (no padding, static shapes)
while the discriminator still sees where the text changes, as packed pretraining (RoBERTa's FULL-SENTENCES,
cramming) does::

    lines = lambda: corpus_lines(corpus_dir, document_breaks=True)
    stream = cached_token_stream(tokenizer, lines, Path("cache/pretrain/tokens-<key>"))
    blocks = PackedBlocks.for_tokenizer(stream, tokenizer, max_seq_len=128)
    blocks[np.array([7, 3])]   # (2, 128) array of token ids
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from electra_model.errors import ElectraError
from electra_model.io import atomic_file
from electra_model.progress import is_interactive, log_line, progress
from electra_model.data.tokenizer import DOCUMENT_BREAK, SEP

BATCH_CHARS = 1 << 20  # text per encode_batch call: enough to keep every core busy, small enough to stream
# The token stream's layout, part of a cached stream's file name: change it whenever encode_stream's output changes,
# so a stream written by older code is never reused. "docsep": a [SEP] at every document break.
STREAM_FORMAT = "docsep"


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every token id: half the memory of int32 for vocabularies < 65,536."""
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def _text_batches(lines: Iterable[str], max_chars: int) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= max_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def encode_stream(tokenizer: Tokenizer, lines: Iterable[str], total_chars: int | None = None) -> Iterator[np.ndarray]:
    """Token ids of ``lines`` in order, one array per batch, a [SEP] for each document break; a bar on a terminal,
    a line per 10% in CI."""
    dtype = token_dtype(tokenizer.get_vocab_size())
    separator = [tokenizer.token_to_id(SEP)]
    total_batches = math.ceil(total_chars / BATCH_CHARS) if total_chars else None
    batches = progress(_text_batches(lines, BATCH_CHARS), total=total_batches, description="tokenizing corpus")
    done, reported = 0, 0
    for batch in batches:
        encodings = tokenizer.encode_batch_fast(batch, add_special_tokens=False)  # no character offsets: faster
        pieces = (separator if line == DOCUMENT_BREAK else encoding.ids for line, encoding in zip(batch, encodings))
        yield np.fromiter((i for ids in pieces for i in ids), dtype=dtype)
        done += sum(map(len, batch))
        if total_chars and not is_interactive() and done * 10 // total_chars > reported:
            reported = done * 10 // total_chars
            log_line(f"tokenizing corpus: {min(100, reported * 10)}% of {total_chars / 1e6:.0f}M characters")


def write_token_stream(
    tokenizer: Tokenizer, lines: Iterable[str], path: Path, total_chars: int | None = None
) -> np.memmap:
    """Tokenize ``lines`` into the flat id file ``path``, atomically: a killed run leaves no truncated cache."""
    count = 0
    with atomic_file(path, "wb") as handle:
        for ids in encode_stream(tokenizer, lines, total_chars):
            handle.write(ids.tobytes())
            count += len(ids)
        if count == 0:
            raise ElectraError("the corpus holds no tokens; check the download stage output (data/corpus)")
    log_line(f"tokenized the corpus into {count:,} tokens: {path}")
    return np.memmap(path, dtype=token_dtype(tokenizer.get_vocab_size()), mode="r")


def cached_token_stream(
    tokenizer: Tokenizer, lines: Callable[[], Iterable[str]], path_stem: Path, total_chars: int | None = None
) -> np.memmap:
    """The memory-mapped token stream at ``path_stem`` + format and dtype suffixes, tokenizing ``lines()`` only if
    absent.

    ``path_stem`` must name the tokenizer and corpus (a content hash) and :data:`STREAM_FORMAT` names the layout,
    so a cached stream is never stale.
    """
    dtype = token_dtype(tokenizer.get_vocab_size())
    path = path_stem.with_name(f"{path_stem.name}.{STREAM_FORMAT}.{dtype.name}")
    if path.is_file():
        log_line(f"reusing the tokenized corpus {path}")
        return np.memmap(path, dtype=dtype, mode="r")
    return write_token_stream(tokenizer, lines(), path, total_chars)


class PackedBlocks:
    """A token stream read as ``[CLS] body [SEP]`` blocks of exactly ``max_seq_len`` tokens; the tail is dropped."""

    def __init__(self, stream: np.ndarray, max_seq_len: int, cls_id: int, sep_id: int):
        body = max_seq_len - 2
        n_blocks = len(stream) // body
        if n_blocks == 0:
            raise ElectraError(
                f"the corpus has {len(stream)} tokens, fewer than one block of pretrain.max_seq_len={max_seq_len}; "
                "use a larger corpus or a smaller pretrain.max_seq_len"
            )
        self.bodies = stream[: n_blocks * body].reshape(n_blocks, body)
        self.max_seq_len, self.cls_id, self.sep_id = max_seq_len, cls_id, sep_id

    @classmethod
    def for_tokenizer(cls, stream: np.ndarray, tokenizer: Tokenizer, max_seq_len: int) -> PackedBlocks:
        return cls(stream, max_seq_len, tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]"))

    def __len__(self) -> int:
        return len(self.bodies)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.bodies), self.max_seq_len

    def head(self, count: int) -> PackedBlocks:
        """The first ``count`` blocks, on the same memory map: what a run trains on when it holds out the tail."""
        return PackedBlocks(self.bodies[:count].reshape(-1), self.max_seq_len, self.cls_id, self.sep_id)

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        """The blocks at ``indices`` (in that order), as a fresh in-memory array."""
        bodies = self.bodies[indices]
        out = np.empty((len(bodies), self.max_seq_len), dtype=bodies.dtype)
        out[:, 0], out[:, 1:-1], out[:, -1] = self.cls_id, bodies, self.sep_id
        return out


Blocks = np.ndarray | PackedBlocks
"""What pretraining reads blocks from: an in-memory (n_blocks, max_seq_len) array or the packed token stream."""


def pack_blocks(tokenizer: Tokenizer, lines: Iterable[str], max_seq_len: int) -> np.ndarray:
    """All blocks of a small corpus as one in-memory array (tests, quick experiments); the stage uses the cache."""
    chunks = list(encode_stream(tokenizer, lines))
    stream = np.concatenate(chunks) if chunks else np.zeros(0, dtype=token_dtype(tokenizer.get_vocab_size()))
    blocks = PackedBlocks.for_tokenizer(stream, tokenizer, max_seq_len)
    return blocks[np.arange(len(blocks))]
