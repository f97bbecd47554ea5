"""`electra select` without a model: reading the pool, the one-line errors for bad input, and the choice of the
batch (top scores, or spread by k-center greedy), which must be the same on every run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from electra_model.cli import main
from electra_model.client.diversity import k_center_greedy, token_features
from electra_model.client.selection import KCENTER, choose, read_pool, score_texts
from electra_model.errors import ElectraError


def word_tokenizer(texts: list[str]) -> Tokenizer:
    """One id per distinct word of ``texts``: the tiniest tokenizer the features can be built with."""
    vocab = {word: number for number, word in enumerate(dict.fromkeys(w for t in texts for w in t.split()), 1)}
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, **vocab}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and message.startswith("error: ")
    return message


def test_a_plain_pool_keeps_each_texts_line_and_skips_blank_lines(tmp_path: Path) -> None:
    pool = tmp_path / "pool.txt"
    pool.write_bytes("\ufeffAngela Merkel visited Paris.\n\n  \nEU rejects German call\r\n".encode())
    assert [(item.line, item.text) for item in read_pool(pool)] == [
        (1, "Angela Merkel visited Paris."), (4, "EU rejects German call")
    ]


def test_a_jsonl_pool_is_read_by_its_text_field(tmp_path: Path) -> None:
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"text": "first", "id": 7}\n{"text": "second"}\n', encoding="utf-8")
    assert [item.text for item in read_pool(pool)] == ["first", "second"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\n  \n", "pool.txt: the pool is empty"),
        (b"fine\n\xff\xfe broken\n", "pool.txt, line 2: not UTF-8 text"),
        (b'{"text": "a"}\n{"txt": "b"}\n', 'pool.txt, line 2: a JSONL line needs a string "text" field'),
        (b'{"text": "a"}\nplain text\n', "pool.txt, line 2: not a JSON object"),
    ],
    ids=["empty", "not-utf8", "no-text-field", "not-json"],
)
def test_a_bad_pool_is_one_line_naming_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    pool = tmp_path / "pool.txt"
    pool.write_bytes(content)
    message = error_line(["select", "--pool", str(pool), "--k", "1", "--out", str(tmp_path / "out.jsonl")], capsys)
    assert expected in message
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(("k", "expected"), [(0, "--k 0: choose at least 1"), (3, "--k 3: ")], ids=["zero", "too-many"])
def test_a_k_the_pool_cannot_fill_is_refused_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], k: int, expected: str
) -> None:
    pool = tmp_path / "pool.txt"
    pool.write_text("one\ntwo\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    message = error_line(
        ["select", "--pool", str(pool), "--k", str(k), "--model", str(tmp_path / "no-model"), "--out", str(out)],
        capsys,
    )
    assert expected in message
    if k == 3:
        assert "holds only 2 texts; lower --k" in message


def test_a_missing_pool_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.txt"
    message = error_line(["select", "--pool", str(missing), "--k", "1", "--out", str(tmp_path / "o")], capsys)
    assert f"{missing}: cannot read the pool" in message


def test_an_unserved_kind_or_foreign_measure_is_refused_by_name() -> None:
    with pytest.raises(ElectraError, match="no uncertainty measure for 'pair_ranking' models"):
        score_texts("pair_ranking", None, ["a"])
    with pytest.raises(ElectraError, match="--measure entropy: a token_tagging model is scored by one of"):
        score_texts("token_tagging", None, ["a"], "entropy")


def test_the_top_scores_are_chosen_with_ties_to_the_earlier_text() -> None:
    scores = np.array([0.2, 0.9, 0.5, 0.9, 0.1])
    assert choose(scores, 3) == [1, 3, 2]


def test_k_center_greedy_spreads_the_batch_and_is_deterministic() -> None:
    # two tight clusters and a loner; the most uncertain point is in the first cluster
    features = np.array([[0.0, 0.0], [0.01, 0.0], [0.0, 0.01], [5.0, 5.0], [4.99, 5.0], [-4.0, 3.0]])
    scores = np.array([0.9, 0.8, 0.85, 0.3, 0.2, 0.1])
    picks = k_center_greedy(features, scores, 3)
    assert picks == [0, 3, 5]  # one per cluster, starting from the most uncertain
    assert all(k_center_greedy(features, scores, 3) == picks for _ in range(3))
    tied = np.zeros((4, 2))  # all at one point: every distance ties, so score then row order decide
    assert k_center_greedy(tied, np.array([0.1, 0.5, 0.5, 0.2]), 3) == [1, 2, 3]
    with pytest.raises(ValueError, match="k must be between 1 and 6"):
        k_center_greedy(features, scores, 7)


def test_kcenter_choice_skips_near_duplicates_among_the_uncertain() -> None:
    texts = ["Paris Paris Paris", "Paris Paris Paris", "Berlin wins cup", "Rome Rome", "quiet day"]
    features = token_features(word_tokenizer(texts), texts, 64)
    scores = np.array([0.9, 0.89, 0.5, 0.4, 0.01])
    assert choose(scores, 2) == [0, 1]
    assert choose(scores, 2, KCENTER, features) == [0, 2]
    assert choose(scores, 2, KCENTER, features) == choose(scores, 2, KCENTER, features)
