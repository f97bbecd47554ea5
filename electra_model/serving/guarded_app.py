"""MLflow's scoring server for the registered model, behind a guard that bounds what one request may cost.

MLflow's own app (``mlflow models serve``) reads any body in full, lets ``json`` recurse once per nesting level (so
100,000 levels end in HTTP 500, RecursionError), and answers errors with the request echoed and, for unexpected
ones, a Python stack trace with the server's paths. This module builds the very same app
(:func:`mlflow.pyfunc.scoring_server.init`) and wraps it in :class:`RequestGuard`, an ASGI middleware that

- answers 413 to a body over the model's ``max_request_bytes`` (by its Content-Length, or while it streams in)
  without keeping it: the rest of a body up to :data:`DRAIN_FACTOR` times the limit is read and dropped first, so
  that an ordinary client, still sending, reads the 413 instead of a broken pipe (closing on unread data resets
  the connection); a larger one is answered at once;
- answers 400 to JSON nested past Python's recursion limit, before MLflow parses it;
- turns every error answer into one JSON line ``{"error_code": ..., "message": ...}`` naming the cause: the echoed
  input and the stack trace are dropped, and the pyfunc's "request limit" error becomes 413.

The limits are the model's own (``model_meta.json``, :mod:`electra_model.client.limits`), read from the loaded
pyfunc. :func:`electra_model.serving.model_server.served_model` runs it with uvicorn::

    ELECTRA_SERVE_MODEL=/path/to/downloaded/model uvicorn --factory electra_model.serving.guarded_app:create_app \\
        --host 127.0.0.1 --port 5001
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from electra_model.client.limits import RequestLimits

MODEL_ENV = "ELECTRA_SERVE_MODEL"  # the local MLflow model directory to serve (set by model_server)
MAX_MESSAGE_CHARS = 300
LIMIT_ERROR = "REQUEST_LIMIT_EXCEEDED"
GUARDED_PATH = "/invocations"
DRAIN_FACTOR = 8  # a body up to this many times the limit is drained before the 413; a larger one is cut off

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def one_line(status: int, body: bytes) -> tuple[int, bytes]:
    """The status and one-line JSON body a client gets for an error answer of the wrapped app: MLflow's message
    without the echoed input (``Failed to predict data '...'. Error: ...``) or stack trace, cut to one short line."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        message, code = payload["message"], str(payload.get("error_code") or "BAD_REQUEST")
    else:
        message, code = body.decode("utf-8", errors="replace"), "BAD_REQUEST"
    if status >= 500:
        message, code = "internal server error; the server log has the details", "INTERNAL_ERROR"
    message = message.rsplit("\nError: ", 1)[-1].strip()
    first = message.splitlines()[0] if message else f"HTTP {status}"
    if len(first) > MAX_MESSAGE_CHARS:
        first = first[: MAX_MESSAGE_CHARS - 3] + "..."
    if code == LIMIT_ERROR:
        status = 413
    return status, json.dumps({"error_code": code, "message": first}).encode()


async def answer(send: Send, status: int, code: str, message: str) -> None:
    """Send a complete one-line JSON error response."""
    body = json.dumps({"error_code": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: bounded request bodies and one-line error answers for the wrapped scoring app."""

    def __init__(self, app: ASGIApp, limits: RequestLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != GUARDED_PATH:
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        if b"json" in dict(scope["headers"]).get(b"content-type", b"") and await self._too_deep(body, send):
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, self._one_line_errors(send))

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None after answering 413 when it is (or announces itself) over the limit."""
        limit = self.limits.max_request_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        too_big = (
            f"request body over {limit} bytes (export.limits.max_request_bytes); send fewer or shorter texts"
        )
        if declared is not None and declared.isdigit() and int(declared) > limit * DRAIN_FACTOR:
            await answer(send, 413, LIMIT_ERROR, too_big)
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif chunks:
                chunks = []  # over the limit: drop what was kept, drain the rest
            more = message.get("more_body", False)
            if size > limit and (not more or size > limit * DRAIN_FACTOR):
                await answer(send, 413, LIMIT_ERROR, too_big)
                return None
            if not more:
                return b"".join(chunks)

    @staticmethod
    async def _too_deep(body: bytes, send: Send) -> bool:
        """Answer 400 to JSON nested past the recursion limit (MLflow's parse would end in HTTP 500). Other invalid
        JSON is left to MLflow, which names the parse error."""
        try:
            json.loads(body)
        except RecursionError:
            await answer(send, 400, "INVALID_PARAMETER_VALUE", "JSON nested too deeply; send a flat list of texts")
            return True
        except ValueError:
            return False
        return False

    @staticmethod
    def _one_line_errors(send: Send) -> Send:
        """A ``send`` that buffers an error answer of the wrapped app and sends it as :func:`one_line` instead."""
        state: dict[str, Any] = {"start": None, "body": b""}

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                state["start"] = message
                return
            if state["start"] is None or message["type"] != "http.response.body":
                await send(message)
                return
            state["body"] += message.get("body", b"")
            if message.get("more_body", False):
                return
            status, body = one_line(state["start"]["status"], state["body"])
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return guarded


def create_app() -> RequestGuard:
    """MLflow's scoring app for the model in ``ELECTRA_SERVE_MODEL``, behind :class:`RequestGuard` with the model's
    limits; uvicorn calls it in each worker (``--factory``)."""
    from mlflow.pyfunc import load_model, scoring_server

    model = load_model(os.environ[MODEL_ENV])
    return RequestGuard(scoring_server.init(model), model.unwrap_python_model().limits)
