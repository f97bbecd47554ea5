"""Pretraining blocks respect documents: wherever a block runs from one document into the next, a [SEP] stands
between them (the corpus marks documents with blank lines; a shard's end also ends one)."""

from __future__ import annotations

import numpy as np
import pytest

from electra_model.data.blocks import STREAM_FORMAT, PackedBlocks, cached_token_stream, pack_blocks
from electra_model.data.tokenizer import DOCUMENT_BREAK, corpus_lines, paragraphs_with_breaks, train_wordpiece

# Each document has its own words, so every token can be traced to the one document it came from.
WORDS = [
    ["apple", "banana", "cherry"], ["delta", "echo", "foxtrot"], ["golf", "hotel", "india"],
    ["juliet", "kilo", "lima"], ["mango", "nectar", "olive"], ["papa", "quebec", "romeo"],
]


def document(index: int, paragraphs: int) -> list[str]:
    a, b, c = WORDS[index]
    return [" ".join([a, b, c, b, a] * (2 + (index + p) % 3)) for p in range(paragraphs)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two shards of documents 0-2 and 3-5, with runs of blank lines between documents; shard 2 ends a document
    without a trailing blank line."""
    root = tmp_path_factory.mktemp("corpus")
    docs = [document(i, paragraphs=2 + i % 2) for i in range(6)]
    (root / "shard-00000.txt").write_text("\n\n".join("\n".join(d) for d in docs[:3]) + "\n\n\n", encoding="utf-8")
    (root / "shard-00001.txt").write_text("\n\n\n".join("\n".join(d) for d in docs[3:]) + "\n", encoding="utf-8")
    return root, docs


@pytest.fixture(scope="module")
def tokenizer(corpus):
    root, _ = corpus
    return train_wordpiece(corpus_lines(root), vocab_size=300, min_frequency=1, lowercase=False)


def test_corpus_lines_mark_each_document_break_once(corpus):
    root, docs = corpus
    expected = [line for i, doc in enumerate(docs) for line in ([DOCUMENT_BREAK] if i else []) + doc]
    assert list(corpus_lines(root, document_breaks=True)) == expected
    assert list(corpus_lines(root)) == [line for doc in docs for line in doc]  # the tokenizer stage's view


def test_the_end_of_a_file_ends_a_document_and_no_break_leads_or_trails():
    files = [["", "a1", "a2", ""], ["b1"], [], ["", ""], ["c1", "", "", "c2", "\n"]]
    assert list(paragraphs_with_breaks(files)) == ["a1", "a2", "", "b1", "", "c1", "", "c2"]


@pytest.mark.parametrize("max_seq_len", [8, 13, 32])
def test_no_block_joins_two_documents_without_a_sep(corpus, tokenizer, tmp_path, max_seq_len):
    root, docs = corpus
    owner: dict[int, int] = {}
    for index, doc in enumerate(docs):
        for encoding in tokenizer.encode_batch(doc, add_special_tokens=False):
            for token in encoding.ids:
                assert owner.setdefault(token, index) == index, "the test needs tokens unique to one document"
    sep, cls = tokenizer.token_to_id("[SEP]"), tokenizer.token_to_id("[CLS]")
    stream = cached_token_stream(tokenizer, lambda: corpus_lines(root, document_breaks=True), tmp_path / "tokens-k")
    blocks = PackedBlocks.for_tokenizer(stream, tokenizer, max_seq_len)
    rows = blocks[np.arange(len(blocks))]
    crossings = 0
    for row in rows:
        current = None  # the document of the text since the last [CLS]/[SEP]
        for token in row.tolist():
            if token in (sep, cls):
                current = None
                continue
            assert current in (None, owner[token]), f"a block runs document {current} into {owner[token]}: {row}"
            current = owner[token]
        crossings += int(len({owner[t] for t in row.tolist() if t in owner}) > 1)
    assert crossings > 0, "no block spans a document break: the test would prove nothing"
    separators_in_bodies = int((np.asarray(stream) == sep).sum())
    assert separators_in_bodies == len(docs) - 1  # one per break: blank-line runs and the shard end alike
    assert np.array_equal(rows, pack_blocks(tokenizer, corpus_lines(root, document_breaks=True), max_seq_len))


def test_a_cached_stream_names_its_format_so_an_older_layout_is_never_reused(corpus, tokenizer, tmp_path):
    root, _ = corpus
    old = tmp_path / "tokens-k.uint16"  # what the code before document breaks wrote for the same key
    np.arange(100, dtype=np.uint16).tofile(old)
    stream = cached_token_stream(tokenizer, lambda: corpus_lines(root, document_breaks=True), tmp_path / "tokens-k")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"tokens-k.{STREAM_FORMAT}.uint16", "tokens-k.uint16"]
    assert (np.asarray(stream) == tokenizer.token_to_id("[SEP]")).any()
