"""A bounded load test of the served NER model: a fixed number of requests from concurrent clients on loopback.

Starts ``mlflow models serve -m MODEL_URI --env-manager local`` on a free loopback port (or uses ``--url`` of a
server already running), sends ``--requests`` POST /invocations from ``--clients`` threads, each request one
``{"inputs": [text, ...]}`` of sentences from a CoNLL file (default: the pipeline's ``data/task/test.txt``), and
checks every answer (HTTP 200, one entity list per text)::

    python benchmarks/load_test.py --tracking-uri sqlite:///mlflow.db       # after `make run`
    python benchmarks/load_test.py --clients 8 --requests 1000 --workers 2

Prints requests/s, latency p50/p90/p99 and the failures, and exits with status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from electra_model.dvc_map import stage_path
from electra_model.tasks.ner.conll import read_conll
from electra_model.client.ner import DEFAULT_MODEL
from electra_model.client.store import resolve_tracking_uri
from electra_model.serving.model_server import served_model

ROOT = Path(__file__).resolve().parents[1]
TASK_DATA = ROOT / stage_path("download", "outs", suffix="task", dvc_file=ROOT / "dvc.yaml")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-uri", default=DEFAULT_MODEL)
    parser.add_argument("--tracking-uri", help="default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    parser.add_argument("--url", help="a server already running (then nothing is started)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--requests", type=int, default=500, help="requests in all")
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the started server")
    parser.add_argument("--data", type=Path, default=TASK_DATA / "test.txt", help="CoNLL file of texts")
    return parser.parse_args()


def request_bodies(data: Path, count: int, per_request: int) -> list[bytes]:
    """``count`` request bodies cycling through the sentences of ``data``, as untokenized text."""
    texts = [" ".join(sentence.tokens) for sentence in read_conll(data)]
    return [
        json.dumps({"inputs": [texts[(index * per_request + offset) % len(texts)] for offset in range(per_request)]})
        .encode("utf-8")
        for index in range(count)
    ]


def send(url: str, body: bytes, expected: int) -> tuple[float, str | None]:
    """Seconds the request took, and what was wrong with it (None when it was answered as it should be)."""
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
        return time.perf_counter() - started, repr(error)
    elapsed = time.perf_counter() - started
    return elapsed, None if len(predictions) == expected else f"{len(predictions)} predictions for {expected} texts"


def run(url: str, bodies: list[bytes], clients: int, per_request: int) -> dict:
    send(url, bodies[0], per_request)  # warm-up, not counted
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(lambda body: send(url, body, per_request), bodies))
    wall = time.perf_counter() - started
    latencies = np.array([seconds for seconds, _ in results]) * 1000
    failures = [problem for _, problem in results if problem]
    return {
        "requests": len(bodies),
        "clients": clients,
        "failed": len(failures),
        "first_failures": failures[:3],
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(bodies) / wall, 1),
        **{f"p{q}_ms": round(float(np.percentile(latencies, q)), 1) for q in (50, 90, 99)},
    }


def main() -> int:
    args = parse_args()
    bodies = request_bodies(args.data, args.requests, args.texts_per_request)
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    server = nullcontext(args.url) if args.url else served_model(args.model_uri, tracking_uri, workers=args.workers)
    with server as url:
        summary = run(url, bodies, args.clients, args.texts_per_request)
    print(json.dumps({"model": args.model_uri, "workers": args.workers, "cpus": os.cpu_count(), **summary}, indent=2))
    print(f"{summary['requests_per_s']} requests/s, p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, "
          f"{summary['failed']} failed of {summary['requests']}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
