"""Pretraining past one process group: two torchrun agents as two nodes meeting at a c10d rendezvous, and FSDP2
against DDP, each with an elastic restart that resumes from the run's checkpoint after one worker is SIGKILLed.

The runs are the worker of ``test_pretrain_processes.py`` (the tiny preset on the demo corpus, gloo on CPU). The
two "nodes" get separate work directories, standing in for machines without a shared filesystem: rank 0 alone
writes and reads checkpoints (the others receive the state by broadcast), so only its directory holds any.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_pretrain_processes import COMPARED, finish, logged, start

pytestmark = [pytest.mark.e2e, pytest.mark.distributed]
TORCHRUN = (sys.executable, "-m", "torch.distributed.run")


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory) -> Path:
    from electra_model.data.demo import demo_corpus
    from electra_model.data.tokenizer import train_wordpiece

    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    train_wordpiece(demo_corpus(30, seed=1), vocab_size=600, min_frequency=2, lowercase=False).save(str(path))
    return path


def work_dir(root: Path, name: str, tokenizer_file: Path) -> Path:
    directory = root / name
    directory.mkdir()
    shutil.copy(tokenizer_file, directory / "tokenizer.json")
    return directory


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def kill_a_worker_when_stalled(directories: list[Path], run_name: str, agents: list, timeout: float = 240) -> None:
    """Wait until rank 0 stalls between checkpoints 5 and 10 (``--stall-at 10``), then SIGKILL rank 1's worker."""
    deadline = time.monotonic() + timeout
    while not any((d / f"{run_name}.stalled").exists() for d in directories):
        assert all(agent.poll() is None for agent in agents), "an agent ended before the stall"
        assert time.monotonic() < deadline, "rank 0 never reached the stall"
        time.sleep(0.1)
    (pid_file,) = [p for d in directories for p in d.glob(f"{run_name}-rank1-attempt0.pid")]
    os.kill(int(pid_file.read_text()), signal.SIGKILL)


def assert_same_losses(reference: list[dict], rows: list[dict]) -> None:
    assert [row["step"] for row in rows] == [row["step"] for row in reference]
    for a, b in zip(reference, rows):
        for key in COMPARED:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["step"], key)


def after_resume(rows: list[dict]) -> list[dict]:
    """A restarted job's log: the rows before the kill, then the replayed history and the continued training;
    the rows of the attempt that ended up on record are those from the second occurrence of the first step."""
    second = next(i for i in range(1, len(rows)) if rows[i]["step"] == rows[0]["step"])
    return rows[second:]


@pytest.mark.timeout(300)
def test_two_nodes_through_c10d_match_one_process_and_survive_a_killed_worker(tmp_path, tokenizer_file):
    single_dir = work_dir(tmp_path, "single", tokenizer_file)
    nodes = [work_dir(tmp_path, f"node{n}", tokenizer_file) for n in (0, 1)]
    # One restart, for the killed worker. TORCH_DISABLE_SHARE_RDZV_TCP_STORE gives each attempt a fresh store, so
    # no restarted rank reads the killed attempt's gloo address (electra_model.training.attempt_store).
    rendezvous = (
        "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "multinode-test", "--max-restarts", "1",
    )
    # Global batch 8: one process x 2 micro-batches, or two nodes x one rank x 1.
    single = start(single_dir, "run", "--accum", "2", "--steps", "15")
    agents = [
        start(node, "run", "--accum", "1", "--steps", "15", "--stall-at", "10", launcher=(*TORCHRUN, *rendezvous),
              env={"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"})
        for node in nodes
    ]
    kill_a_worker_when_stalled(nodes, "run", agents)
    outputs = [finish(agent, timeout=240) for agent in agents]
    finish(single)

    (main_dir,) = [node for node in nodes if (node / "run-checkpoints").exists()]  # rank 0's node alone writes
    assert not (nodes[1 - nodes.index(main_dir)] / "run.jsonl").exists()
    combined = "\n".join(outputs)
    # steps 5 (first attempt), 10 and 15 (after the restart), each written once, by rank 0, the newest 2 kept
    assert combined.count("checkpoint ") == combined.count(f"checkpoint {main_dir}") == 3, combined
    assert combined.count("resumed from") == 1 and "at step 5" in combined
    assert sorted(p.name for p in (main_dir / "run-checkpoints").iterdir()) == ["step-00000010", "step-00000015"]
    assert_same_losses(logged(single_dir, "run"), after_resume(logged(main_dir, "run")))


@pytest.mark.timeout(300)
def test_fsdp_matches_ddp_and_resumes_from_its_own_checkpoint(tmp_path, tokenizer_file):
    ddp_dir, fsdp_dir = work_dir(tmp_path, "ddp", tokenizer_file), work_dir(tmp_path, "fsdp", tokenizer_file)
    standalone = (*TORCHRUN, "--standalone", "--nproc-per-node", "2")
    ddp = start(ddp_dir, "run", "--steps", "15", launcher=standalone)
    fsdp = start(
        fsdp_dir, "run", "--steps", "15", "--parallel", "fsdp", "--stall-at", "10",
        launcher=(*standalone, "--max-restarts", "1"),
    )
    kill_a_worker_when_stalled([fsdp_dir], "run", [fsdp])
    output = finish(fsdp, timeout=240)
    finish(ddp, timeout=240)
    assert "resumed from" in output and "at step 5" in output
    assert_same_losses(logged(ddp_dir, "run"), after_resume(logged(fsdp_dir, "run")))
    # the gathered checkpoint is the single-process format: the shared embeddings stored once
    from safetensors import safe_open

    with safe_open(str(fsdp_dir / "run-checkpoints" / "step-00000015" / "model.safetensors"), "pt") as handle:
        names = set(handle.keys())
    assert "discriminator.electra.embeddings.word_embeddings.weight" in names
    assert not {"generator.generator_lm_head.weight", "generator.electra.embeddings.word_embeddings.weight"} & names
