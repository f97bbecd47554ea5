"""The download stage's logic: fetch the corpus and the task's data from the configured source, write one
normalized form.

Four sources, chosen by ``data.source`` in ``params.yaml``: ``demo`` (generated, offline), ``local`` (files read in
place), ``hf`` (``datasets.load_dataset``, a hub name or a local folder) and ``url`` (http(s) files checked against
their sha256). The corpus is read here; the task's splits by the task (:func:`load_ner` for NER, the classification
task's own reader), as a :class:`TaskSplits` that writes itself. Whatever the source, :func:`materialize` writes::

    corpus_dir/shard-00000.txt ...     UTF-8, one paragraph per line, a blank line between documents, <= 50 MB each
    task_dir/...                       the task's normalized splits (NER: {train,valid,test}.txt, CoNLL in IOB2)

Both directories are replaced atomically, so a failed run leaves the previous outputs as they were::

    from electra_model.config import load_params
    params = load_params()
    ner = load_ner(params.data, params.seed)
    summary = materialize(params.data, params.seed, Path("data/corpus"), Path("data/task"), ner)
"""

from __future__ import annotations

import glob
import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol
from urllib.parse import urlparse

from tqdm import tqdm

from electra_model.config import DataParams, HfCorpus, HfNer, RemoteFile
from electra_model.data.conll import (
    DOCSTART,
    Scheme,
    Sentence,
    apply_scheme,
    check_labels_known,
    check_tag,
    check_token,
    count_entities,
    read_conll,
    read_lines,
    write_conll,
)
from electra_model.data.demo import demo_corpus, demo_ner, derive_seed
from electra_model.errors import ElectraError
from electra_model.io import atomic_dir, atomic_file

if TYPE_CHECKING:
    from datasets import Dataset

SPLITS = ("train", "valid", "test")
SHARD_BYTES = 50_000_000
DOWNLOAD_CACHE = Path("cache/downloads")
DOWNLOAD_TIMEOUT_S = 60.0
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


def _ner_summary(sentences: Sequence[Sentence]) -> dict[str, Any]:
    return {
        "sentences": len(sentences),
        "tokens": sum(len(sentence.tokens) for sentence in sentences),
        "entities": count_entities(sentences),
    }


@dataclass(frozen=True)
class NerSplits:
    """The three NER splits in IOB2, with where each came from."""

    splits: dict[str, list[Sentence]]
    origins: dict[str, str]
    task: ClassVar[str] = "ner"

    def write(self, folder: Path) -> dict[str, Any]:
        for split, sentences in self.splits.items():
            write_conll(folder / f"{split}.txt", sentences)
        return {
            split: {"origin": self.origins[split], **_ner_summary(sentences)} for split, sentences in self.splits.items()
        }


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


def _demo_ner(data: DataParams, seed: int, cache_dir: Path) -> NerSplits:
    """Generated sentences; each split has its own derived seed, so the splits differ from each other."""
    sizes = demo_sizes(data)
    return NerSplits(
        {split: demo_ner(sizes[split], derive_seed(seed, split)) for split in SPLITS},
        {split: f"demo {split} split" for split in SPLITS},
    )


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


def _local_ner_path(data: DataParams, split: str) -> Path:
    """The split's CoNLL file, which must exist: a missing one names its param key."""
    path = Path(getattr(data.local.ner, split)).expanduser()
    if not path.is_file():
        raise ElectraError(
            f"data.local.ner.{split}: {str(path)!r} is not a file (relative paths start at {Path.cwd()}); fix the path"
        )
    return path


def _local_corpus(data: DataParams, seed: int, cache_dir: Path) -> Corpus:
    """The user's own text files, read in place and streamed, so shards of any size fit."""
    corpus_files = _resolve_corpus(data.local.corpus, "data.local.corpus")
    return Corpus(_file_lines(corpus_files), f"data.local.corpus ({', '.join(map(str, corpus_files))})")


def _local_ner(data: DataParams, seed: int, cache_dir: Path) -> NerSplits:
    """The user's own CoNLL files, read in place."""
    ner_paths = {split: _local_ner_path(data, split) for split in SPLITS}
    return NerSplits(
        {split: read_conll(path, data.ner_scheme) for split, path in ner_paths.items()},
        {split: str(path) for split, path in ner_paths.items()},
    )


def _file_name(url: str) -> str:
    """The url's last path segment, kept so the cached file's suffix (``.gz``) still says how to read it."""
    return PurePosixPath(urlparse(url).path).name or "download"


def _fetch(remote: RemoteFile, key: str, target: Path) -> None:
    """Stream the url into ``target`` while hashing it; a wrong checksum leaves nothing behind."""
    digest = hashlib.sha256()
    log.info("downloading %s", remote.url)
    with (
        urllib.request.urlopen(remote.url, timeout=DOWNLOAD_TIMEOUT_S) as response,
        atomic_file(target, "wb") as handle,
    ):
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=None) as progress:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                handle.write(chunk)
                progress.update(len(chunk))
        if digest.hexdigest() != remote.sha256:
            raise ElectraError(
                f"{key}: {remote.url} has sha256 {digest.hexdigest()}, but {key}.sha256 is {remote.sha256}; "
                f"if the file changed on purpose, update {key}.sha256 in params.yaml, otherwise check the url"
            )


def _download(remote: RemoteFile, key: str, cache_dir: Path) -> Path:
    """The verified local copy of a remote file, cached by checksum so that a re-run does not download again."""
    target = cache_dir / remote.sha256 / _file_name(remote.url)
    if target.is_file():
        log.info("using cached %s for %s", target, remote.url)
        return target
    try:
        _fetch(remote, key, target)
    except urllib.error.HTTPError as error:
        raise ElectraError(
            f"{key}.url: {remote.url} answered HTTP {error.code} {error.reason}; check the url"
        ) from None
    except urllib.error.URLError as error:
        raise ElectraError(
            f"{key}.url: cannot reach {remote.url} ({error.reason}); check the url and the network"
        ) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
        raise ElectraError(
            f"{key}.url: download of {remote.url} failed ({error!r}); try again or check the server"
        ) from None
    return target


def _url_corpus(data: DataParams, seed: int, cache_dir: Path) -> Corpus:
    """Remote text files, downloaded (or found in the cache) before anything is written, then read like local
    files."""
    corpus_files = [
        _download(remote, f"data.url.corpus[{index}]", cache_dir) for index, remote in enumerate(data.url.corpus)
    ]
    return Corpus(
        _file_lines(corpus_files), f"data.url.corpus ({', '.join(remote.url for remote in data.url.corpus)})"
    )


def _url_ner(data: DataParams, seed: int, cache_dir: Path) -> NerSplits:
    """Remote CoNLL files, downloaded (or found in the cache), then read like local files."""
    ner_paths = {split: _download(getattr(data.url.ner, split), f"data.url.ner.{split}", cache_dir) for split in SPLITS}
    return NerSplits(
        {split: read_conll(path, data.ner_scheme) for split, path in ner_paths.items()},
        {split: f"{getattr(data.url.ner, split).url} (cached as {path})" for split, path in ner_paths.items()},
    )


# ------------------------------------------------------------------------------------------ hf datasets
def _load_hf_split(path: str, name: str | None, split: str, key: str) -> Dataset:
    """One split via ``load_dataset``, which takes a hub name and a local folder of data files alike.

    ``datasets`` is imported here because it is slow to import and only this source needs it.
    """
    import datasets

    try:
        return datasets.load_dataset(path, name, split=split)
    except (OSError, ValueError) as error:
        raise ElectraError(
            f"{key}: cannot load {path!r} (name {name!r}, split {split!r}): {error}; check the dataset name or "
            "folder, the split and, for the hub, the network"
        ) from None


def _require_column(dataset: Dataset, column: str, key: str) -> None:
    if column not in dataset.column_names:
        raise ElectraError(
            f"{key}: no column {column!r}; the dataset has {dataset.column_names}; set {key} to one of them"
        )


def _hf_corpus_lines(dataset: Dataset, column: str, limit: int | None) -> Iterator[str]:
    """Rows split into lines (a row may hold a whole document); an empty row is a document break, as in wikitext."""
    lines = (
        line
        for batch in dataset.iter(batch_size=1000)
        for text in batch[column]
        for line in ((text or "").splitlines() or [""])
    )
    return islice(lines, limit)


def _tag_namer(dataset: Dataset, column: str) -> Callable[[Any], str]:
    """Tag ids become names through the column's ClassLabel; a column of strings already holds the names."""
    from datasets import ClassLabel, Value

    inner = getattr(dataset.features[column], "feature", None)
    if isinstance(inner, ClassLabel):
        return inner.int2str
    if isinstance(inner, Value) and inner.dtype in ("string", "large_string"):
        return str
    raise ElectraError(
        f"data.hf.ner.tags_column: column {column!r} is {dataset.features[column]}, not a sequence of ClassLabel "
        "or strings; choose the column that holds the NER tags"
    )


def _hf_sentences(dataset: Dataset, ner: HfNer, where: str) -> tuple[list[Sentence], list[int]]:
    """Validated sentences with their row numbers; empty and ``-DOCSTART-`` rows are skipped as in CoNLL files."""
    tag_name = _tag_namer(dataset, ner.tags_column)
    sentences: list[Sentence] = []
    rows: list[int] = []
    for row, (tokens, tag_ids) in enumerate(zip(dataset[ner.tokens_column], dataset[ner.tags_column], strict=True)):
        if not tokens or tokens[0] == DOCSTART:
            continue
        if len(tokens) != len(tag_ids):
            raise ElectraError(
                f"{where} row {row}: {len(tokens)} tokens but {len(tag_ids)} tags; fix the dataset or the columns"
            )
        tags = tuple(tag_name(tag_id) for tag_id in tag_ids)
        for index, (token, tag) in enumerate(zip(tokens, tags, strict=True)):
            check_token(token, f"{where} row {row} token {index}")
            check_tag(tag, f"{where} row {row} token {index}")
        sentences.append(Sentence(tuple(tokens), tags))
        rows.append(row)
    return sentences, rows


def _hf_ner_split(ner: HfNer, split: str, scheme: Scheme) -> tuple[list[Sentence], str]:
    """One NER split from the dataset, in IOB2, with a description of where it came from for messages."""
    if split not in ner.splits:
        raise ElectraError(f"data.hf.ner.splits.{split} is not set; map it to a split name of {ner.path!r}")
    dataset = _load_hf_split(ner.path, ner.name, ner.splits[split], "data.hf.ner")
    _require_column(dataset, ner.tokens_column, "data.hf.ner.tokens_column")
    _require_column(dataset, ner.tags_column, "data.hf.ner.tags_column")
    where = f"{ner.path} split {ner.splits[split]!r}"
    sentences, rows = _hf_sentences(dataset, ner, where)
    if not sentences:
        raise ElectraError(f"{where}: no sentences; check data.hf.ner.splits.{split} and the dataset")

    def locate(sentence: int, token: int) -> str:
        return f"{where} row {rows[sentence]} token {token}"

    return apply_scheme(sentences, scheme, locate, where), where


def _hf_corpus(corpus: HfCorpus, limit: int | None) -> Iterator[str]:
    """Load the text dataset now (so a bad name fails before anything is written) and stream its lines later."""
    dataset = _load_hf_split(corpus.path, corpus.name, corpus.split, "data.hf.corpus")
    _require_column(dataset, corpus.text_column, "data.hf.corpus.text_column")
    return _hf_corpus_lines(dataset, corpus.text_column, limit)


def _hf_corpus_source(data: DataParams, seed: int, cache_dir: Path) -> Corpus:
    """A text dataset through ``datasets.load_dataset``."""
    corpus = data.hf.corpus
    return Corpus(
        _hf_corpus(corpus, data.hf.max_corpus_lines),
        f"data.hf.corpus ({corpus.path!r}, name {corpus.name!r}, split {corpus.split!r}, column {corpus.text_column!r})",
    )


def _hf_ner(data: DataParams, seed: int, cache_dir: Path) -> NerSplits:
    """A token-classification dataset; tag names come from the dataset's ClassLabel feature."""
    splits = {split: _hf_ner_split(data.hf.ner, split, data.ner_scheme) for split in SPLITS}
    return NerSplits(
        {split: sentences for split, (sentences, _) in splits.items()},
        {split: where for split, (_, where) in splits.items()},
    )


CORPUS_SOURCES: dict[str, Callable[[DataParams, int, Path], Corpus]] = {
    "demo": _demo_corpus, "local": _local_corpus, "hf": _hf_corpus_source, "url": _url_corpus,
}
NER_SOURCES: dict[str, Callable[[DataParams, int, Path], NerSplits]] = {
    "demo": _demo_ner, "local": _local_ner, "hf": _hf_ner, "url": _url_ner,
}


# ------------------------------------------------------------------------------------------------- stage
def load_ner(params: DataParams, seed: int, cache_dir: Path = DOWNLOAD_CACHE) -> NerSplits:
    """The NER splits from the configured source, in IOB2; a valid or test tag that train lacks is an error."""
    ner = NER_SOURCES[params.source](params, seed, Path(cache_dir))
    for split in ("valid", "test"):
        check_labels_known(ner.splits["train"], ner.splits[split], ner.origins[split])
    return ner


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
