"""Labelled texts (or text pairs) for sequence classification, read from files or Hugging Face datasets.

Three sources, as for NER (``local``, ``hf``, ``url``): ``.tsv``, ``.csv`` and ``.jsonl`` files (optionally
``.gz``) with named columns, a dataset for ``datasets.load_dataset``, or remote files downloaded, checked against
their sha256 and then read like local files::

    from electra_model.config import load_params
    params = load_params(overrides={"classification.local": {"train": "train.tsv.gz", "valid": "dev.tsv.gz",
                                                             "test": "dev.tsv.gz"}}).classification
    splits = load_splits(params, "local")
    labels = label_list(params, splits["train"])

:func:`load_task_data` adds the generated demo (``data.source: demo``) and returns the splits ready for the
download stage, which writes them normalized (:class:`ClassificationSplits`: ``{train,valid,test}.jsonl`` with
``text``, ``pair`` and ``label``); later stages read them back with :func:`read_normalized`.

Every example remembers where it came from (``file:line`` or ``dataset split row N``), so a missing column, an
empty text or a label the model does not know is reported at the line a user can open and fix.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from electra_model.config import ClassificationParams, DataParams
from electra_model.data.demo import derive_seed
from electra_model.data.demo_classification import demo_sentiment, demo_sentiment_pairs
from electra_model.data.files import local_file, read_lines
from electra_model.data.hf import load_hf_split
from electra_model.data.remote import DOWNLOAD_CACHE, download
from electra_model.data.sources import SPLITS, demo_sizes
from electra_model.errors import ElectraError

if TYPE_CHECKING:
    from datasets import Dataset

Source = Literal["local", "hf", "url"]
FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl"}


class Columns(Protocol):
    """Which record fields hold the text, the pair (``None``: single texts) and the label: the ``classification``
    section for the user's files, :class:`NormalizedColumns` for the files the download stage wrote."""

    @property
    def text_column(self) -> str: ...
    @property
    def text_pair_column(self) -> str | None: ...
    @property
    def label_column(self) -> str: ...


@dataclass(frozen=True)
class NormalizedColumns:
    """The columns of the normalized files: a fixed file format, not a knob, so not a params section."""

    text_column: str
    text_pair_column: str | None
    label_column: str


@dataclass(frozen=True)
class TextExample:
    """One text (or pair) with its label (``None`` for unlabelled input) and where it came from, for messages."""

    text: str
    pair: str | None
    label: str | None
    where: str


# ------------------------------------------------------------------------------------------------- records
def _file_format(path: Path) -> str:
    """The format a file's suffix names (``.gz`` looked through), so one reader serves every split."""
    suffix = Path(path.name.removesuffix(".gz")).suffix.lower()
    if suffix not in FORMATS:
        raise ElectraError(
            f"{path}: cannot tell the format from the suffix {suffix!r}; name the file .tsv, .csv or .jsonl "
            "(optionally .gz)"
        )
    return FORMATS[suffix]


def _delimited_records(path: Path, delimiter: str, quoting: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a delimited file with a header, each with the line it starts on; blank lines are skipped.

    TSV is read without quote handling (as GLUE's files are written: a text may start with a quote); CSV keeps the
    standard quoting, so a quoted field may span lines and is reported at its first line.
    """
    # read_lines strips line ends; give them back so a quoted CSV field keeps its inner newlines
    reader = csv.reader((f"{line}\n" for _, line in read_lines(path)), delimiter=delimiter, quoting=quoting)
    try:
        header = next(reader, None)
        if header is None:
            raise ElectraError(f"{path}: the file is empty; it needs a header line naming its columns")
        lines_read = reader.line_num
        for row in reader:
            first_line, lines_read = lines_read + 1, reader.line_num
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise ElectraError(
                    f"{path}:{first_line}: {len(row)} fields but the header has {len(header)} ({header}); "
                    "fix the line (a TSV field must not contain a tab)"
                )
            yield first_line, dict(zip(header, row, strict=True))
    except csv.Error as error:
        raise ElectraError(f"{path}:{reader.line_num}: not valid CSV ({error}); fix the quoting") from None


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """One JSON object per non-blank line."""
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ElectraError(f"{path}:{number}: not valid JSON ({error.msg}); one object per line") from None
        if not isinstance(record, dict):
            raise ElectraError(f"{path}:{number}: a JSON {type(record).__name__}, not an object with named fields")
        yield number, record


def file_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, record)`` for every row of a table file, whatever its format."""
    kind = _file_format(path)
    if kind == "jsonl":
        numbered = _jsonl_records(path)
    else:
        tsv = kind == "tsv"
        numbered = _delimited_records(path, "\t" if tsv else ",", csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    for number, record in numbered:
        yield f"{path}:{number}", record


# ------------------------------------------------------------------------------------------------ examples
def _text(record: Mapping[str, Any], column: str, key: str, where: str) -> str:
    """A text field that must be present and non-blank: an empty text would train or score on nothing."""
    if column not in record:
        raise ElectraError(
            f"{where}: no column {column!r} (the row has {sorted(record)}); set {key} to the column that holds it"
        )
    value = record[column]
    if value is None or not str(value).strip():
        raise ElectraError(f"{where}: the text in column {column!r} is empty; fill it or remove the row")
    return str(value)


def _label(record: Mapping[str, Any], column: str, where: str) -> str:
    if column not in record:
        raise ElectraError(
            f"{where}: no column {column!r} (the row has {sorted(record)}); set classification.label_column to the "
            "column that holds the label"
        )
    value = record[column]
    if value is None or not str(value).strip():
        raise ElectraError(f"{where}: the label in column {column!r} is empty; every row needs a label")
    return str(value).strip()


def to_examples(records: Iterable[tuple[str, Mapping[str, Any]]], params: Columns) -> list[TextExample]:
    """Examples from ``(where, record)`` rows, checked: every named column present, no empty text or label."""
    examples = []
    for where, record in records:
        text = _text(record, params.text_column, "classification.text_column", where)
        pair = None
        if params.text_pair_column is not None:
            pair = _text(record, params.text_pair_column, "classification.text_pair_column", where)
        examples.append(TextExample(text, pair, _label(record, params.label_column, where), where))
    return examples


def read_file(path: Path | str, params: Columns) -> list[TextExample]:
    """A split from a local table file; an empty one is an error, not a silently empty split."""
    path = Path(path).expanduser()
    examples = to_examples(file_records(path), params)
    if not examples:
        raise ElectraError(f"{path}: no rows after the header; the split needs labelled texts")
    return examples


# ---------------------------------------------------------------------------------------------- hf datasets
def _label_namer(dataset: Dataset, column: str) -> Any:
    """ClassLabel ids become their names (``negative``/``positive``), so labels read the same in every report."""
    from datasets import ClassLabel

    feature = dataset.features.get(column)
    return feature.int2str if isinstance(feature, ClassLabel) else None


def _hf_records(dataset: Dataset, params: ClassificationParams, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows as records, with ClassLabel ids named; GLUE marks an unlabelled row with -1, which is no label."""
    to_name = _label_namer(dataset, params.label_column)
    for row, record in enumerate(dataset):
        label = record.get(params.label_column)
        if to_name is not None and isinstance(label, int):
            if label < 0:
                raise ElectraError(
                    f"{where} row {row}: label id {label} means unlabelled (a benchmark's hidden test split); map "
                    "this split to a labelled one in classification.hf.splits"
                )
            record = {**record, params.label_column: to_name(label)}
        yield f"{where} row {row}", record


def read_hf_split(params: ClassificationParams, split: str) -> list[TextExample]:
    """One split via ``datasets.load_dataset``, its columns checked before any row is read."""
    hf = params.hf
    if split not in hf.splits:
        raise ElectraError(f"classification.hf.splits.{split} is not set; map it to a split name of {hf.path!r}")
    dataset = load_hf_split(hf.path, hf.name, hf.splits[split], "classification.hf")
    where = f"{hf.path} split {hf.splits[split]!r}"
    columns = {
        "classification.text_column": params.text_column,
        "classification.text_pair_column": params.text_pair_column,
        "classification.label_column": params.label_column,
    }
    for key, column in columns.items():
        if column is not None and column not in dataset.column_names:
            raise ElectraError(
                f"{where}: no column {column!r}; the dataset has {dataset.column_names}; set {key} to one of them"
            )
    examples = to_examples(_hf_records(dataset, params, where), params)
    if not examples:
        raise ElectraError(f"{where}: no rows; check classification.hf.splits.{split} and the dataset")
    return examples


# --------------------------------------------------------------------------------------------------- splits
def load_splits(
    params: ClassificationParams, source: Source, cache_dir: Path = DOWNLOAD_CACHE
) -> dict[str, list[TextExample]]:
    """The train, valid and test splits from ``source``, each checked against the label list (see
    :func:`check_labels`), so an unknown label stops the run before any training."""
    if source == "local":
        splits = {split: read_file(local_file(getattr(params.local, split), f"classification.local.{split}"), params)
                  for split in SPLITS}
    elif source == "url":
        splits = {split: read_file(download(getattr(params.url, split), f"classification.url.{split}", cache_dir), params)
                  for split in SPLITS}
    else:
        splits = {split: read_hf_split(params, split) for split in SPLITS}
    return checked(splits, params)


def checked(splits: dict[str, list[TextExample]], params: ClassificationParams) -> dict[str, list[TextExample]]:
    """``splits`` after checking every label against the label list (given, or inferred from train)."""
    labels = label_list(params, splits["train"])
    for examples in splits.values():
        check_labels(examples, labels, params)
    return splits


def label_list(params: ClassificationParams, train: Sequence[TextExample]) -> list[str]:
    """The labels in id order: ``classification.labels`` when given, else the train labels sorted (numbers by
    value, so ``2`` comes before ``10``), which gives the same ids for the same data on every run."""
    if params.labels is not None:
        return list(params.labels)
    seen = {example.label for example in train if example.label is not None}
    if len(seen) < 2:
        raise ElectraError(
            f"the train split has {len(seen)} distinct label(s) {sorted(seen)}; a classifier needs at least two"
        )
    check_no_stray_label(train)
    numeric = all(label.lstrip("-").isdigit() for label in seen)
    return sorted(seen, key=int) if numeric else sorted(seen)


STRAY_LABEL_MIN_COMMON = 10  # a label seen once beside one seen this often is taken for a typo, not a class


def check_no_stray_label(train: Sequence[TextExample]) -> None:
    """Refuse a train label seen once when another is common: inferred from train, a typo (``postive``) would
    silently become a class of its own, one the model can never learn and every report would list."""
    counts = Counter(example.label for example in train if example.label is not None)
    if max(counts.values()) < STRAY_LABEL_MIN_COMMON:
        return
    for example in train:
        if example.label is not None and counts[example.label] == 1:
            common = [label for label, _ in counts.most_common() if counts[label] > 1]
            raise ElectraError(
                f"{example.where}: label {example.label!r} occurs only here in the train split (the others: "
                f"{common}); fix it if it is a typo, or list every label in classification.labels to keep it"
            )


def check_labels(examples: Sequence[TextExample], labels: Sequence[str], params: ClassificationParams) -> None:
    """Every label must be one the model has; the first stranger is named with its line and the known labels."""
    known = set(labels)
    for example in examples:
        if example.label is not None and example.label not in known:
            origin = "classification.labels" if params.labels is not None else "the train split"
            raise ElectraError(
                f"{example.where}: label {example.label!r} is not among the labels {list(labels)} (from {origin}); "
                "fix the label, or list it in classification.labels"
            )


# ------------------------------------------------------------------------------------ the download stage's part
@dataclass(frozen=True)
class ClassificationSplits:
    """The three checked splits, with where each came from; written as the normalized ``<split>.jsonl``."""

    splits: dict[str, list[TextExample]]
    origins: dict[str, str]
    task: ClassVar[str] = "classification"

    def write(self, folder: Path) -> dict[str, Any]:
        """One JSON object per example (``text``, ``pair`` for a pair task, ``label``); a summary per split."""
        summary = {}
        for split, examples in self.splits.items():
            with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as handle:
                for example in examples:
                    record = {"text": example.text, **({"pair": example.pair} if example.pair is not None else {}),
                              "label": example.label}
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            counts: dict[str, int] = {}
            for example in examples:
                counts[str(example.label)] = counts.get(str(example.label), 0) + 1
            summary[split] = {"origin": self.origins[split], "examples": len(examples), "labels": dict(sorted(counts.items()))}
        return summary


def demo_splits(params: ClassificationParams, data: DataParams, seed: int) -> dict[str, list[TextExample]]:
    """Generated sentiment texts (pairs that agree or disagree when ``text_pair_column`` is set), sized by
    ``data.demo``, each split from its own derived seed."""
    splits = {}
    for split, size in demo_sizes(data).items():
        split_seed = derive_seed(seed, f"classification/{split}")
        where = f"demo {split} split row"
        if params.text_pair_column is not None:
            rows = demo_sentiment_pairs(size, split_seed)
            splits[split] = [TextExample(a, b, label, f"{where} {i}") for i, (a, b, label) in enumerate(rows)]
        else:
            rows = demo_sentiment(size, split_seed)
            splits[split] = [TextExample(text, None, label, f"{where} {i}") for i, (text, label) in enumerate(rows)]
    return splits


def _origin(params: ClassificationParams, source: str, split: str) -> str:
    if source == "local":
        return str(getattr(params.local, split))
    if source == "url":
        return getattr(params.url, split).url
    if source == "hf":
        return f"{params.hf.path} split {params.hf.splits.get(split)!r}"
    return f"demo {split} split"


def load_task_data(
    params: ClassificationParams, data: DataParams, seed: int, cache_dir: Path = DOWNLOAD_CACHE
) -> ClassificationSplits:
    """The splits from ``data.source`` (the demo, or ``classification.local``/``hf``/``url``), read and checked
    before the download stage writes anything."""
    if data.source == "demo":
        splits = checked(demo_splits(params, data, seed), params)
    else:
        splits = load_splits(params, data.source, cache_dir)
    return ClassificationSplits(splits, {split: _origin(params, data.source, split) for split in SPLITS})


def normalized_columns(pairs: bool) -> NormalizedColumns:
    """The columns of the normalized files: ``text``, ``pair`` when a pair task, ``label``."""
    return NormalizedColumns("text", "pair" if pairs else None, "label")


def read_normalized(path: Path, params: ClassificationParams) -> list[TextExample]:
    """A split the download stage wrote, each example at its ``file:line``."""
    return read_file(path, normalized_columns(params.text_pair_column is not None))
