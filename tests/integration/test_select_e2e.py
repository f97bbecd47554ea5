"""`electra select` on the demo pipeline's exported NER model (a CRF head): the command a user runs, in its own
process, ranking a pool by the CRF's marginals on onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from electra_model.client.ner import NerPredictor
from electra_model.client.selection import score_texts
from tests.integration.project import DemoRun

pytestmark = pytest.mark.e2e

POOL = [
    "Angela Merkel visited Paris on Monday.",
    "The market was quiet.",
    "EU rejects German call to boycott British lamb.",
    "Peter Blackburn",
    "The market was quiet.",
    "Rome and Berlin signed the accord in Brussels.",
]


def run_select(model: Path, pool: Path, out: Path, *extra: str) -> list[dict]:
    electra = Path(sys.executable).parent / "electra"
    command = [str(electra), "select", "--pool", str(pool), "--k", "3", "--model", str(model), "--out", str(out)]
    result = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=120, cwd=out.parent)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_electra_select_writes_the_least_certain_texts_with_their_scores(demo_run: DemoRun, tmp_path: Path) -> None:
    model = demo_run.project.root / "models" / "onnx"
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(POOL) + "\n", encoding="utf-8")
    rows = run_select(model, pool, tmp_path / "batch.jsonl")

    predictor = NerPredictor.from_dir(model)
    assert predictor.chain is not None  # the demo trains the default CRF head, so the marginal measure applies
    expected = score_texts("token_tagging", predictor, POOL, "marginal")
    top = sorted(range(len(POOL)), key=lambda index: (-expected[index], index))[:3]
    assert [row["rank"] for row in rows] == [1, 2, 3]
    assert [row["line"] for row in rows] == [index + 1 for index in top]
    assert [row["text"] for row in rows] == [POOL[index] for index in top]
    assert [row["score"] for row in rows] == pytest.approx([expected[index] for index in top], abs=1e-6)

    spread = run_select(model, pool, tmp_path / "spread.jsonl", "--diversity", "kcenter")
    assert len({row["text"] for row in spread}) == 3  # never the same sentence twice in one batch
