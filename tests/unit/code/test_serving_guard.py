"""Issue 30, findings 2 and 6 at unit level: the request limits a model carries, the guard's one-line error answers,
and onnxruntime's telemetry off by default (the served walk is tests/integration/test_bad_requests.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from electra_model.client.limits import RequestLimits, RequestTooLarge
from electra_model.errors import ElectraError
from electra_model.serving.guarded_app import DRAIN_FACTOR, RequestGuard, one_line

LIMITS = RequestLimits(max_request_bytes=100, max_texts=2, max_text_chars=5)


def test_limits_refuse_too_many_texts_and_too_long_ones_by_name() -> None:
    LIMITS.check_texts(["12345", ""])
    with pytest.raises(RequestTooLarge, match="3 texts.*max_texts"):
        LIMITS.check_texts(["a", "b", "c"])
    with pytest.raises(RequestTooLarge, match="text 1 has 6 characters.*max_text_chars"):
        LIMITS.check_texts(["a", "123456"])


@pytest.mark.parametrize("recorded", [None, {"max_texts": 2}, {**LIMITS.as_meta(), "max_texts": 0},
                                      {**LIMITS.as_meta(), "max_texts": "2"}])
def test_a_model_without_valid_limits_is_refused_with_the_fix(recorded: object) -> None:
    meta = {} if recorded is None else {"limits": recorded}
    with pytest.raises(ElectraError, match="model_meta.json has no valid 'limits'.*dvc repro export"):
        RequestLimits.from_meta(meta, Path("models/onnx"))
    assert RequestLimits.from_meta({"limits": LIMITS.as_meta()}, Path(".")) == LIMITS


def test_errors_become_one_line_without_the_echoed_input_or_a_traceback() -> None:
    mlflow_error = json.dumps({
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Failed to predict data '['secret input']'. \nError: text 0 is int 1, not a string",
        "stack_trace": "Traceback (most recent call last):\n  File \"/srv/x.py\"",
    }).encode()
    assert one_line(400, mlflow_error) == (400, json.dumps({
        "error_code": "INVALID_PARAMETER_VALUE", "message": "text 0 is int 1, not a string"}).encode())
    status, body = one_line(429, json.dumps({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "3 texts"}).encode())
    assert (status, json.loads(body)["message"]) == (413, "3 texts")
    status, body = one_line(500, b"Internal Server Error\n  File /srv/app.py")
    assert status == 500 and "/srv" not in body.decode() and "\n" not in body.decode()
    assert len(json.loads(one_line(400, b"x" * 5000)[1])["message"]) <= 300


def call_guard(body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, list[bytes]]:
    """Run ``body`` through a guard around an app that echoes what it read; the status, answer and what reached
    the app."""
    reached: list[bytes] = []

    async def app(scope, receive, send) -> None:
        reached.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict] = []
    parts = [body[:60], body[60:]]

    async def receive() -> dict:
        return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/invocations", "headers": headers}
    asyncio.run(RequestGuard(app, LIMITS)(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), reached


def test_the_guard_cuts_off_big_bodies_and_deep_json_before_the_app_sees_them() -> None:
    json_type = (b"content-type", b"application/json")
    status, _, reached = call_guard(b"x" * 101, [json_type])
    assert (status, reached) == (413, [])
    status, _, reached = call_guard(b"x" * 50, [json_type, (b"content-length", b"5000")])
    assert (status, reached) == (413, [])
    deep = b"[" * 50_000
    guard = RequestGuard(None, RequestLimits(max_request_bytes=10**6, max_texts=2, max_text_chars=5))
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": deep, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(guard({"type": "http", "path": "/invocations", "headers": [json_type]}, receive, send))
    assert sent[0]["status"] == 400 and b"nested too deeply" in sent[1]["body"]
    assert call_guard(b'{"inputs": ["ok"]}', [json_type]) == (200, b"ok", [b'{"inputs": ["ok"]}'])


def test_a_body_a_little_over_the_limit_is_drained_before_the_413_so_the_client_reads_it() -> None:
    """Closing on unread data resets the connection and a client still sending sees a broken pipe, not the 413:
    a body up to DRAIN_FACTOR times the limit is read and dropped first; a larger one is answered at once."""
    for size, drained in ((DRAIN_FACTOR * 100, True), (DRAIN_FACTOR * 100 + 1, False)):
        parts = [b"x" * 60 for _ in range(size // 60)] + [b"x" * (size % 60)]

        async def receive() -> dict:
            return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)}

        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "path": "/invocations", "headers": [(b"content-length", str(size).encode())]}
        asyncio.run(RequestGuard(None, LIMITS)(scope, receive, send))
        assert sent[0]["status"] == 413 and (not parts) is drained


def test_onnxruntime_telemetry_is_off_once_the_package_is_imported(tmp_path: Path) -> None:
    """onnxruntime writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db} per process
    unless ORT_DISABLE_TELEMETRY is set before its import; importing electra_model first sets it."""
    script = (
        "import electra_model.client.exported as e, numpy as np, onnx.helper as h;"
        "g = h.make_graph([h.make_node('Identity', ['x'], ['y'])], 'g', [h.make_tensor_value_info('x', 1, [1])],"
        " [h.make_tensor_value_info('y', 1, [1])]);"
        "m = h.make_model(g, opset_imports=[h.make_opsetid('', 17)]); m.ir_version = 8;"
        "e.ort.InferenceSession(m.SerializeToString(), providers=['CPUExecutionProvider'])"
        ".run(None, {'x': np.ones(1, np.float32)})"
    )
    env = {key: value for key, value in os.environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / ".cache"))
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    assert not list(tmp_path.rglob("*")), "onnxruntime wrote telemetry files"
