"""The registered champion behind MLflow's scoring app (the ``served_champion`` fixture: the guarded uvicorn app of
:mod:`electra_model.serving.guarded_app`) on a loopback port, against a sqlite registry in a temporary directory, answering real HTTP
requests -- good ones with entities, bad ones with a 400 and a message, and still up afterwards."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from mlflow.tracking import MlflowClient

from electra_model.errors import ElectraError
from electra_model.serving.model_server import served_model

pytestmark = pytest.mark.e2e


def post(url: str, body: bytes | dict[str, Any]) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(f"{url}/invocations", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def spans(predictions: list[list[dict[str, Any]]]) -> list[list[tuple[str, str, int, int]]]:
    return [[(e["type"], e["text"], e["start"], e["end"]) for e in entities] for entities in predictions]


def test_the_champion_records_every_variant(served_store: str) -> None:
    champion = MlflowClient(served_store).get_model_version_by_alias("electra-ner", "champion")
    assert (champion.tags["serve_variant"], champion.tags["f1"]) == ("int8", "1.0")
    for variant in ("fp32", "optimized", "int8", "fp16"):
        assert champion.tags[f"variant.{variant}.f1"] == "1.0"
        assert float(champion.tags[f"variant.{variant}.latency_ms_b1"]) > 0
    assert float(champion.tags["variant.fp32.max_abs_logit_diff"]) < 1e-4


def test_inputs_give_entities_per_text(served_champion: str) -> None:
    status, body = post(served_champion, {"inputs": ["John Smith left Paris.", "", "   ", "Nobody here."]})
    assert status == 200
    assert spans(body["predictions"]) == [[("PER", "John Smith", 0, 10), ("LOC", "Paris", 16, 21)], [], [], []]
    assert all(0.5 < entity["score"] <= 1.0 for entity in body["predictions"][0])


def test_dataframes_are_read_by_their_text_column(served_champion: str) -> None:
    split = {"dataframe_split": {"columns": ["id", "text"], "data": [[1, "To Paris"], [2, "Müller"]]}}
    assert post(served_champion, split) == (200, post(served_champion, {"inputs": ["To Paris", "Müller"]})[1])
    status, body = post(served_champion, {"dataframe_records": [{"text": "New York"}]})
    assert (status, spans(body["predictions"])) == (200, [[("LOC", "New York", 0, 8)]])


def test_a_100k_character_text_is_answered(served_champion: str) -> None:
    text = ("John Smith flew to Paris . " * 4000)[:100_000]
    status, body = post(served_champion, {"inputs": [text]})
    assert status == 200
    [entities] = body["predictions"]
    assert len(entities) == 2 * (100_000 // 27) + 1  # the cut repetition keeps "John Smith"
    assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"inputs": ["Z\xfcrich"]}', "UnicodeDecodeError('utf-8'"),
        (b'{"inputs": ["Paris"', "Invalid input"),
        ({"inputs": ["Paris", None]}, "text 1 is NoneType None, not a string"),
        ({"inputs": [["nested"]]}, "not a string"),
        (b'{"inputs": ["Paris \\ud800"]}', "text 0 is not valid Unicode"),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [["x", "y"]]}}, "needs a 'text' column"),
    ],
)
def test_bad_requests_get_a_400_that_says_why(served_champion: str, body: bytes | dict, message: str) -> None:
    status, answer = post(served_champion, body)
    assert status == 400
    assert message in answer["message"]


def test_the_server_is_still_up_after_bad_requests(served_champion: str) -> None:
    post(served_champion, b"\xff\xfe\x00")
    with urllib.request.urlopen(f"{served_champion}/ping", timeout=10) as response:
        assert response.status == 200
    assert spans(post(served_champion, {"inputs": ["Paris"]})[1]["predictions"]) == [[("LOC", "Paris", 0, 5)]]


def test_an_alias_that_does_not_exist_stops_the_server_with_a_clear_message(served_store: str) -> None:
    with pytest.raises(ElectraError, match="has alias 'missing'"):
        with served_model("models:/electra-ner@missing", served_store, timeout_s=120):
            pass
