"""build_once (tests/shared_once.py) builds a session fixture once per test run, whichever pytest-xdist worker asks
first, and a failed build fails the other workers at once instead of being paid for again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_once import build_once, shared_root


def test_a_second_caller_reads_what_the_first_built(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(folder: Path) -> str:
        calls.append(folder)
        (folder / "model.txt").write_text("weights", encoding="utf-8")
        return str(folder / "model.txt")

    first = build_once(tmp_path, "model", build)
    second = build_once(tmp_path, "model", build)
    assert first == second == (tmp_path / "model", str(tmp_path / "model" / "model.txt"))
    assert calls == [tmp_path / "model"]
    assert (tmp_path / "model" / "model.txt").read_text(encoding="utf-8") == "weights"


def test_a_failed_build_is_reported_to_later_callers_without_building_again(tmp_path: Path) -> None:
    calls = []

    def build(folder: Path) -> str:
        calls.append(folder)
        raise ValueError("no data in data/task/train.jsonl")

    with pytest.raises(ValueError, match="no data"):
        build_once(tmp_path, "demo-run", build)
    with pytest.raises(RuntimeError, match=r"demo-run: the build failed in another pytest-xdist worker(.|\n)*no data"):
        build_once(tmp_path, "demo-run", build)
    assert len(calls) == 1


def test_an_unfinished_build_is_started_again(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "half-written").write_text("", encoding="utf-8")  # a worker killed mid-build
    folder, result = build_once(tmp_path, "model", lambda folder: "done")
    assert result == "done" and not (folder / "half-written").exists()


def test_workers_share_the_parent_of_their_base_temp(tmp_path_factory: pytest.TempPathFactory,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert shared_root(tmp_path_factory) == tmp_path_factory.getbasetemp().parent
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert shared_root(tmp_path_factory) == tmp_path_factory.getbasetemp()
