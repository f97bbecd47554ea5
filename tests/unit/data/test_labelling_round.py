"""The pure parts of a labelling round (flows/labelling.py): which texts the next batch may come from, whether the
pipeline trains on the pulled file, and a server that is down stopping the round before anything is written."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from electra_model.annotate.rounds import check_trains_on, fresh_texts, task_texts
from electra_model.annotate.studio import TOKEN_VARIABLE
from electra_model.client.selection import PoolText
from electra_model.errors import ElectraError
from flows.labelling import run_round
from tests.params import params

PULLED = Path("labelled/annotations.txt")
LOCAL = {"data.source": "local", "data.local.corpus": ["corpus.txt"], "ner.local.train": str(PULLED),
         "ner.local.valid": "valid.txt", "ner.local.test": "test.txt"}


def test_texts_the_project_holds_and_repeats_are_not_chosen_again() -> None:
    tasks = [{"id": 1, "data": {"text": "Paris is big."}}, {"id": 2, "data": {"text": "Rome too."}, "annotations": []}]
    pool = [PoolText(1, "Paris is big."), PoolText(2, "Berlin is far."), PoolText(3, "Rome too."),
            PoolText(4, "Berlin is far."), PoolText(5, "Oslo is cold.")]
    assert task_texts(tasks) == {"Paris is big.", "Rome too."}
    assert fresh_texts(pool, task_texts(tasks)) == [PoolText(2, "Berlin is far."), PoolText(5, "Oslo is cold.")]
    assert fresh_texts(pool[:1], {"Paris is big."}) == []


def test_a_round_trains_only_on_the_file_it_pulls() -> None:
    check_trains_on(params(LOCAL), PULLED)
    with pytest.raises(ElectraError, match=r"data.source is 'demo' and ner.local.train is None; set data.source: "
                                           r"local and ner.local.train: labelled/annotations.txt"):
        check_trains_on(params(), PULLED)
    with pytest.raises(ElectraError, match=r"ner.local.train is 'other.txt'"):
        check_trains_on(params({**LOCAL, "ner.local.train": "other.txt"}), PULLED)
    classifier = params({"task": "classification", "data.source": "local", "data.local.corpus": ["corpus.txt"],
                         "classification.local.train": "labelled/annotations.jsonl",
                         "classification.local.valid": "valid.jsonl", "classification.local.test": "test.jsonl"})
    check_trains_on(classifier, Path("labelled/annotations.jsonl"))


def test_a_server_that_is_down_is_one_line_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}"  # closed once the socket is
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(TOKEN_VARIABLE, "any")
    (tmp_path / "pool.txt").write_text("Angela Merkel visited Paris.\n", encoding="utf-8")
    with pytest.raises(ElectraError) as raised:
        run_round(params(LOCAL), url, "electra-ner", Path("pool.txt"), 5)
    assert str(raised.value).startswith(f"Label Studio at {url} does not answer (")
    assert "\n" not in str(raised.value) and "make label-studio" in str(raised.value)
    assert not (tmp_path / "labelled").exists()
