"""The real Label Studio server the end-to-end tests talk to (one per module, started as `make label-studio` starts
it), and what an annotator marks for a gold sentence: shared by test_label_studio.py and test_labelling_loop.py."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from electra_model.annotate.server import start, wait_until_up
from electra_model.annotate.spans import span_item
from electra_model.annotate.studio import TOKEN_FILE, LabelStudio
from electra_model.client.ner import entity_spans
from electra_model.client.text_words import detokenize
from tests.integration.project import REPO

VENV = REPO / ".venv-label-studio"


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    """Label Studio from its own environment (built here if `make test` did not) on a free loopback port, with a
    fresh copy of the migrated empty database."""
    built = subprocess.run(["make", "label-studio-env"], cwd=REPO, capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"Label Studio's environment could not be built (`make label-studio-env`): {built.stderr[-300:]}")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}"
    data_dir = tmp_path_factory.mktemp("label-studio")
    log = data_dir / "server.log"
    process = start(VENV, data_dir, url, log)
    try:
        wait_until_up(url, process, 600, log)
        yield LabelStudio(url, (data_dir / TOKEN_FILE).read_text(encoding="utf-8"), timeout_s=60)
    finally:
        process.terminate()
        process.wait(timeout=60)


def gold_result(task: dict[str, Any], tokens: tuple[str, ...], tags: tuple[str, ...]) -> list[dict[str, Any]]:
    """What an annotator marks: each gold entity's characters in the task's text."""
    text, placed = detokenize(tokens)
    assert text == task["data"]["text"]
    result = []
    for kind, first, last in entity_spans(tags):
        start, end = placed[first][1], placed[last - 1][2]
        result.append(span_item(kind, text[start:end], start, end))
    return result
