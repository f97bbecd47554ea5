"""NER's data: the train, valid and test splits read from ``data.source`` and checked, ready for the download stage,
which writes them as CoNLL in IOB2 (``{train,valid,test}.txt``); later stages read them back with
:func:`electra_model.tasks.ner.conll.read_conll`.

Four sources, as for classification: the generated demo, ``ner.local`` (CoNLL files read in place), ``ner.hf``
(a token-classification dataset for ``datasets.load_dataset``) and ``ner.url`` (CoNLL files downloaded and checked
against their sha256). ``ner.scheme`` says whether the files are IOB1 or IOB2 (``auto`` detects it)::

    from electra_model.config import load_params
    params = load_params()
    splits = load_ner(params.ner, params.data, params.seed)
    summary = splits.write(Path("data/task"))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from electra_model.config import DataParams, NerHf, NerParams
from electra_model.data.demo import demo_tagged, derive_seed
from electra_model.data.files import local_file
from electra_model.data.hf import load_hf_split, require_column
from electra_model.data.remote import DOWNLOAD_CACHE, download
from electra_model.data.sources import SPLITS, demo_sizes
from electra_model.errors import ElectraError
from electra_model.tasks.ner.conll import (
    DOCSTART,
    Scheme,
    Sentence,
    apply_scheme,
    check_labels_known,
    check_tag,
    check_token,
    count_entities,
    read_conll,
    write_conll,
)

if TYPE_CHECKING:
    from datasets import Dataset


@dataclass(frozen=True)
class NerSplits:
    """The three NER splits in IOB2, with where each came from."""

    splits: dict[str, list[Sentence]]
    origins: dict[str, str]
    task: ClassVar[str] = "ner"

    def write(self, folder: Path) -> dict[str, Any]:
        for split, sentences in self.splits.items():
            write_conll(folder / f"{split}.txt", sentences)
        return {split: {"origin": self.origins[split], **_summary(sentences)} for split, sentences in self.splits.items()}


def _summary(sentences: Sequence[Sentence]) -> dict[str, Any]:
    return {
        "sentences": len(sentences),
        "tokens": sum(len(sentence.tokens) for sentence in sentences),
        "entities": count_entities(sentences),
    }


# ------------------------------------------------------------------------------------------------- sources
def demo_ner(n_sentences: int, seed: int) -> list[Sentence]:
    """Generated IOB2 sentences over all topics; about one in seven has no entity, as in real news."""
    return [Sentence(tokens, tags) for tokens, tags in demo_tagged(n_sentences, seed)]


def _demo(ner: NerParams, data: DataParams, seed: int, cache_dir: Path) -> NerSplits:
    """Generated sentences; each split has its own derived seed, so the splits differ from each other."""
    sizes = demo_sizes(data)
    return NerSplits(
        {split: demo_ner(sizes[split], derive_seed(seed, split)) for split in SPLITS},
        {split: f"demo {split} split" for split in SPLITS},
    )


def _local(ner: NerParams, data: DataParams, seed: int, cache_dir: Path) -> NerSplits:
    """The user's own CoNLL files, read in place."""
    paths = {split: local_file(getattr(ner.local, split), f"ner.local.{split}") for split in SPLITS}
    return NerSplits(
        {split: read_conll(path, ner.scheme) for split, path in paths.items()},
        {split: str(path) for split, path in paths.items()},
    )


def _url(ner: NerParams, data: DataParams, seed: int, cache_dir: Path) -> NerSplits:
    """Remote CoNLL files, downloaded (or found in the cache), then read like local files."""
    paths = {split: download(getattr(ner.url, split), f"ner.url.{split}", cache_dir) for split in SPLITS}
    return NerSplits(
        {split: read_conll(path, ner.scheme) for split, path in paths.items()},
        {split: f"{getattr(ner.url, split).url} (cached as {path})" for split, path in paths.items()},
    )


def _tag_namer(dataset: Dataset, column: str) -> Callable[[Any], str]:
    """Tag ids become names through the column's ClassLabel; a column of strings already holds the names."""
    from datasets import ClassLabel, Value

    inner = getattr(dataset.features[column], "feature", None)
    if isinstance(inner, ClassLabel):
        return inner.int2str
    if isinstance(inner, Value) and inner.dtype in ("string", "large_string"):
        return str
    raise ElectraError(
        f"ner.hf.tags_column: column {column!r} is {dataset.features[column]}, not a sequence of ClassLabel "
        "or strings; choose the column that holds the NER tags"
    )


def _hf_sentences(dataset: Dataset, hf: NerHf, where: str) -> tuple[list[Sentence], list[int]]:
    """Validated sentences with their row numbers; empty and ``-DOCSTART-`` rows are skipped as in CoNLL files."""
    tag_name = _tag_namer(dataset, hf.tags_column)
    sentences: list[Sentence] = []
    rows: list[int] = []
    for row, (tokens, tag_ids) in enumerate(zip(dataset[hf.tokens_column], dataset[hf.tags_column], strict=True)):
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


def _hf_split(hf: NerHf, split: str, scheme: Scheme) -> tuple[list[Sentence], str]:
    """One NER split from the dataset, in IOB2, with a description of where it came from for messages."""
    if split not in hf.splits:
        raise ElectraError(f"ner.hf.splits.{split} is not set; map it to a split name of {hf.path!r}")
    dataset = load_hf_split(hf.path, hf.name, hf.splits[split], "ner.hf")
    require_column(dataset, hf.tokens_column, "ner.hf.tokens_column")
    require_column(dataset, hf.tags_column, "ner.hf.tags_column")
    where = f"{hf.path} split {hf.splits[split]!r}"
    sentences, rows = _hf_sentences(dataset, hf, where)
    if not sentences:
        raise ElectraError(f"{where}: no sentences; check ner.hf.splits.{split} and the dataset")

    def locate(sentence: int, token: int) -> str:
        return f"{where} row {rows[sentence]} token {token}"

    return apply_scheme(sentences, scheme, locate, where), where


def _hf(ner: NerParams, data: DataParams, seed: int, cache_dir: Path) -> NerSplits:
    """A token-classification dataset; tag names come from the dataset's ClassLabel feature."""
    splits = {split: _hf_split(ner.hf, split, ner.scheme) for split in SPLITS}
    return NerSplits(
        {split: sentences for split, (sentences, _) in splits.items()},
        {split: where for split, (_, where) in splits.items()},
    )


SOURCES: dict[str, Callable[[NerParams, DataParams, int, Path], NerSplits]] = {
    "demo": _demo, "local": _local, "hf": _hf, "url": _url,
}


def load_ner(ner: NerParams, data: DataParams, seed: int, cache_dir: Path = DOWNLOAD_CACHE) -> NerSplits:
    """The NER splits from ``data.source``, in IOB2; a valid or test tag that train lacks is an error."""
    splits = SOURCES[data.source](ner, data, seed, Path(cache_dir))
    for split in ("valid", "test"):
        check_labels_known(splits.splits["train"], splits.splits[split], splits.origins[split])
    return splits
