"""The download stage's logic: fetch the corpus and the task's data from the configured source, write one
normalized form.

Four sources, chosen by ``data.source`` in ``params.yaml``: ``demo`` (generated, offline), ``local`` (files read in
place), ``hf`` (``datasets.load_dataset``, a hub name or a local folder) and ``url`` (http(s) files checked against
their sha256). The corpus is read here; the task's splits by the task's own reader
(:mod:`electra_model.tasks.ner.data`, :mod:`electra_model.tasks.classification.data`), as a :class:`TaskSplits` that
writes itself. Whatever the source, :func:`materialize` writes::

    corpus_dir/shard-00000.txt ...     UTF-8, one paragraph per line, a blank line between documents, <= 50 MB each
    task_dir/...                       the task's normalized splits (NER: {train,valid,test}.txt, CoNLL in IOB2)

Both directories are replaced atomically, so a failed run leaves the previous outputs as they were::

    from electra_model.config import load_params
    from electra_model.tasks.catalog import task_for
    params = load_params()
    task_data = task_for(params).load_data(params, DOWNLOAD_CACHE)
    summary = materialize(params.data, params.seed, Path("data/corpus"), Path("data/task"), task_data)
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol

from tqdm import tqdm

from electra_model.config import DataParams, HfCorpus
from electra_model.data.demo import demo_corpus, derive_seed
from electra_model.data.files import read_lines
from electra_model.data.hf import load_hf_split, require_column
from electra_model.data.remote import DOWNLOAD_CACHE, download
from electra_model.errors import ElectraError
from electra_model.io import atomic_dir

if TYPE_CHECKING:
    from datasets import Dataset

SPLITS = ("train", "valid", "test")
SHARD_BYTES = 50_000_000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Corpus:
    """The pretraining text a source delivers: lines, streamed (a blank line ends a document), and their origin."""

    lines: Iterable[str]
    origin: str


class TaskSplits(Protocol):
    """A task's train, valid and test data, already read and checked, which writes itself in the task's normalized
    form; ``task`` (the params value) keys its part of the download summary."""

    task: ClassVar[str]

    def write(self, folder: Path) -> dict[str, Any]:
        """Write the three splits into ``folder``; return a summary per split."""
        ...


# -------------------------------------------------------------------------------------------------- corpus
class _ShardWriter:
    """Numbered shards, each closed before a line would push it past the size limit, so no file grows unbounded."""

    def __init__(self, out_dir: Path, limit: int) -> None:
        self.out_dir, self.limit = out_dir, limit
        self.handle: BinaryIO | None = None
        self.size = 0
        self.shards = 0

    def write_line(self, line: bytes, after_document_end: bool) -> None:
        """Write one paragraph; a document break becomes a blank line unless the paragraph opens a new shard."""
        separator = b"\n" if after_document_end else b""
        if self.handle is None or (self.size + len(separator) + len(line) > self.limit and self.size > 0):
            self.close()
            self.handle = open(self.out_dir / f"shard-{self.shards:05d}.txt", "wb")
            self.shards += 1
            self.size, separator = 0, b""
        self.handle.write(separator + line)
        self.size += len(separator) + len(line)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def write_corpus(lines: Iterable[str], out_dir: Path, shard_bytes: int = SHARD_BYTES) -> dict[str, int]:
    """Normalize whitespace, collapse runs of blank lines into one document break, and write size-capped shards.

    A shard may end inside a document (the next shard continues it): pretraining packs text into blocks anyway,
    and cutting anywhere keeps every shard under the limit. Returns the counts for the stage's summary.
    """
    counts = {"shards": 0, "documents": 0, "lines": 0, "characters": 0}
    writer = _ShardWriter(out_dir, shard_bytes)
    in_document = document_ended = False
    try:
        for raw in tqdm(lines, desc="corpus", unit=" lines", disable=None):
            line = " ".join(raw.split())
            if not line:
                counts["documents"] += in_document
                document_ended, in_document = document_ended or in_document, False
                continue
            writer.write_line(f"{line}\n".encode(), document_ended)
            in_document, document_ended = True, False
            counts["lines"] += 1
            counts["characters"] += len(line)
    finally:
        writer.close()
    counts["documents"] += in_document
    counts["shards"] = writer.shards
    return counts


def _document_lines(documents: Iterable[str]) -> Iterator[str]:
    """Documents as corpus lines: their paragraphs, then a blank line."""
    for document in documents:
        yield from document.split("\n")
        yield ""


def _file_lines(paths: Sequence[Path]) -> Iterator[str]:
    """Stream the lines of text files in order; the end of a file also ends a document."""
    for path in paths:
        log.info("reading %s", path)
        for _, line in read_lines(path):
            yield line
        yield ""


# ----------------------------------------------------------------------------------------------- sources
def demo_sizes(data: DataParams) -> dict[str, int]:
    """The demo split sizes, for whichever task generates them."""
    return {"train": data.demo.train_sentences, "valid": data.demo.valid_sentences, "test": data.demo.test_sentences}


def _demo_corpus(data: DataParams, seed: int, cache_dir: Path) -> Corpus:
    """Generated documents, with their own derived seed, so they differ from every task split."""
    documents = demo_corpus(data.demo.corpus_documents, derive_seed(seed, "corpus"))
    return Corpus(_document_lines(documents), f"data.demo ({data.demo.corpus_documents} generated documents)")


def _resolve_corpus(patterns: Sequence[str], key: str) -> list[Path]:
    """Expand paths and globs in order; one that matches no file is an error, not a silently smaller corpus."""
    files: dict[Path, None] = {}
    for index, pattern in enumerate(patterns):
        matches = sorted(
            Path(match) for match in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(match)
        )
        if not matches:
            raise ElectraError(
                f"{key}[{index}]: {pattern!r} matches no file (relative paths start at {Path.cwd()}); "
                "fix the path or the pattern"
            )
        files.update(dict.fromkeys(matches))
    return list(files)


def _local_corpus(data: DataParams, seed: int, cache_dir: Path) -> Corpus:
    """The user's own text files, read in place and streamed, so shards of any size fit."""
    corpus_files = _resolve_corpus(data.local.corpus, "data.local.corpus")
    return Corpus(_file_lines(corpus_files), f"data.local.corpus ({', '.join(map(str, corpus_files))})")


def _url_corpus(data: DataParams, seed: int, cache_dir: Path) -> Corpus:
    """Remote text files, downloaded (or found in the cache) before anything is written, then read like local
    files."""
    corpus_files = [
        download(remote, f"data.url.corpus[{index}]", cache_dir) for index, remote in enumerate(data.url.corpus)
    ]
    return Corpus(
        _file_lines(corpus_files), f"data.url.corpus ({', '.join(remote.url for remote in data.url.corpus)})"
    )


# ------------------------------------------------------------------------------------------ hf datasets
def _hf_corpus_lines(dataset: Dataset, column: str, limit: int | None) -> Iterator[str]:
    """Rows split into lines (a row may hold a whole document); an empty row is a document break, as in wikitext."""
    lines = (
        line
        for batch in dataset.iter(batch_size=1000)
        for text in batch[column]
        for line in ((text or "").splitlines() or [""])
    )
    return islice(lines, limit)


def _hf_corpus(corpus: HfCorpus, limit: int | None) -> Iterator[str]:
    """Load the text dataset now (so a bad name fails before anything is written) and stream its lines later."""
    dataset = load_hf_split(corpus.path, corpus.name, corpus.split, "data.hf.corpus")
    require_column(dataset, corpus.text_column, "data.hf.corpus.text_column")
    return _hf_corpus_lines(dataset, corpus.text_column, limit)


def _hf_corpus_source(data: DataParams, seed: int, cache_dir: Path) -> Corpus:
    """A text dataset through ``datasets.load_dataset``."""
    corpus = data.hf.corpus
    return Corpus(
        _hf_corpus(corpus, data.hf.max_corpus_lines),
        f"data.hf.corpus ({corpus.path!r}, name {corpus.name!r}, split {corpus.split!r}, column {corpus.text_column!r})",
    )


CORPUS_SOURCES: dict[str, Callable[[DataParams, int, Path], Corpus]] = {
    "demo": _demo_corpus, "local": _local_corpus, "hf": _hf_corpus_source, "url": _url_corpus,
}
# ------------------------------------------------------------------------------------------------- stage
def materialize(
    params: DataParams,
    seed: int,
    corpus_dir: Path,
    task_dir: Path,
    task_data: TaskSplits,
    cache_dir: Path = DOWNLOAD_CACHE,
) -> dict[str, Any]:
    """Write the normalized corpus from the configured source and the task's splits; return a summary of them.

    ``task_data`` is read and checked before this is called, and the corpus source is opened before anything is
    written; both output directories are replaced only when everything succeeded, so an error leaves the previous
    outputs as they were.
    """
    corpus_source = CORPUS_SOURCES[params.source](params, seed, Path(cache_dir))
    with atomic_dir(corpus_dir) as corpus_staging, atomic_dir(task_dir) as task_staging:
        task_summary = task_data.write(task_staging)
        corpus = write_corpus(corpus_source.lines, corpus_staging)
        if corpus["lines"] == 0:
            raise ElectraError(
                f"{corpus_source.origin} produced no text (no non-blank line); point it at files with text"
            )
    return {"source": params.source, "corpus": {"origin": corpus_source.origin, **corpus}, task_data.task: task_summary}
