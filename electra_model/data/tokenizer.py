"""Cased WordPiece vocabulary training, saved as a transformers fast tokenizer.

The saved directory loads with ``AutoTokenizer.from_pretrained(dir)``; its ``tokenizer.json`` alone also loads with
``tokenizers.Tokenizer.from_file``, which is how the torch-free inference client reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from electra_model.errors import ElectraError

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]
DOCUMENT_BREAK = ""  # the corpus line between two documents (see paragraphs_with_breaks); pretraining makes it [SEP]


def corpus_lines(corpus_dir: Path, document_breaks: bool = False) -> Iterator[str]:
    """Stream the paragraphs (non-blank lines) of every ``*.txt`` shard in ``corpus_dir`` (shards can be large).

    With ``document_breaks``, :data:`DOCUMENT_BREAK` comes once between two documents, so pretraining can keep
    documents apart: see :func:`paragraphs_with_breaks`.
    """
    shards = sorted(Path(corpus_dir).glob("*.txt"))
    if not shards:
        raise ElectraError(f"{corpus_dir}: no *.txt corpus shards; run the download stage first")
    lines = paragraphs_with_breaks(_shard_lines(shard) for shard in shards)
    return lines if document_breaks else (line for line in lines if line != DOCUMENT_BREAK)


class CorpusLines:
    """:func:`corpus_lines` that can be read more than once (each iteration streams the shards again), so that
    :func:`train_wordpiece` need not hold the corpus in memory."""

    def __init__(self, corpus_dir: Path) -> None:
        self.corpus_dir = corpus_dir

    def __iter__(self) -> Iterator[str]:
        return iter(corpus_lines(self.corpus_dir))


def _shard_lines(shard: Path) -> Iterator[str]:
    with open(shard, encoding="utf-8") as handle:
        yield from handle


def paragraphs_with_breaks(files: Iterable[Iterable[str]]) -> Iterator[str]:
    """The paragraphs of text files, with one :data:`DOCUMENT_BREAK` between consecutive documents.

    A run of blank lines ends a document (the corpus format), and so does the end of a file: the download stage
    may cut a document at a shard boundary without a blank line, so a break there is the safe reading (one
    separator too many inside a document costs nothing; a missing one would join two documents). No break is
    yielded before the first paragraph or after the last.
    """
    started = pending = False
    for lines in files:
        for line in lines:
            if not line.strip():
                pending = started
                continue
            if pending:
                yield DOCUMENT_BREAK
            started, pending = True, False
            yield line.rstrip("\n")
        pending = started


def train_wordpiece(lines: Iterable[str], vocab_size: int, min_frequency: int, lowercase: bool) -> Tokenizer:
    """Train a BERT-style WordPiece model; accents and case are kept by default because NER depends on case.

    The same lines give the same vocabulary, ids included: see :func:`continuation_alphabet`. The lines are read
    twice; a one-shot iterator is held in memory for that, a re-iterable (a list, :class:`CorpusLines`) is not.
    """
    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False if not lowercase else None, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    if iter(lines) is lines:
        lines = list(lines)
    pinned = continuation_alphabet(tokenizer, lines)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS + pinned, show_progress=False
    )
    tokenizer.train_from_iterator(lines, trainer)
    if tokenizer.get_vocab_size() <= len(SPECIAL_TOKENS):
        raise ElectraError("the corpus is empty: the tokenizer learned no vocabulary; check the download stage output")
    # The pinned pieces were passed as special tokens only to fix their ids; they are ordinary vocabulary.
    trained = tokenizer
    tokenizer = Tokenizer(models.WordPiece(trained.get_vocab(with_added_tokens=False), unk_token=UNK))
    tokenizer.normalizer, tokenizer.pre_tokenizer = trained.normalizer, trained.pre_tokenizer
    tokenizer.decoder = trained.decoder
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, tokenizer.token_to_id(CLS)), (SEP, tokenizer.token_to_id(SEP))],
    )
    return tokenizer


def continuation_alphabet(tokenizer: Tokenizer, lines: Iterable[str]) -> list[str]:
    """``##c`` for every character ``c`` that continues a word of ``lines``, sorted.

    The tokenizers trainer numbers these pieces in the order it meets them in its word-count hash map, whose seed is
    random per process; their ids then break ties between equally frequent merges, so each run learned another
    vocabulary (and every stage after the tokenizer trained on other ids). Given first, in sorted order, as the
    trainer's special tokens, they get fixed ids and the whole training is deterministic.
    """
    normalize, split = tokenizer.normalizer.normalize_str, tokenizer.pre_tokenizer.pre_tokenize_str
    characters: set[str] = set()
    for line in lines:
        for word, _ in split(normalize(line)):
            characters.update(word[1:])
    return [f"##{character}" for character in sorted(characters)]


def as_transformers_tokenizer(tokenizer: Tokenizer, model_max_length: int) -> PreTrainedTokenizerFast:
    """Wrap the trained tokenizer so transformers knows its special tokens and maximum length."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=UNK,
        pad_token=PAD,
        cls_token=CLS,
        sep_token=SEP,
        mask_token=MASK,
        model_max_length=model_max_length,
    )


def special_token_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """Ids of the special tokens, looked up by name so nothing depends on their order in the vocabulary."""
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    missing = [token for token, index in ids.items() if index is None]
    if missing:
        raise ElectraError(f"tokenizer lacks special tokens {missing}; retrain it with the tokenizer stage")
    return ids


def load_backend_tokenizer(tokenizer_dir: Path | str) -> Tokenizer:
    """Load ``tokenizer.json`` with the tokenizers library alone (no transformers needed); a truncated or corrupt
    file is named with the stage that rewrites it, instead of the tokenizers library's bare parse error."""
    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.is_file():
        raise ElectraError(f"{path}: tokenizer file not found; run the tokenizer stage or check the model directory")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for any file it cannot read
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ElectraError(
            f"{path}: not a readable tokenizer ({reason}); rebuild it with `dvc repro tokenizer` (or `dvc repro` for "
            "a model directory)"
        ) from None
