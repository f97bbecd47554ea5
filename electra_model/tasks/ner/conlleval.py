"""conlleval, the CoNLL shared tasks' scorer, in Python: the chunks, counts and report text of ``conlleval.pl``.

Papers quote CoNLL-2003 F1 as printed by the Perl script (version 2004-01-26), so this module follows it rule for
rule rather than approximating it: chunks start and end by its ``startOfChunk``/``endOfChunk`` tables (B/I/O, E,
and ``[``/``]``), a type change always starts a chunk, an ``I-X`` after ``O`` starts one (so IOB1 input scores
as the script scores it), and a chunk is correct only when both its boundaries and its type agree. Even the script's
quirks are kept: a tag splits at its first hyphen, a type ``0`` counts as no type, type names are padded by bytes.

Input is the script's: ``word ... gold guess`` per token, fields separated by whitespace (the script splits on
single spaces; a file it reads, this reads the same), and a blank line -- or a line whose first field is ``-X-``
-- between sentences. From a terminal::

    electra score predictions.txt                     # word ... gold guess, as conlleval.pl < predictions.txt
    electra score guesses.txt --gold test.txt         # two CoNLL files whose tokens line up, line for line
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

from electra_model.data.files import read_lines
from electra_model.errors import ElectraError

BOUNDARY = "-X-"
END_PAIRS = {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"), ("E", "I"), ("E", "O")}
START_PAIRS = {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"), ("E", "I"), ("O", "E")}
Row = tuple[str, str, str]
"""``(first field, gold tag, guessed tag)`` of one input line; a sentence break is ``(BOUNDARY, "O", "O")``."""


def split_tag(tag: str) -> tuple[str, str]:
    """``B-PER`` -> ``("B", "PER")``: split at the first hyphen; no hyphen, or the type ``0`` (false in Perl), is
    no type."""
    prefix, hyphen, kind = tag.partition("-")
    if not hyphen:
        return tag, ""
    return prefix, "" if kind == "0" else kind


def end_of_chunk(previous: str, tag: str, previous_type: str, kind: str) -> bool:
    """Did a chunk end between the previous word and this one (conlleval's ``endOfChunk``)?"""
    return (
        (previous, tag) in END_PAIRS
        or (previous not in ("O", ".") and previous_type != kind)
        or previous in ("[", "]")
    )


def start_of_chunk(previous: str, tag: str, previous_type: str, kind: str) -> bool:
    """Did a chunk start at this word (conlleval's ``startOfChunk``)?"""
    return (previous, tag) in START_PAIRS or (tag not in ("O", ".") and previous_type != kind) or tag in ("[", "]")


@dataclass
class ChunkCounts:
    """What conlleval counts: tokens, tokens whose tags agree, and chunks per type in gold, guessed and correct."""

    tokens: int = 0
    correct_tags: int = 0
    gold: Counter[str] = field(default_factory=Counter)
    guessed: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)

    def types(self) -> list[str]:
        """Type names in the script's order: byte-wise sorted, duplicates dropped the way it drops them (an empty
        type name fails its ``not($lastType)`` test, so it can be listed twice)."""
        names: list[str] = []
        last: str | None = None
        for name in sorted([*self.gold, *self.guessed], key=lambda text: text.encode()):
            if not last or last != name:
                names.append(name)
            last = name
        return names


def count_chunks(rows: Iterable[Row]) -> ChunkCounts:
    """Run conlleval's state machine over the rows of a whole file."""
    counts = ChunkCounts()
    in_correct = False
    last_gold, last_guess, last_gold_type, last_guess_type = "O", "O", "", ""
    for first, gold_tag, guess_tag in rows:
        gold, gold_type = split_tag(gold_tag)
        guess, guess_type = split_tag(guess_tag)
        if first == BOUNDARY:
            guess = "O"
        gold_ends = end_of_chunk(last_gold, gold, last_gold_type, gold_type)
        guess_ends = end_of_chunk(last_guess, guess, last_guess_type, guess_type)
        if in_correct:
            if gold_ends and guess_ends and last_guess_type == last_gold_type:
                in_correct = False
                counts.correct[last_gold_type] += 1
            elif gold_ends != guess_ends or guess_type != gold_type:
                in_correct = False
        gold_starts = start_of_chunk(last_gold, gold, last_gold_type, gold_type)
        guess_starts = start_of_chunk(last_guess, guess, last_guess_type, guess_type)
        if gold_starts and guess_starts and guess_type == gold_type:
            in_correct = True
        if gold_starts:
            counts.gold[gold_type] += 1
        if guess_starts:
            counts.guessed[guess_type] += 1
        if first != BOUNDARY:
            counts.correct_tags += gold == guess and guess_type == gold_type
            counts.tokens += 1
        last_gold, last_guess, last_gold_type, last_guess_type = gold, guess, gold_type, guess_type
    if in_correct:
        counts.correct[last_gold_type] += 1
    return counts


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The chunks of one sentence's tags as ``(type, first word, last word + 1)``, by the same start and end rules
    :func:`count_chunks` counts with, so that an error analysis lists exactly the entities the scores counted."""
    found: list[tuple[str, int, int]] = []
    start: int | None = None
    previous, previous_type = "O", ""
    for index, tag in enumerate([*tags, "O"]):  # the "O" after the last word closes a chunk that ends the sentence
        prefix, kind = split_tag(tag)
        if start is not None and end_of_chunk(previous, prefix, previous_type, kind):
            found.append((previous_type, start, index))
            start = None
        if index < len(tags) and start_of_chunk(previous, prefix, previous_type, kind):
            start = index
        previous, previous_type = prefix, kind
    return found


def sequence_rows(gold: Sequence[Sequence[str]], guessed: Sequence[Sequence[str]]) -> Iterator[Row]:
    """Rows of tag sequences, one sentence after another with a break between them, as a scored file has."""
    for gold_tags, guessed_tags in zip(gold, guessed, strict=True):
        if len(gold_tags) != len(guessed_tags):
            raise ValueError(f"a sentence has {len(gold_tags)} gold tags but {len(guessed_tags)} guessed tags")
        yield from (("w", gold_tag, guess_tag) for gold_tag, guess_tag in zip(gold_tags, guessed_tags))
        yield BOUNDARY, "O", "O"


# ------------------------------------------------------------------------------------------------- scores
def _prf(correct: int, guessed: int, gold: int) -> tuple[float, float, float]:
    """Precision, recall and FB1 in percent, computed in the script's order of operations (so they round alike)."""
    precision = 100 * correct / guessed if guessed > 0 else 0.0
    recall = 100 * correct / gold if gold > 0 else 0.0
    fb1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, fb1


def overall(counts: ChunkCounts) -> tuple[float, float, float]:
    """Overall precision, recall and FB1 in percent (micro-averaged over chunks, as the script reports)."""
    return _prf(sum(counts.correct.values()), sum(counts.guessed.values()), sum(counts.gold.values()))


def per_type(counts: ChunkCounts, kind: str) -> tuple[float, float, float]:
    """Precision, recall and FB1 of one chunk type in percent."""
    return _prf(counts.correct[kind], counts.guessed[kind], counts.gold[kind])


def report(counts: ChunkCounts) -> str:
    """The text ``conlleval.pl`` prints for these counts, byte for byte."""
    gold, guessed, correct = (sum(c.values()) for c in (counts.gold, counts.guessed, counts.correct))
    lines = [f"processed {counts.tokens} tokens with {gold} phrases; found: {guessed} phrases; correct: {correct}."]
    if counts.tokens > 0:
        precision, recall, fb1 = overall(counts)
        accuracy = 100 * counts.correct_tags / counts.tokens
        lines.append(
            f"accuracy: {accuracy:6.2f}%; precision: {precision:6.2f}%; recall: {recall:6.2f}%; FB1: {fb1:6.2f}"
        )
    for kind in counts.types():
        precision, recall, fb1 = per_type(counts, kind)
        padding = " " * max(0, 17 - len(kind.encode()))
        lines.append(
            f"{padding}{kind}: precision: {precision:6.2f}%; recall: {recall:6.2f}%; "
            f"FB1: {fb1:6.2f}  {counts.guessed[kind]}"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- files
def _fields(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Whitespace-split fields of each line, with the line number (blank lines give no fields)."""
    for number, line in read_lines(path):
        yield number, line.split()


def file_rows(path: Path | str) -> Iterator[Row]:
    """Rows of a file in conlleval's input format; a line with another number of fields than the first token
    line, or fewer than three (a word, the gold tag and the guess), is an error naming the line."""
    path = Path(path)
    expected: tuple[int, int] | None = None
    for number, fields in _fields(path):
        if not fields:
            yield BOUNDARY, "O", "O"
            continue
        expected = expected or (len(fields), number)
        if len(fields) != expected[0]:
            raise ElectraError(
                f"{path}:{number}: {len(fields)} fields, but line {expected[1]} has {expected[0]}; every token line "
                "needs the same fields, ending with the gold tag and the guessed tag"
            )
        if len(fields) < 3 and fields[0] != BOUNDARY:  # 'word TAG' would score the words as gold tags: F1 0.00
            raise ElectraError(
                f"{path}:{number}: {len(fields)} field(s) ({' '.join(fields)!r}), so no gold tag beside the guess; "
                "give 'word ... gold guess' lines, or pass the gold CoNLL file with --gold"
            )
        yield (BOUNDARY, "O", "O") if fields[0] == BOUNDARY else (fields[0], fields[-2], fields[-1])


def aligned_rows(gold_path: Path | str, guess_path: Path | str) -> Iterator[Row]:
    """Rows pairing a gold CoNLL file with a file of guesses (the tag is the last field of each).

    Both must hold the same tokens and sentence breaks line for line, since a shifted line would score every tag
    after it against the wrong word; the first line where they differ is an error naming both files' lines.
    """
    gold_path, guess_path = Path(gold_path), Path(guess_path)
    for gold_line, guess_line in zip_longest(_fields(gold_path), _fields(guess_path), fillvalue=(0, [])):
        (gold_number, gold), (guess_number, guess) = gold_line, guess_line
        if bool(gold) != bool(guess) or (gold and gold[0] != guess[0]):
            raise ElectraError(
                f"{guess_path}:{guess_number or 'end'}: {_shown(guess)} does not line up with "
                f"{gold_path}:{gold_number or 'end'}: {_shown(gold)}; a predictions file needs the gold file's "
                "tokens and blank lines, line for line"
            )
        if gold and min(len(gold), len(guess)) < 2:
            number, path = (gold_number, gold_path) if len(gold) < 2 else (guess_number, guess_path)
            raise ElectraError(f"{path}:{number}: one field; expected 'token ... TAG'")
        yield (gold[0], gold[-1], guess[-1]) if gold else (BOUNDARY, "O", "O")


def _shown(fields: list[str]) -> str:
    return f"token {fields[0]!r}" if fields else "a sentence break"
