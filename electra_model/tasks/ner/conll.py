"""CoNLL NER files: read the common variants, write the one normalized form the pipeline trains on.

Reading accepts NER data as it is usually shipped -- plain or gzip, two columns (``token TAG``) or four
(``token POS chunk TAG``), tabs or spaces, CRLF, ``-DOCSTART-`` lines, IOB1 or IOB2 tags -- and always returns
IOB2. Writing produces two-column IOB2 with a blank line after each sentence::

    from electra_model.tasks.ner.conll import read_conll, write_conll
    sentences = read_conll("eng.train.gz")          # IOB1 is detected and converted
    write_conll("data/task/train.txt", sentences)

Every problem in a file raises :class:`~electra_model.errors.ElectraError` naming ``file:line``.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from electra_model.data.files import read_lines
from electra_model.errors import ElectraError
from electra_model.io import atomic_file

Scheme = Literal["auto", "iob1", "iob2"]
Locate = Callable[[int, int], str]
"""Maps (sentence index, token index) to where that token came from, e.g. ``"train.txt:17"``, for messages."""

TAG_PATTERN = re.compile(r"O|[BI]-\S+")
DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class Sentence:
    """One tagged sentence; ``tokens`` and ``tags`` are aligned one to one.

    ``document`` (the count of ``-DOCSTART-`` lines before it) lets fine-tuning add neighbouring sentences of the
    same document as context; ``line`` (of its first token, 0 when not read from a file) lets later checks name
    ``file:line``. Neither takes part in equality: two sentences with the same words and tags are the same data.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    document: int = field(default=0, compare=False)
    line: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(
                f"a sentence needs one tag per token, got {len(self.tokens)} tokens and {len(self.tags)} tags"
            )


# ------------------------------------------------------------------------------------------------ validation
def check_tag(tag: str, where: str) -> None:
    """Reject tags the IOB schemes cannot express (IOBES ``S-``/``E-``, typos) before they reach training."""
    if not TAG_PATTERN.fullmatch(tag):
        raise ElectraError(
            f"{where}: tag {tag!r} is not 'O', 'B-TYPE' or 'I-TYPE'; fix the tag "
            "(IOBES and other schemes are not supported)"
        )


def check_token(token: str, where: str) -> None:
    """A token with whitespace (or none at all) cannot survive the CoNLL format, so refuse it where it comes in."""
    if not token or any(character.isspace() for character in token):
        raise ElectraError(
            f"{where}: token {token!r} is empty or contains whitespace, which a CoNLL file cannot hold; fix the data"
        )


# ---------------------------------------------------------------------------------------------- tag schemes
def _inside_opening(tags: Sequence[str]) -> int | None:
    """Index of the first ``I-X`` that opens an entity (after ``O`` or another type): the mark of IOB1."""
    previous = "O"
    for index, tag in enumerate(tags):
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return index
        previous = tag
    return None


def to_iob2(tags: Sequence[str]) -> tuple[str, ...]:
    """Start every entity with ``B-``: IOB1 opens entities with ``I-`` unless one of the same type precedes."""
    converted: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous = tag
    return tuple(converted)


def _begin_opening(tags: Sequence[str]) -> int | None:
    """Index of the first ``B-X`` that opens an entity after ``O`` or another type: the mark of IOB2, since IOB1 uses
    ``B-`` only between two adjacent entities of one type."""
    previous = "O"
    for index, tag in enumerate(tags):
        if tag.startswith("B-") and previous[2:] != tag[2:]:
            return index
        previous = tag
    return None


def _first(sentences: Sequence[Sentence], opening: Callable[[Sequence[str]], int | None]) -> tuple[int, int] | None:
    """(sentence, token) of the first tag that ``opening`` finds, or None."""
    for sentence_index, sentence in enumerate(sentences):
        token_index = opening(sentence.tags)
        if token_index is not None:
            return sentence_index, token_index
    return None


def _numbered(sentence: int, token: int) -> str:
    return f"sentence {sentence + 1}, token {token + 1}"


def detect_scheme(sentences: Sequence[Sentence], locate: Locate = _numbered) -> Literal["iob1", "iob2"]:
    """IOB1 if an entity opens with ``I-``, IOB2 otherwise (data with neither mark reads the same under both).

    A file with both marks -- an ``I-`` opening an entity and a ``B-`` after ``O`` or another type -- is valid in
    neither scheme: it is IOB2 with mistakes (``O I-PER``, ``B-PER I-LOC``), and reading it as IOB1 would silently
    turn each mistake into a new entity, so it is refused with one example of each mark."""
    inside, begin = _first(sentences, _inside_opening), _first(sentences, _begin_opening)
    if inside is not None and begin is not None:
        inside_tag = sentences[inside[0]].tags[inside[1]]
        begin_tag = sentences[begin[0]].tags[begin[1]]
        raise ElectraError(
            f"{locate(*inside)}: tag {inside_tag!r} opens an entity (IOB1), but {locate(*begin)} opens one with "
            f"{begin_tag!r} (IOB2), so the tags are valid in neither scheme; fix the tags (IOB2: an entity starts "
            "with B-), or set ner.scheme: iob1 to read every opening I- as B-"
        )
    return "iob1" if inside is not None else "iob2"


def apply_scheme(sentences: Sequence[Sentence], scheme: Scheme, locate: Locate, name: str) -> list[Sentence]:
    """Return the sentences in IOB2.

    ``iob1`` converts (IOB2 input passes through unchanged); ``auto`` detects the scheme (refusing tags valid in
    neither, see :func:`detect_scheme`) and says on stderr which it found; a forced ``iob2`` insists that no entity
    opens with ``I-``, because such a tag means the data is not what the params claim.
    """
    if scheme == "iob2":
        for sentence_index, sentence in enumerate(sentences):
            token_index = _inside_opening(sentence.tags)
            if token_index is not None:
                raise ElectraError(
                    f"{locate(sentence_index, token_index)}: tag {sentence.tags[token_index]!r} opens an entity, which "
                    "IOB2 does not allow; set ner.scheme to 'auto' or 'iob1' if the data is IOB1, or fix the tag"
                )
        return list(sentences)
    if scheme == "auto":
        found = detect_scheme(sentences, locate)
        print(f"{name}: {found.upper()} tags detected (ner.scheme: auto), written as IOB2", file=sys.stderr)
    return [replace(sentence, tags=to_iob2(sentence.tags)) for sentence in sentences]


# -------------------------------------------------------------------------------------------------- entities
def count_entities(sentences: Iterable[Sentence]) -> dict[str, int]:
    """Entities per type; in IOB2 each entity has exactly one ``B-`` tag, so counting those is exact."""
    counts = Counter(tag[2:] for sentence in sentences for tag in sentence.tags if tag.startswith("B-"))
    return dict(sorted(counts.items()))


def entity_types(sentences: Iterable[Sentence]) -> set[str]:
    """The entity types a set of sentences uses."""
    return {tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"}


def check_labels_known(train: Sequence[Sentence], other: Sequence[Sentence], other_path: str | Path) -> None:
    """Stop on an entity type that train never shows: the model could not predict it, so its scores would mislead.

    The message names ``file:line`` for sentences read from a file, else the sentence's number.
    """
    known = entity_types(train)
    for sentence_index, sentence in enumerate(other):
        for token_index, (token, tag) in enumerate(zip(sentence.tokens, sentence.tags, strict=True)):
            if tag != "O" and tag[2:] not in known:
                line = f":{sentence.line + token_index}" if sentence.line else ""
                raise ElectraError(
                    f"{other_path}{line}: sentence {sentence_index + 1} (token {token!r}) has entity type "
                    f"{tag[2:]!r}, which "
                    f"never occurs in the training data (its types: {', '.join(sorted(known)) or 'none'}); "
                    "fix the tag or add training examples of that type"
                )


# ------------------------------------------------------------------------------------------- reading files
def _sentence_blocks(path: Path) -> Iterator[tuple[int, list[tuple[int, list[str]]]]]:
    """Group the token lines of a file into sentences, each with its document number; blank and ``-DOCSTART-``
    lines close a sentence, and a ``-DOCSTART-`` line opens the next document."""
    block: list[tuple[int, list[str]]] = []
    document = 0
    for number, line in read_lines(path):
        columns = line.split()
        if columns and columns[0] != DOCSTART:
            block.append((number, columns))
            continue
        if block:
            yield document, block
            block = []
        if columns:
            document += 1
    if block:
        yield document, block


def _check_columns(path: Path, number: int, columns: list[str], first: tuple[int, int]) -> None:
    """Every token line needs a token and a tag, and the same layout as the file's first token line."""
    if len(columns) < 2:
        raise ElectraError(
            f"{path}:{number}: only one column ({columns[0]!r}); expected 'token TAG' or 'token POS chunk TAG'"
        )
    if len(columns) != first[0]:
        raise ElectraError(
            f"{path}:{number}: {len(columns)} columns, but line {first[1]} has {first[0]}; "
            "every token line of a file needs the same columns"
        )


def _parse(path: Path) -> list[Sentence]:
    """Sentences as written in the file; a sentence's token lines are consecutive, so ``line + i`` is token i's."""
    sentences: list[Sentence] = []
    first: tuple[int, int] | None = None
    for document, block in _sentence_blocks(path):
        for number, columns in block:
            first = first or (len(columns), number)
            _check_columns(path, number, columns, first)
            check_tag(columns[-1], f"{path}:{number}")
        tokens = tuple(columns[0] for _, columns in block)
        sentences.append(Sentence(tokens, tuple(columns[-1] for _, columns in block), document, block[0][0]))
    return sentences


def read_conll(path: Path | str, scheme: Scheme = "auto") -> list[Sentence]:
    """Read a CoNLL NER file (the NER tag is the last column) and return its sentences in IOB2."""
    path = Path(path)
    sentences = _parse(path)
    if not sentences:
        raise ElectraError(
            f"{path}: no sentences found; expected 'token TAG' lines with a blank line after each sentence"
        )
    def locate(sentence: int, token: int) -> str:
        return f"{path}:{sentences[sentence].line + token}"

    return apply_scheme(sentences, scheme, locate, str(path))


def write_conll(path: Path | str, sentences: Iterable[Sentence]) -> None:
    """Write two-column ``token TAG`` lines with a blank line after each sentence, atomically."""
    with atomic_file(path) as handle:
        for sentence in sentences:
            handle.writelines(f"{token} {tag}\n" for token, tag in zip(sentence.tokens, sentence.tags, strict=True))
            handle.write("\n")
