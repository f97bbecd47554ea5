"""A walk through bad requests to the served champion and bad model folders given to the client (issue 30,
findings 2 and 6): for each, the class of outcome -- the status code, one JSON line whose message names the cause,
no stack trace or server path in it -- and, for the HTTP cases, that the server still answers a good request
afterwards. The server is the session's ``served_champion`` (params.yaml's ``export.limits``). The same champion
under a plain `mlflow models serve` shows which limits hold there: the texts and characters (the pyfunc's), not
the request bytes (MLflow reads the body before any code of ours runs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from electra_model.client.loader import load_predictor
from electra_model.client.store import download_registered_model
from electra_model.errors import ElectraError
from electra_model.serving.model_server import free_port
from tests.params import section

pytestmark = pytest.mark.e2e

LIMITS = section("export").limits
JSON = "application/json"
GOOD = {"inputs": ["John Smith left Paris."]}


def nested(levels: int) -> bytes:
    return b'{"inputs": ' + b"[" * levels + b'"x"' + b"]" * levels + b"}"


def chunks(body: bytes) -> Iterable[bytes]:
    """The body as an iterable, which urllib sends chunked (no Content-Length to refuse it by)."""
    for start in range(0, len(body), 65536):
        yield body[start : start + 65536]


# (case id, body, content type, expected status, a word the message must contain)
HTTP_CASES = [
    ("over max_request_bytes", json.dumps({"inputs": ["a" * LIMITS.max_request_bytes]}).encode(), JSON, 413,
     "max_request_bytes"),
    ("over max_texts", {"inputs": ["x"] * (LIMITS.max_texts + 1)}, JSON, 413, "max_texts"),
    ("over max_text_chars", {"inputs": ["y" * (LIMITS.max_text_chars + 1)]}, JSON, 413, "max_text_chars"),
    ("pairs count toward max_texts", {"inputs": {"text": ["a"] * LIMITS.max_texts, "pair": ["b"]}}, JSON, 413,
     "max_texts"),
    ("JSON nested 100,000 levels", nested(100_000), JSON, 400, "nested too deeply"),
    ("JSON nested 200 levels", nested(200), JSON, 400, "Invalid input"),
    ("a bare string as inputs", {"inputs": "a string"}, JSON, 200, ""),
    ("invalid UTF-8", b'{"inputs": ["Z\xfcrich"]}', JSON, 400, "UnicodeDecodeError"),
    ("truncated JSON", b'{"inputs": ["Paris"', JSON, 400, "valid JSON"),
    ("empty body", b"", JSON, 400, "JSON"),
    ("a JSON list at the top", ["Paris"], JSON, 400, "list"),
    ("a JSON number at the top", 5, JSON, 400, "input"),
    ("an empty object", {}, JSON, 400, "input"),
    ("an unknown key", {"texts": ["Paris"]}, JSON, 400, "input"),
    ("null text", {"inputs": ["Paris", None]}, JSON, 400, "text 1 is NoneType"),
    ("a number as text", {"inputs": [1, 2]}, JSON, 400, "text 0 is int"),
    ("a boolean as text", {"inputs": [True]}, JSON, 400, "text 0 is bool"),
    ("a nested list", {"inputs": [["nested"]]}, JSON, 400, "not a string"),
    ("a lone surrogate", b'{"inputs": ["Paris \\ud800"]}', JSON, 400, "not valid Unicode"),
    ("a dict whose text is a number", {"inputs": {"text": 5}}, JSON, 400, "text"),
    ("a pair to an NER model", {"inputs": {"text": ["a"], "pair": ["b"]}}, JSON, 400, "single texts"),
    ("a DataFrame without a text column", {"dataframe_split": {"columns": ["a", "b"], "data": [["x", "y"]]}}, JSON,
     400, "'text' column"),
    ("a null in dataframe_records", {"dataframe_records": [{"text": None}]}, JSON, 400, "not a string"),
    ("plain text content type", b"Paris", "text/plain", 415, "content types"),
    ("a latin-1 charset", json.dumps(GOOD).encode(), "application/json; charset=latin-1", 415, "UTF-8"),
    ("an unknown content type", b"PAR1", "application/x-parquet", 415, "content types"),
    ("garbage parquet", b"PAR1 not parquet", "application/vnd.apache.parquet", 400, ""),
    ("CSV without a text column", b"a,b\n1,2\n", "text/csv", 400, "'text' column"),
]


def send(url: str, body: object, content_type: str, chunked: bool = False) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=chunks(data) if chunked else data, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def assert_one_clear_line(answer: bytes, cause: str) -> None:
    """One JSON line, short, naming ``cause``, with no traceback and no path of the server's files."""
    text = answer.decode()
    assert "\n" not in text.strip() and "Traceback" not in text, text[:500]
    message = json.loads(text)["message"]
    assert cause in message and len(message) <= 300, message
    assert not any(leak in message for leak in ("site-packages", ".py", str(Path.cwd()), "/tmp/")), message


def assert_still_serving(url: str) -> None:
    status, answer = send(url, GOOD, JSON)
    assert status == 200 and json.loads(answer)["predictions"][0][0]["text"] == "John Smith"


@pytest.mark.parametrize(("body", "content_type", "status", "cause"), [case[1:] for case in HTTP_CASES],
                         ids=[case[0] for case in HTTP_CASES])
def test_a_bad_request_gets_one_clear_line_and_the_server_keeps_serving(
    served_champion: str, body: object, content_type: str, status: int, cause: str
) -> None:
    got, answer = send(served_champion, body, content_type)
    assert got == status, answer[:500]
    if status != 200:
        assert_one_clear_line(answer, cause)
    assert_still_serving(served_champion)


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(served_champion: str) -> None:
    body = json.dumps({"inputs": ["a" * LIMITS.max_request_bytes]}).encode()
    status, answer = send(served_champion, body, JSON, chunked=True)
    assert status == 413
    assert_one_clear_line(answer, "max_request_bytes")
    assert_still_serving(served_champion)


def test_get_on_invocations_is_refused_and_ping_answers(served_champion: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{served_champion}/invocations", timeout=10)
    assert error.value.code == 405
    assert_still_serving(served_champion)


@pytest.mark.parametrize("variant_file", ["../../x.onnx", "/etc/passwd", "sub/../../model.onnx", "."])
def test_the_client_opens_no_file_outside_the_model_folder(
    tmp_path: Path, pattern_onnx_dir: Path, variant_file: str
) -> None:
    model = shutil.copytree(pattern_onnx_dir, tmp_path / "deep" / "er" / "onnx")
    shutil.copyfile(pattern_onnx_dir / "model.onnx", tmp_path / "x.onnx")  # a real model where ../../ points
    meta = json.loads((model / "model_meta.json").read_text())
    meta["variants"][meta["cpu_variant"]]["file"] = variant_file
    (model / "model_meta.json").write_text(json.dumps(meta))
    with pytest.raises(ElectraError, match="outside the model folder") as error:
        load_predictor(model)
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def plain_server(served_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The champion under a plain `mlflow models serve` (no guard), from a downloaded copy so that MLflow writes
    its ``registered_model_meta`` file there and not into the shared store."""
    scratch = tmp_path_factory.mktemp("plain-serve")
    (scratch / "model").mkdir()
    model = download_registered_model("models:/electra-ner@champion", served_store, scratch / "model")
    port = free_port()
    command = ["mlflow", "models", "serve", "-m", str(model), "--env-manager", "local", "-h", "127.0.0.1",
               "-p", str(port)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with open(scratch / "server.log", "wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not ping(url):
            assert server.poll() is None and time.monotonic() < deadline, (scratch / "server.log").read_text()
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.parametrize(("inputs", "limit"), [(["x"] * (LIMITS.max_texts + 1), "max_texts"),
                                               (["y" * (LIMITS.max_text_chars + 1)], "max_text_chars")],
                         ids=["over max_texts", "over max_text_chars"])
def test_a_plain_mlflow_server_enforces_the_text_limits_in_the_pyfunc(
    plain_server: str, inputs: list[str], limit: str
) -> None:
    """The pyfunc refuses the batch before any work with MLflow's REQUEST_LIMIT_EXCEEDED, which a plain MLflow
    server answers with 429 (the guard makes it 413); MLflow's own body, with its echo of the input, is left as
    it is there."""
    status, answer = send(plain_server, {"inputs": inputs}, JSON)
    assert status == 429, answer[:500]
    assert json.loads(answer)["error_code"] == "REQUEST_LIMIT_EXCEEDED" and limit in json.loads(answer)["message"]
    assert_still_serving(plain_server)


def test_a_plain_mlflow_server_cannot_enforce_the_byte_limit(plain_server: str, served_champion: str) -> None:
    """A body over max_request_bytes whose texts are within the text limits (here padded with JSON whitespace):
    a plain MLflow server reads and parses it in full and answers it, since nothing of ours runs before MLflow
    reads the body; only the guarded app (served_model) refuses it, with 413, before reading it all."""
    body = b'{"inputs": ["John Smith left Paris."]' + b" " * LIMITS.max_request_bytes + b"}"
    status, answer = send(plain_server, body, JSON)
    assert status == 200 and json.loads(answer)["predictions"][0][0]["text"] == "John Smith", answer[:500]
    status, answer = send(served_champion, body, JSON)
    assert status == 413
    assert_one_clear_line(answer, "max_request_bytes")
