"""Plain text to the words an NER model was trained on, and back: CoNLL-2003's (Reuters / Penn Treebank) rules.

The model learns one tag per *word* of its training data, so at serving time text has to be cut into words the way
the training data was cut. Splitting on every punctuation character (BERT's pre-tokenizer) cuts "U.S." into four
words and "Jean-Marie" into three, each of which then gets a tag of its own, which the model never saw during
training. :func:`split_words` instead follows the CoNLL-2003 conventions: abbreviations ("U.S.", "Inc.", "J."),
hyphenated words, numbers ("1,000.50", "1996-12-06"), URLs and e-mail addresses stay whole; punctuation at a word's
edges, currency signs and "%" are words of their own; the clitics "'s", "n't", "'re", "'ve", "'ll", "'d" and "'m" are
split off. :func:`detokenize` is the inverse a person typing the sentence would produce; the evaluate stage uses the
pair to score the raw-text path (see ``raw_text_entity_f1`` and benchmarks/RESULTS.md, "raw text").

Pure Python, so the torch-free client ships it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

WordSpan = tuple[str, int, int]

QUOTES = "\"'`"
CURRENCY = "$£€¥#"
INNER_PUNCTUATION = ".'%&@#*/\\-_"
"""Punctuation that can sit inside or at the end of a word ("U.S.", "AT&T", "5%") and is handled by its own rule."""
CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")
ABBREVIATIONS = frozenset(
    """Inc Corp Co Ltd Bros Mr Mrs Ms Dr St Mt Ft Jr Sr Gen Gov Sen Rep Col Lt Sgt Capt Cmdr Adm Prof Rev Messrs No
    vs Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Ave Blvd Calif Fla Ill Mass Mich Minn Penn Tenn Tex Va Wash
    Ariz Colo Conn Del Ga Ind Kan Ky La Md Miss Mo Mont Neb Nev Okla Ore Wis Wyo approx est etc Plc plc Pty
    Cie""".split()
)
URL = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
DOTTED_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.){2,}|[A-Z]\.")
NUMBER = re.compile(r"[+-]?\d[\d,.:/-]*\d|\d")
ELLIPSIS = re.compile(r"\.{3,}")
DOTS = re.compile(r"\.+")
LIST_NUMBER = re.compile(r"\d+\.")


def _keeps_final_period(core: str, last: bool) -> bool:
    """Whether a word ending in "." keeps it: an abbreviation ("U.S.", "Inc.", "J.") or a list number ("2.") inside
    the text. At the end of the text the period ends the sentence, and CoNLL-2003 writes it as a word of its own
    even after an abbreviation ("... Inc ." and "... U.S ."), so it is split off there."""
    if last:
        return False
    return bool(DOTTED_ABBREVIATION.fullmatch(core) or LIST_NUMBER.fullmatch(core)) or core[:-1] in ABBREVIATIONS


def _opens(character: str) -> bool:
    """Brackets and quotes that open (any script: "(", "«", "“", "¿")."""
    return character in QUOTES or unicodedata.category(character) in ("Ps", "Pi") or character in "¡¿"


def _closes(character: str) -> bool:
    """Brackets, quotes and punctuation that end a word (")", "»", ",", "!", "…")."""
    category = unicodedata.category(character)
    return character in QUOTES or category in ("Pe", "Pf") or (category == "Po" and character not in INNER_PUNCTUATION)


def _peel_start(chunk: str) -> tuple[list[str], str]:
    """Opening brackets, quotes and currency signs at the start of a chunk, as words of their own."""
    words = []
    while len(chunk) > 1 and (_opens(chunk[0]) or chunk[0] in CURRENCY):
        if chunk[0] == "'" and any(chunk.lower().startswith(clitic) for clitic in CLITICS):
            break
        words.append(chunk[0])
        chunk = chunk[1:]
    return words, chunk


def _peel_end(chunk: str, last: bool) -> tuple[str, list[str]]:
    """Closing punctuation, "%", a sentence-final period and clitics at the end of a chunk, as words of their own;
    ``last`` says whether the chunk ends the text."""
    tail: list[str] = []
    while len(chunk) > 1:
        if URL.fullmatch(chunk) and not (_closes(chunk[-1]) or chunk[-1] == "."):
            break
        ellipsis = ELLIPSIS.search(chunk)
        if ellipsis and ellipsis.end() == len(chunk) and ellipsis.start() > 0:
            tail.insert(0, ellipsis.group())
            chunk = chunk[: ellipsis.start()]
        elif (_closes(chunk[-1]) or chunk[-1] == "%") and not _is_clitic(chunk):
            tail.insert(0, chunk[-1])
            chunk = chunk[:-1]
        elif chunk[-1] == "." and not DOTS.fullmatch(chunk) and not _keeps_final_period(chunk, last and not tail):
            tail.insert(0, ".")
            chunk = chunk[:-1]
        else:
            clitic = next((c for c in CLITICS if chunk.lower().endswith(c) and len(chunk) > len(c)), None)
            if clitic is None:
                break
            tail.insert(0, chunk[-len(clitic) :])
            chunk = chunk[: -len(clitic)]
    return chunk, tail


def _is_clitic(chunk: str) -> bool:
    return chunk.lower() in CLITICS


def _split_chunk(chunk: str, last: bool) -> list[str]:
    """The words of one whitespace-free chunk of text, in order; they concatenate back to the chunk. ``last`` says
    whether the chunk ends the text."""
    whole_url = URL.fullmatch(chunk) and (chunk[-1].isalnum() or chunk[-1] == "/")
    if whole_url or _is_clitic(chunk) or NUMBER.fullmatch(chunk) or DOTS.fullmatch(chunk):
        return [chunk]
    head, chunk = _peel_start(chunk)
    core, tail = _peel_end(chunk, last)
    if core.startswith(tuple(CURRENCY)) and len(core) > 1:
        head, core = [*head, core[0]], core[1:]
    return [*head, *([core] if core else []), *tail]


def split_words(text: str) -> list[WordSpan]:
    """Words of ``text`` with their character spans (``text[start:end] == word``), cut by CoNLL-2003's rules."""
    words: list[WordSpan] = []
    chunks = list(re.finditer(r"\S+", text))
    for number, chunk in enumerate(chunks):
        position = chunk.start()
        for word in _split_chunk(chunk.group(), last=number == len(chunks) - 1):
            words.append((word, position, position + len(word)))
            position += len(word)
    return words


NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "!", "?", "%", ")", "]", "}", "...", *CLITICS, "'"})
NO_SPACE_AFTER = frozenset({"(", "[", "{", "$", "£", "€", "¥"})


def detokenize(words: Sequence[str]) -> tuple[str, list[WordSpan]]:
    """The text a person would type for these words, and each word's span in it: no space before ``, . ) ' 's n't``
    and the like, none after ``(`` or an opening quote; double quotes alternate between opening and closing."""
    text, spans, quote_open, glue_next = "", [], False, True
    for word in words:
        closing_quote = word == '"' and quote_open
        if not (glue_next or word in NO_SPACE_BEFORE or closing_quote or word.lower() in CLITICS):
            text += " "
        spans.append((word, len(text), len(text) + len(word)))
        text += word
        if word == '"':
            quote_open = not quote_open
        glue_next = word in NO_SPACE_AFTER or (word == '"' and quote_open)
    return text, spans
