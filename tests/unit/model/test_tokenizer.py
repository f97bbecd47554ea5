"""The tokenizer stage's output: a cased WordPiece that transformers and the tokenizers library both load."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from electra_model.data.demo import demo_corpus
from electra_model.errors import ElectraError
from electra_model.data.tokenizer import (
    SPECIAL_TOKENS,
    as_transformers_tokenizer,
    corpus_lines,
    load_backend_tokenizer,
    special_token_ids,
    train_wordpiece,
)


def test_trained_vocabulary_is_cased_and_loads_with_autotokenizer(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "shard-00000.txt").write_text("Apple sells apples in Paris .\n\nThe apple fell .\n" * 30, encoding="utf-8")
    tokenizer = train_wordpiece(corpus_lines(corpus), vocab_size=150, min_frequency=1, lowercase=False)
    as_transformers_tokenizer(tokenizer, model_max_length=64).save_pretrained(tmp_path / "tok")

    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert loaded.model_max_length == 64
    assert loaded.tokenize("Apple") != loaded.tokenize("apple")  # case is kept: NER needs it
    ids = loaded("Apple in Paris")["input_ids"]
    assert ids[0] == loaded.cls_token_id and ids[-1] == loaded.sep_token_id
    backend = load_backend_tokenizer(tmp_path / "tok")
    assert backend.encode("Apple in Paris").ids == ids
    assert set(special_token_ids(backend)) == {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}


def test_the_same_corpus_gives_the_same_vocabulary_and_ids():
    """The trainer numbers continuation pieces in a randomly seeded hash order, and those ids break ties between
    equally frequent merges: before pinning them, six trainings on this corpus gave six vocabularies."""
    lines = demo_corpus(40, seed=1)
    trained = {train_wordpiece(lines, vocab_size=1500, min_frequency=2, lowercase=False).to_str() for _ in range(4)}
    assert len(trained) == 1
    tokenizer = Tokenizer.from_str(trained.pop())
    assert [token.content for token in tokenizer.get_added_tokens_decoder().values()] == SPECIAL_TOKENS
    assert tokenizer.encode("Anna Schmidt").tokens[0] == "[CLS]"


def test_empty_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "shard-00000.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(ElectraError, match="corpus is empty"):
        train_wordpiece(corpus_lines(tmp_path), vocab_size=150, min_frequency=1, lowercase=False)


def test_missing_shards_name_the_directory(tmp_path):
    with pytest.raises(ElectraError, match="no \\*.txt corpus shards"):
        list(corpus_lines(tmp_path))


@pytest.mark.parametrize("content", [b"", b'{"version": "1.0", "truncat', b"\x00" * 64])
def test_a_corrupt_tokenizer_json_is_named_with_the_stage_that_rebuilds_it(tmp_path, content):
    (tmp_path / "tokenizer.json").write_bytes(content)
    with pytest.raises(ElectraError) as error:
        load_backend_tokenizer(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'tokenizer.json'}: not a readable tokenizer (")
    assert "`dvc repro tokenizer`" in message and "\n" not in message
