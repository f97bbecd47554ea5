"""benchmarks/gpu_checks.sh --dry-run: every phase of the GPU checks runs on CPU with tiny settings, within its
300 s deadline, and writes its results where the real run would (so the script is known to work before a GPU
machine's minutes are spent on it). The data is generated: the demo corpus and NER sets under the file names of
the shared Wikipedia shards and CoNLL-2003, and GLUE-style sentiment rows under SST-2's."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from electra_model.tasks.ner.conll import write_conll
from electra_model.data.demo import demo_corpus, derive_seed
from electra_model.tasks.ner.data import demo_ner

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PHASES = ("throughput_small_compiled", "throughput_base_compiled", "throughput_small_eager", "quality", "ner_pair",
          "sst2_pair")
SENTIMENT = {"1": ("a warm , funny and moving film", "great acting and a clever story"),
             "0": ("a dull , lifeless and tedious film", "bad acting and a boring story")}


def make_data(root: Path) -> Path:
    (root / "corpus").mkdir(parents=True)
    (root / "conll2003").mkdir()
    text = "".join(document + "\n\n" for document in demo_corpus(120, seed=1)).encode()
    for name in ("sample", "wiki_en_train_00", "wiki_en_valid"):
        (root / "corpus" / f"{name}.txt.gz").write_bytes(gzip.compress(text))
    for split, count in (("train", 400), ("valid", 100), ("test", 100)):
        plain = root / f"{split}.txt"
        write_conll(plain, demo_ner(count, seed=derive_seed(1, split)))
        (root / "conll2003" / f"{split}.txt.gz").write_bytes(gzip.compress(plain.read_bytes()))
    (root / "sst2").mkdir()
    for split, count in (("train", 400), ("dev", 60)):
        rows = [f"{label}\t{SENTIMENT[label][i % 2]} , take {i}" for i in range(count) for label in ("0", "1")]
        (root / "sst2" / f"{split}.tsv.gz").write_bytes(gzip.compress(("label\tsentence\n" + "\n".join(rows)).encode()))
    return root


def test_the_dry_run_runs_every_phase_on_cpu_within_its_deadline(tmp_path):
    data, out = make_data(tmp_path / "data"), tmp_path / "out"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "OUT": str(out)}
    started = time.perf_counter()
    result = subprocess.run(
        ["bash", "benchmarks/gpu_checks.sh", "--dry-run", str(data)], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=420,
    )
    wall = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    phases = dict(line.split(": ", 1) for line in (out / "phases.txt").read_text(encoding="utf-8").splitlines())
    for phase in PHASES:
        assert phases.get(phase, "").startswith("exit 0 after"), (phase, phases, result.stdout[-3000:])
    # the last phase may be cut for time on a busy machine, but is never left out silently
    assert phases["inference"].startswith(("exit 0 after", "skipped")), phases
    assert wall < 300 + 60, f"the dry run took {wall:.0f} s"  # 300 s of phases, plus data cutting and start-up

    summary = json.loads((out / "quality_summary.json").read_text(encoding="utf-8"))
    assert summary["budget_minutes"] > 0 and summary["steps"] >= 1
    assert {"rtd_recall", "rtd_auc", "mlm_accuracy_masked"} <= set(summary["held_out"])
    for init in ("pretrained", "random"):
        assert "test entity F1:" in (out / f"ner_{init}.txt").read_text(encoding="utf-8")
        assert "dev accuracy:" in (out / f"sst2_{init}.txt").read_text(encoding="utf-8")
    for name in ("throughput_small_compiled", "throughput_base_compiled", "throughput_small_eager"):
        assert "speedup:" in (out / f"{name}.txt").read_text(encoding="utf-8")
