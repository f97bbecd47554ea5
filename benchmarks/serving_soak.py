"""A bounded soak of the served model on 127.0.0.1: good requests mixed with oversized and malformed ones.

Starts the guarded model server (:func:`electra_model.serving.model_server.served_model`, the model's own
``export.limits``) on a free loopback port, or uses ``--url`` of one already running, and lets ``--clients`` threads
send requests for ``--seconds``. Every fourth request of a client is a bad one, in turn: a body over
``max_request_bytes``, a text over ``max_text_chars``, too many texts, JSON nested 100,000 levels, invalid JSON,
and a null text. Good requests must answer 200 with one entity list per text; bad ones 413 or 400 with a one-line
message. Prints the counts, the p50/p99 of good requests and the server's resident memory (all its processes)
before the soak and after it has been idle ``--settle`` seconds; exits 1 if a good request failed, a bad one got
another answer, or memory ended more than 10% above its start::

    python benchmarks/serving_soak.py --tracking-uri sqlite:///mlflow.db           # after `make run`
    python benchmarks/serving_soak.py --clients 8 --seconds 120

A benchmark, not a test: it takes minutes and is kept out of the suite.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil

from electra_model.client.exported import find_onnx_dir, read_meta
from electra_model.client.limits import RequestLimits
from electra_model.client.ner import DEFAULT_MODEL
from electra_model.client.store import download_registered_model, resolve_tracking_uri
from electra_model.serving.model_server import served_model

GOOD_TEXTS = [
    "Angela Merkel met Emmanuel Macron in Paris .",
    "John Smith visited New York and Berlin last week .",
    "The United Nations met in Geneva on Monday .",
]
MEMORY_TOLERANCE = 0.10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-uri", default=DEFAULT_MODEL)
    parser.add_argument("--tracking-uri", help="default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=120, help="how long the clients send")
    parser.add_argument("--settle", type=float, default=10, help="idle seconds before memory is measured again")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the started server")
    return parser.parse_args()


def bad_bodies(limits: RequestLimits) -> list[tuple[str, bytes, int]]:
    """(name, body, expected status) of each kind of bad request the soak mixes in."""
    return [
        ("oversized body", json.dumps({"inputs": ["a" * limits.max_request_bytes]}).encode(), 413),
        ("over-long text", json.dumps({"inputs": ["b " * (limits.max_text_chars // 2 + 1)]}).encode(), 413),
        ("too many texts", json.dumps({"inputs": ["c"] * (limits.max_texts + 1)}).encode(), 413),
        ("nested 100,000 levels", b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
        ("invalid JSON", b'{"inputs": ["Paris"', 400),
        ("null text", b'{"inputs": ["Paris", null]}', 400),
    ]


def post(url: str, body: bytes) -> tuple[int, bytes, float]:
    start = time.perf_counter()
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read(), time.perf_counter() - start
    except urllib.error.HTTPError as error:
        return error.code, error.read(), time.perf_counter() - start
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error).encode(), time.perf_counter() - start


def good_answer(status: int, answer: bytes, texts: int) -> bool:
    return status == 200 and len(json.loads(answer)["predictions"]) == texts


def one_line(answer: bytes) -> bool:
    text = answer.decode("utf-8", errors="replace").strip()
    return "\n" not in text and "Traceback" not in text and bool(json.loads(text).get("message"))


def server_memory_mb(port: int) -> float:
    """Resident memory of the process listening on ``port`` and all its children (uvicorn's workers)."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.laddr.port == port and connection.status == psutil.CONN_LISTEN and connection.pid:
            root = psutil.Process(connection.pid)
            while root.parent() is not None and root.parent().name() == root.name():
                root = root.parent()
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20
    raise RuntimeError(f"no process listens on port {port}")


def soak(url: str, clients: int, seconds: float, bad: list[tuple[str, bytes, int]]) -> dict:
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"good": 0, "good_failed": 0, "bad": 0, "bad_wrong": 0}
    failures: list[str] = []

    def client(number: int) -> None:
        for step in itertools.count():
            if time.monotonic() > deadline:
                return
            if step % 4 == 3:
                name, body, expected = bad[(number + step // 4) % len(bad)]
                status, answer, _ = post(url, body)
                wrong = status != expected or not one_line(answer)
                with lock:
                    counts["bad"] += 1
                    counts["bad_wrong"] += wrong
                    if wrong:
                        failures.append(f"{name}: HTTP {status} {answer[:200]!r}")
                continue
            texts = GOOD_TEXTS[: 1 + (number + step) % len(GOOD_TEXTS)]
            status, answer, elapsed = post(url, json.dumps({"inputs": texts}).encode())
            ok = good_answer(status, answer, len(texts))
            with lock:
                counts["good"] += 1
                counts["good_failed"] += not ok
                latencies.append(elapsed)
                if not ok:
                    failures.append(f"good request: HTTP {status} {answer[:200]!r}")

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    counts["p50_ms"] = round(float(np.percentile(latencies, 50)) * 1000, 1) if latencies else None
    counts["p99_ms"] = round(float(np.percentile(latencies, 99)) * 1000, 1) if latencies else None
    counts["failures"] = failures[:10]
    return counts


def model_limits(model_uri: str, tracking_uri: str, scratch: Path) -> RequestLimits:
    onnx_dir = find_onnx_dir(download_registered_model(model_uri, tracking_uri, scratch))
    return RequestLimits.from_meta(read_meta(onnx_dir), onnx_dir)


def main() -> int:
    args = parse_args()
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    with tempfile.TemporaryDirectory(prefix="electra-soak-") as scratch:
        limits = model_limits(args.model_uri, tracking_uri, Path(scratch))
    bad = bad_bodies(limits)
    with served_model(args.model_uri, tracking_uri, workers=args.workers) as url:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(3):  # warm up: the first requests load lazily initialized parts
            post(url, json.dumps({"inputs": GOOD_TEXTS}).encode())
        before = server_memory_mb(port)
        result = soak(url, args.clients, args.seconds, bad)
        time.sleep(args.settle)
        after = server_memory_mb(port)
        still_up = good_answer(*post(url, json.dumps({"inputs": GOOD_TEXTS}).encode())[:2], len(GOOD_TEXTS))
    growth = after / before - 1
    print(json.dumps({
        "clients": args.clients, "seconds": args.seconds, "workers": args.workers, "limits": limits.as_meta(),
        **result, "memory_before_mb": round(before, 1), "memory_after_mb": round(after, 1),
        "memory_growth": round(growth, 3), "answers_good_request_after": still_up, "cpu_count": os.cpu_count(),
    }, indent=2))
    failed = result["good_failed"] or result["bad_wrong"] or growth > MEMORY_TOLERANCE or not still_up
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
