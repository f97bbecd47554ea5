"""Pretraining as real processes: a run killed with SIGKILL resumes onto the exact loss trajectory of an
uninterrupted run, and ``torchrun --nproc_per_node 2`` (gloo, CPU) matches one process on the same global batch.

Run as a script, this file is the worker those tests start::

    python tests/integration/test_pretrain_processes.py WORK_DIR RUN_NAME [--accum K] [--steps N]
        [--parallel ddp|fsdp] [--stall-at STEP]

(``--stall-at``: rank 0 writes RUN_NAME.stalled and sleeps at that logging step, before its checkpoint, so a test can
kill a worker between two checkpoints; once only: a restarted attempt finds the file and goes on. Not the restart
count: an agent whose own worker did not fail restarts it without counting.)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve()
COMPARED = ("loss", "mlm_loss", "rtd_loss", "mlm_accuracy", "rtd_accuracy", "rtd_precision", "rtd_recall", "learning_rate")


def worker() -> None:
    """Pretrain the tiny preset on the demo corpus; append each logged step to RUN_NAME.jsonl."""
    import torch
    from tokenizers import Tokenizer

    from electra_model.config import load_params
    from electra_model.data.blocks import pack_blocks
    from electra_model.data.demo import demo_corpus
    from electra_model.pretraining.loop import pretrain
    from electra_model.training import close_distributed

    parser = argparse.ArgumentParser()
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("run_name")
    parser.add_argument("--accum", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--parallel", default="ddp")
    parser.add_argument("--stall-at", type=int, default=0)
    args = parser.parse_args()
    rank, attempt = os.environ.get("RANK", "0"), os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")  # per agent
    (args.work_dir / f"{args.run_name}-rank{rank}-attempt{attempt}.pid").write_text(str(os.getpid()))
    torch.set_num_threads(1)  # runs share the CI machine's two cores; the same thread count keeps them bitwise equal
    tokenizer = Tokenizer.from_file(str(args.work_dir / "tokenizer.json"))
    blocks = pack_blocks(tokenizer, demo_corpus(30, seed=1), max_seq_len=32)
    params = load_params(REPO / "params.yaml").pretrain.model_copy(
        update={"max_steps": args.steps, "batch_size": 8, "grad_accum_steps": args.accum, "max_seq_len": 32,
                "warmup_steps": 4, "log_every": 5, "checkpoint_every": 5, "device": "cpu",
                "parallel": args.parallel}
    )
    log_path = args.work_dir / f"{args.run_name}.jsonl"

    def on_log(step: int, metrics: dict[str, float]) -> None:
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")
        stalled = args.work_dir / f"{args.run_name}.stalled"
        if step == args.stall_at and not stalled.exists():
            stalled.touch()
            time.sleep(300)

    pretrain(params, 11, tokenizer, blocks, on_log, checkpoint_dir=args.work_dir / f"{args.run_name}-checkpoints")
    close_distributed()


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    from electra_model.data.demo import demo_corpus
    from electra_model.data.tokenizer import train_wordpiece

    root = tmp_path_factory.mktemp("pretrain-processes")
    train_wordpiece(demo_corpus(30, seed=1), vocab_size=600, min_frequency=2, lowercase=False).save(str(root / "tokenizer.json"))
    return root


def start(work_dir: Path, run_name: str, *extra: str, launcher: tuple[str, ...] = (),
          env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    command = [*(launcher or (sys.executable,)), str(WORKER), str(work_dir), run_name, *extra]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    """The run's output once it ends; a run still going after ``timeout`` is killed and its output shown."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"still running after {timeout:.0f} s; its output:\n{output}") from None
    assert process.returncode == 0, output
    return output


def logged(work_dir: Path, run_name: str) -> list[dict]:
    lines = (work_dir / f"{run_name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def trajectory(rows: list[dict]) -> list[tuple]:
    return [(row["step"], *(row[key] for key in COMPARED)) for row in rows]


def wait_for_checkpoint(directory: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not any(directory.glob("step-*")):
        assert process.poll() is None, "the run ended before writing a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)


def test_sigkilled_run_resumes_onto_the_uninterrupted_trajectory(work_dir):
    uninterrupted = start(work_dir, "whole")
    victim = start(work_dir, "killed")
    wait_for_checkpoint(work_dir / "killed-checkpoints", victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    before_kill = logged(work_dir, "killed")
    assert before_kill[-1]["step"] < 20, "the kill came too late to interrupt training"

    output = finish(start(work_dir, "killed"))
    assert "resumed from" in output and "at step" in output
    finish(uninterrupted)
    whole = trajectory(logged(work_dir, "whole"))
    resumed_run = trajectory(logged(work_dir, "killed")[len(before_kill) :])
    assert [row[0] for row in whole] == [5, 10, 15, 20]
    assert resumed_run == whole  # every step, bit for bit: replayed history, then the continued training


def test_torchrun_two_ranks_match_one_process_on_the_same_global_batch(work_dir):
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    # Global batch 8 as 2 shards of 4: one rank x 2 micro-batches, or two ranks x 1. Same blocks, same noise.
    single = start(work_dir, "single", "--accum", "2", "--steps", "10")
    ranks = start(work_dir, "ddp", "--accum", "1", "--steps", "10", launcher=torchrun)
    finish(single)
    finish(ranks)
    one, two = logged(work_dir, "single"), logged(work_dir, "ddp")
    assert [row["step"] for row in two] == [5, 10]  # only rank 0 logs
    for a, b in zip(one, two):
        for key in COMPARED:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key


if __name__ == "__main__":
    worker()
