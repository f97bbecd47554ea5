"""benchmarks/gpu_checks.sh --dry-run: every phase of the GPU checks runs on CPU with tiny settings, within its
300 s deadline, and writes its results where the real run would (so the script is known to work before a GPU
machine's minutes are spent on it). The GPU run's phase limits fit its 540 s by construction, what would travel is
measured against the device's 64 MiB before anything runs, a phase killed by its limit still leaves its partial
table, and summary.md has one row per goal. The data is generated: the demo corpus and NER sets under the file
names of the shared Wikipedia shards and CoNLL-2003, and GLUE-style sentiment rows under SST-2's."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from benchmarks.gpu_summary import GOALS
from electra_model.tasks.ner.conll import write_conll
from electra_model.data.demo import demo_corpus, derive_seed
from electra_model.tasks.ner.data import demo_ner

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
GPU_BUDGET_S = 540
PHASES = ("throughput_small", "quality", "ner_pair", "throughput_base", "sst2_pair")  # most wanted first
CARRY_LIMIT = 64 * 1024 * 1024
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


def script_env(out: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "OUT": str(out),
            **extra}


def test_the_gpu_run_phase_limits_fit_its_budget_most_wanted_first():
    result = subprocess.run(["bash", "benchmarks/gpu_checks.sh", "--limits"], cwd=REPO, capture_output=True,
                            text=True, check=True)
    limits = {name: int(seconds) for name, seconds in (line.split() for line in result.stdout.splitlines())}
    assert tuple(limits) == PHASES
    assert sum(limits.values()) <= GPU_BUDGET_S, limits


def test_more_data_than_the_device_carries_stops_the_script_before_any_phase(tmp_path):
    data, out = make_data(tmp_path / "data"), tmp_path / "out"
    with open(data / "corpus" / "extra.bin", "wb") as handle:  # sparse: 65 MiB apparent, no disk used
        handle.truncate(CARRY_LIMIT + 1024 * 1024)
    result = subprocess.run(["bash", "benchmarks/gpu_checks.sh", "--dry-run", str(data)], cwd=REPO,
                            env=script_env(out), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "carry less" in result.stderr, result.stdout + result.stderr
    assert not (out / "summary.md").exists()


def test_a_throughput_run_killed_while_compiling_leaves_its_eager_table_and_summary_row(tmp_path):
    """What ``timeout`` does to a compiled phase that runs out of time, made deterministic: SIGTERM as soon as the
    eager figures are saved, while torch.compile is still at work."""
    results, log = tmp_path / "throughput_small.json", tmp_path / "throughput_small.txt"
    corpus = tmp_path / "sample.txt.gz"
    corpus.write_bytes(gzip.compress("".join(d + "\n" for d in demo_corpus(40, seed=1)).encode()))
    command = [sys.executable, "benchmarks/pretrain_throughput.py", "--preset", "tiny", "--batch-size", "2",
               "--seq-len", "32", "--vocab-size", "500", "--warmup", "1", "--steps", "1", "--compile",
               "--corpus", str(corpus), "--results", str(results)]
    with open(log, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(command, cwd=REPO, env=script_env(tmp_path), stdout=handle, stderr=handle)
        deadline = time.monotonic() + 240
        while not results.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGTERM, log.read_text(encoding="utf-8")
    saved = json.loads(results.read_text(encoding="utf-8"))
    assert "eager" in saved and "compiled" not in saved
    assert "speedup:" in log.read_text(encoding="utf-8")  # the eager table was printed before compiling
    (tmp_path / "phases.txt").write_text("throughput_small: exit 124 after 100 s (limit 100 s)\n", encoding="utf-8")
    subprocess.run([sys.executable, "benchmarks/gpu_summary.py", str(tmp_path)], cwd=REPO, check=True,
                   capture_output=True)
    row = (tmp_path / "summary.md").read_text(encoding="utf-8").splitlines()[2]
    assert "(eager)" in row and "compiled: not finished" in row and "exit 124" in row, row


def test_the_dry_run_runs_every_phase_on_cpu_within_its_deadline(tmp_path):
    data, out, raw = make_data(tmp_path / "data"), tmp_path / "out", tmp_path / "raw"
    started = time.perf_counter()
    result = subprocess.run(
        ["bash", "benchmarks/gpu_checks.sh", "--dry-run", str(data)], cwd=REPO,
        env=script_env(out, GPU_CHECKS_RAW=str(raw)), capture_output=True, text=True, timeout=420,
    )
    wall = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    phases = dict(line.split(": ", 1) for line in (out / "phases.txt").read_text(encoding="utf-8").splitlines())
    assert phases["carry"].endswith(")") and " MiB of 64 " in phases["carry"]
    # the small preset compiles, as on the GPU; inductor on a CPU may finish or run out of time
    assert phases["throughput_small"].startswith(("exit 0 after", "exit 124 after")), phases
    for phase in PHASES[1:]:
        assert phases.get(phase, "").startswith("exit 0 after"), (phase, phases, result.stdout[-3000:])
    assert wall < 300 + 60, f"the dry run took {wall:.0f} s"  # 300 s of phases, plus data cutting and start-up

    # what comes back from the device: at most 8 files, the table and the phases among them, every log in the tarball
    assert sorted(p.name for p in out.iterdir()) == ["logs.tar.gz", "phases.txt", "summary.md"]
    with tarfile.open(out / "logs.tar.gz") as archive:
        assert {"./ner_pretrained.txt", "./sst2_random.txt", "./quality_summary.json"} <= set(archive.getnames())
    table = (out / "summary.md").read_text(encoding="utf-8").splitlines()
    assert len(table) == 2 + len(GOALS)  # header, rule, one row per goal
    for goal, row in zip(GOALS, table[2:]):
        assert row.startswith(f"| {goal.name} | {goal.shown_target} | ") and "not measured" not in row, row
    small = json.loads((raw / "throughput_small.json").read_text(encoding="utf-8"))
    if phases["throughput_small"].startswith("exit 124"):  # killed by its limit: the partial table stands
        assert "compiled" not in small and "compiled: not finished" in table[2]
        assert "speedup:" in (raw / "throughput_small.txt").read_text(encoding="utf-8")
    else:
        assert "compiled" in small

    summary = json.loads((raw / "quality_summary.json").read_text(encoding="utf-8"))
    assert summary["budget_minutes"] > 0 and summary["steps"] >= 1
    assert {"rtd_recall", "rtd_auc", "mlm_accuracy_masked"} <= set(summary["held_out"])
    assert "heldout_mlm_loss" in summary["final_train_window"]
    for init in ("pretrained", "random"):
        assert "test entity F1:" in (raw / f"ner_{init}.txt").read_text(encoding="utf-8")
        assert "dev accuracy:" in (raw / f"sst2_{init}.txt").read_text(encoding="utf-8")
    assert "speedup:" in (raw / "throughput_base.txt").read_text(encoding="utf-8")
