"""Memory per rank of FSDP2 against DDP for a preset's shape (base by default), on 2 gloo ranks on CPU.

    python benchmarks/fsdp_memory.py --corpus ../shared/data/corpus/sample.txt.gz [--preset base] [--steps 3]

Without torchrun's environment it launches itself once per ``pretrain.parallel`` (ddp, fsdp) under
``torchrun --standalone --nproc-per-node 2`` and prints one table. Each rank runs ``--steps`` steps of
``Trainer.train_step`` (the pretrain stage's step: generator + discriminator, shared embeddings, AdamW, clipping)
at 1 sequence of 128 tokens per rank, then reports what it holds: its parameters, its AdamW moments, and its
peak resident memory. The vocabulary is BERT's size (30,522 WordPiece tokens trained on ``--corpus``), so the
embeddings weigh what they would in a real base run. Peak RSS includes the whole model each rank first builds
from the seed before FSDP keeps its shard (so every rank starts from the same weights); the held figures are what
scales with the number of ranks.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

VOCAB = 30522
SEQ_LEN = 128
MODES = ("ddp", "fsdp")


def local_bytes(tensors) -> int:
    """Bytes this rank holds of ``tensors`` (its shard of a DTensor)."""
    total = 0
    for tensor in tensors:
        local = tensor.to_local() if isinstance(tensor, DTensor) else tensor
        total += local.numel() * local.element_size()
    return total


def measure(args: argparse.Namespace) -> None:
    """One rank of one mode: train a few steps, write this rank's figures as JSON."""
    from tokenizers import Tokenizer

    from electra_model.config import load_params
    from electra_model.data.blocks import pack_blocks
    from electra_model.pretraining.loop import RunningStats, Trainer, prepare_model
    from electra_model.training import close_distributed, init_distributed

    torch.set_num_threads(1)
    tokenizer = Tokenizer.from_file(str(args.work_dir / "tokenizer.json"))
    with gzip.open(args.corpus, "rt", encoding="utf-8") as handle:
        blocks = pack_blocks(tokenizer, islice(handle, 2000), max_seq_len=SEQ_LEN)
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml", {"pretrain.preset": args.preset}).pretrain
    params = params.model_copy(update={"batch_size": 2, "max_seq_len": SEQ_LEN, "grad_accum_steps": 1, "device": "cpu",
                                       "parallel": args.parallel, "compile": False})
    context = init_distributed("cpu")
    trainer = Trainer(params, 0, tokenizer, blocks, context)
    model = prepare_model(trainer, context)
    stats = RunningStats.zeros(trainer.device)
    started = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step(model, stats)
    seconds = (time.perf_counter() - started) / args.steps
    summary = stats.summary(context)
    moments = [value for slots in trainer.optimizer.state.values() for value in slots.values() if value.ndim > 0]
    row = {
        "parallel": args.parallel,
        "rank": context.rank,
        "parameters": sum(p.numel() for p in trainer.model.parameters() if not isinstance(p, DTensor))
        + sum(p.to_local().numel() for p in trainer.model.parameters() if isinstance(p, DTensor)),
        "param_mb": local_bytes(trainer.model.parameters()) / 2**20,
        "adam_mb": local_bytes(moments) / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "step_s": seconds,
        "loss": summary["loss"],
    }
    (args.work_dir / f"{args.parallel}-{context.rank}.json").write_text(json.dumps(row))
    close_distributed()


def launch(args: argparse.Namespace) -> None:
    """Train the tokenizer once, run both modes under torchrun, print the table."""
    from electra_model.data.tokenizer import train_wordpiece

    with tempfile.TemporaryDirectory() as tmp:
        work_dir = Path(tmp)
        with gzip.open(args.corpus, "rt", encoding="utf-8") as handle:
            lines = list(islice(handle, 20000))
        train_wordpiece(lines, vocab_size=VOCAB, min_frequency=2, lowercase=False).save(str(work_dir / "tokenizer.json"))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        for mode in MODES:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                       __file__, "--corpus", str(args.corpus), "--preset", args.preset, "--steps", str(args.steps),
                       "--parallel", mode, "--work-dir", str(work_dir)]
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        rows = [json.loads(path.read_text()) for path in sorted(work_dir.glob("*-*.json"))]
    print(f"preset {args.preset}, vocabulary {VOCAB}, 2 gloo ranks on CPU, 1 x {SEQ_LEN} tokens per rank, {args.steps} steps")
    print("| parallel | rank | parameters held | params MB | AdamW moments MB | peak RSS MB | s/step | loss |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['parallel']} | {row['rank']} | {row['parameters']:,} | {row['param_mb']:.0f} | {row['adam_mb']:.0f} "
              f"| {row['peak_rss_mb']:.0f} | {row['step_s']:.2f} | {row['loss']:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="a gzip text file (one paragraph a line)")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--parallel", choices=MODES, help="(set by the launcher) the mode this rank measures")
    parser.add_argument("--work-dir", type=Path, help="(set by the launcher) where the tokenizer and results are")
    args = parser.parse_args()
    if "WORLD_SIZE" in os.environ:
        measure(args)
    else:
        launch(args)


if __name__ == "__main__":
    main()
