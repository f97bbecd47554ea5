"""Which pretraining recipe leaves the masked-LM plateau: arms of one preset's shape at equal tokens, one knob each.

    nice -n 10 python benchmarks/pretrain_recipe.py --corpus ../shared/data/corpus/wiki_en_train_00.txt.gz \\
        --out /tmp/recipe --tokens 1500000 --arms baseline dropout0 init_width lr3e-3 warmup_short warmup_long \\
        curriculum generator_half mlm_only

Every arm starts from ``--preset`` (default ``tiny_cpu_hour``) as params.yaml gives it and changes the keys in
:data:`ARMS`; ``--combine A B`` adds an arm ``combined`` with the keys of arms A and B together. The arms share one
process, one thread, the tokenizer (a cased WordPiece trained the project's way on the corpus's first paragraphs),
the token stream, the held-out tail (:func:`electra_model.pretraining.heldout.split_heldout`, masked with its fixed
seed) and the schedule's length: ``--tokens`` / (batch x max_seq_len) steps, the lr reaching 0 at the end. They
train in turns of ``--turn`` steps each, so a machine shared with other work slows all of them alike, and the
tokens/s ratio against ``baseline`` (CPU time of the arm's own steps, held-out evaluation excluded) is measured side
by side; a second table reads each arm's held-out loss at equal training CPU time. At ``--checkpoints`` equal
token counts each arm's held-out masked-LM loss and top-1 accuracy are scored
(the generator's, or the MLM-only encoder's) with the pretrain stage's own code, and read against the stream's
bigram entropy: a loss above it means the model has not yet learned word order. Choose on this held-out loss,
never on a task's test split. Written under ``--out``: the tokenizer, the token stream and ``results.json``; the
last lines printed are the markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from electra_model.config import PretrainParams, load_params, load_section
from electra_model.data.blocks import PackedBlocks, cached_token_stream
from electra_model.data.entropy import cached_token_entropies
from electra_model.data.tokenizer import DOCUMENT_BREAK, paragraphs_with_breaks, special_token_ids, train_wordpiece
from electra_model.io import write_json
from electra_model.pretraining.heldout import HeldOutSet, split_heldout
from electra_model.pretraining.loop import RunningStats, Trainer, objective_metrics
from electra_model.pretraining.modeling import UNMASKABLE
from electra_model.training import Distributed

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"
PARAMS = load_params(PARAMS_FILE)
"""params.yaml: the flags' defaults, and every key an arm does not change."""
WARMUP_FRACTION = "warmup_fraction"  # an arm's warmup as a share of the steps, turned into warmup_steps

ARMS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "dropout0": {"dropout": 0.0},
    "init_width": {"init_scale": "width"},
    "lr3e-3": {"learning_rate": 3e-3},
    "warmup_short": {WARMUP_FRACTION: 0.02},
    "warmup_long": {WARMUP_FRACTION: 0.3},
    "curriculum": {"short_seq_len": 64, "short_seq_fraction": 0.5},
    "generator_half": {"presets.{preset}.generator_fraction": 0.5},
    "mlm_only": {"objective": "mlm"},
    "preln": {"backbone": "roberta_prelayernorm"},
    "old_cpu_hour": {"learning_rate": 1e-3, WARMUP_FRACTION: 0.1, "dropout": 0.1, "short_seq_fraction": 0.0},
}
"""Pretrain keys each arm changes against the preset (``{preset}`` in a key is the preset's name); ``old_cpu_hour`` is
``tiny_cpu_hour`` as it was before benchmarks/RESULTS.md's recipe screen chose its present values."""


def paragraphs(path: Path) -> Iterator[str]:
    """The file's paragraphs with a document break between documents, as the pretrain stage reads its corpus."""
    return paragraphs_with_breaks([file_lines(path)])


def file_lines(path: Path) -> Iterator[str]:
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as f:
        yield from f


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="training text, one paragraph a line (.txt[.gz])")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", default="tiny_cpu_hour", help="a name in pretrain.presets")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--combine", nargs="+", default=[], choices=list(ARMS),
                        help="also train an arm 'combined' with these arms' keys together")
    parser.add_argument("--tokens", type=int, required=True, help="training tokens per arm (sets the schedule)")
    parser.add_argument("--checkpoints", type=int, default=4, help="held-out evaluations, at equal token counts")
    parser.add_argument("--turn", type=int, default=10, help="steps an arm trains before the next arm's turn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[PARAMS.seed])
    parser.add_argument("--tokenizer-lines", type=int, default=100_000)
    return parser.parse_args()


def arm_params(keys: dict[str, Any], preset: str, tokens: int) -> PretrainParams:
    """params.yaml's pretrain section under ``preset`` with the arm's keys, its step count fitted to ``tokens`` and
    warmup keeping the preset's share of the steps (or the arm's ``warmup_fraction``)."""
    chosen = load_section("pretrain", PARAMS_FILE, {"preset": preset})
    steps = max(1, tokens // (chosen.batch_size * chosen.max_seq_len))
    warmup = keys.get(WARMUP_FRACTION, chosen.warmup_steps / chosen.max_steps)
    overrides = {"preset": preset, "max_steps": steps, "warmup_steps": max(1, round(warmup * steps)),
                 "budget_minutes": None, "log_every": 1, "eval_every": 1, "checkpoint_every": 1, "device": "cpu"}
    overrides.update({key.format(preset=preset): value for key, value in keys.items() if key != WARMUP_FRACTION})
    return load_section("pretrain", PARAMS_FILE, overrides)


@dataclass
class Arm:
    """One arm and seed in training: its trainer, CPU seconds of its own steps, and its held-out figures."""

    name: str
    seed: int
    trainer: Trainer
    heldout: HeldOutSet
    cpu_s: float = 0.0
    evaluations: list[dict[str, float]] = field(default_factory=list)
    last_window: dict[str, float] = field(default_factory=dict)

    def train(self, steps: int) -> None:
        stats = RunningStats.zeros(self.trainer.device)
        started = time.process_time()
        for _ in range(steps):
            self.trainer.train_step(self.trainer.model, stats)
        self.last_window = objective_metrics(stats.summary(Distributed()), self.trainer.params.objective)
        self.cpu_s += time.process_time() - started
        self.trainer.stop_if_diverged(self.last_window["loss"], self.trainer.step - steps + 1)

    def evaluate(self) -> None:
        figures = self.heldout.evaluate(self.trainer.model, self.trainer.autocast)
        self.evaluations.append({"step": self.trainer.step, "cpu_s": self.cpu_s, **figures})


def markdown_table(results: dict[str, Any]) -> str:
    """Arm, held-out MLM loss at each checkpoint (mean ± std over seeds), final accuracy, gap to bigram entropy,
    final RTD recall/AUC, tokens/s against baseline."""
    tokens_per_step = results["tokens_per_step"]
    head = [f"loss @{s * tokens_per_step / 1e6:.2f}M" for s in results["checkpoint_steps"]]
    lines = ["| arm | " + " | ".join(head) + " | accuracy | gap to bigram | RTD recall / AUC | tokens/s vs baseline |",
             "| --- |" + " ---: |" * (len(head) + 4)]
    base_cpu = statistics.mean(run["cpu_s"] for run in results["arms"]["baseline"]) if "baseline" in results["arms"] else None

    def spread(values: list[float], digits: int = 3) -> str:
        return f"{statistics.mean(values):.{digits}f}" + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")

    for name, runs in results["arms"].items():
        losses = [spread([run["evaluations"][i]["heldout_mlm_loss"] for run in runs]) for i in range(len(head))]
        final = [run["evaluations"][-1] for run in runs]
        accuracy = spread([f["heldout_mlm_accuracy"] for f in final])
        gap = spread([f["heldout_mlm_loss"] - results["bigram_entropy"] for f in final])
        rtd = ("-" if "rtd_recall" not in runs[0]["last_window"] else
               f"{statistics.mean(r['last_window']['rtd_recall'] for r in runs):.3f} / "
               f"{statistics.mean(r['last_window']['rtd_auc'] for r in runs):.3f}")
        ratio = "-" if base_cpu is None else f"{base_cpu / statistics.mean(run['cpu_s'] for run in runs):.2f}x"
        lines.append(f"| {name} | " + " | ".join(losses) + f" | {accuracy} | {gap} | {rtd} | {ratio} |")
    return "\n".join(lines)


def equal_time_table(results: dict[str, Any]) -> str:
    """Held-out MLM loss at equal training CPU time: at each of the baseline's checkpoint times, every arm's loss
    interpolated linearly between its own checkpoints (mean over seeds; '-' past an arm's last one). The arms share
    one schedule of steps, so an arm that is slower per token is read earlier on its curve, not given a schedule
    fitted to the time."""
    arms = results["arms"]
    if "baseline" not in arms:
        return ""

    def curve(runs: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
        count = len(runs[0]["evaluations"])
        return ([statistics.mean(run["evaluations"][i]["cpu_s"] for run in runs) for i in range(count)],
                [statistics.mean(run["evaluations"][i]["heldout_mlm_loss"] for run in runs) for i in range(count)])

    times = curve(arms["baseline"])[0]
    lines = ["| arm | " + " | ".join(f"loss @{t / 60:.1f} CPU-min" for t in times) + " |",
             "| --- |" + " ---: |" * len(times)]
    for name, runs in arms.items():
        seconds, losses = curve(runs)
        cells = [f"{float(np.interp(t, seconds, losses)):.3f}" if t <= seconds[-1] else "-" for t in times]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer_file = args.out / "tokenizer.json"
    if tokenizer_file.is_file():
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    else:
        texts = (line for line in paragraphs(args.corpus) if line != DOCUMENT_BREAK)
        tokenizer = train_wordpiece(islice(texts, args.tokenizer_lines), PARAMS.tokenizer.vocab_size,
                                    PARAMS.tokenizer.min_frequency, PARAMS.tokenizer.lowercase)
        partial = tokenizer_file.with_suffix(".partial")
        tokenizer.save(str(partial))
        partial.replace(tokenizer_file)  # atomic: an interrupted run leaves no half-written tokenizer to reuse
    stream = cached_token_stream(tokenizer, lambda: paragraphs(args.corpus), args.out / "tokens")
    special = special_token_ids(tokenizer)
    entropies = cached_token_entropies(stream, tokenizer.get_vocab_size(), [special[t] for t in UNMASKABLE],
                                       args.out / "tokens")

    arms_keys = {name: ARMS[name] for name in args.arms}
    if args.combine:
        arms_keys["combined"] = {key: value for name in args.combine for key, value in ARMS[name].items()}
    arms: list[Arm] = []
    for name, keys in arms_keys.items():
        params = arm_params(keys, args.preset, args.tokens)
        blocks = PackedBlocks.for_tokenizer(stream, tokenizer, params.max_seq_len)
        train_blocks, heldout_blocks = split_heldout(blocks, params.eval_blocks)
        for seed in args.seeds:
            trainer = Trainer(params, seed, tokenizer, train_blocks, Distributed())
            trainer.model.train()
            arms.append(Arm(name, seed, trainer, trainer.heldout_set(heldout_blocks)))
    max_steps = arms[0].trainer.params.max_steps
    checkpoints = sorted({round(max_steps * (i + 1) / args.checkpoints) for i in range(args.checkpoints)})
    print(f"{len(stream):,} tokens in the stream; {len(arms)} runs of {max_steps} steps; held-out evaluations at "
          f"steps {checkpoints}; bigram entropy {entropies['bigram_entropy']:.3f}", flush=True)

    while arms[0].trainer.step < max_steps:
        start = arms[0].trainer.step
        stop = min(max_steps, start + args.turn, next(c for c in checkpoints if c > start))
        for arm in arms:
            arm.train(stop - start)
            if stop in checkpoints:
                arm.evaluate()
        if stop in checkpoints:
            print(f"step {stop}: " + ", ".join(
                f"{a.name}/{a.seed} {a.evaluations[-1]['heldout_mlm_loss']:.3f}" for a in arms), flush=True)
            # rewritten at every checkpoint, so a run stopped early keeps the table up to its last one
            results = collect(args, arms, list(arms_keys), [c for c in checkpoints if c <= stop], entropies)
            write_json(args.out / "results.json", results)
    print(markdown_table(results))
    print(equal_time_table(results))


def collect(args: argparse.Namespace, arms: list[Arm], names: list[str], checkpoints: list[int],
            entropies: dict[str, float]) -> dict[str, Any]:
    """Everything the table is made of, per arm and seed, up to the last checkpoint reached."""
    params = arms[0].trainer.params
    return {
        "command_args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "preset": args.preset, "tokens_per_step": params.batch_size * params.max_seq_len,
        "max_steps": params.max_steps, "checkpoint_steps": checkpoints, **entropies,
        "arms": {name: [{"seed": a.seed, "cpu_s": a.cpu_s, "evaluations": a.evaluations, "last_window": a.last_window,
                         "params": a.trainer.params.model_dump(exclude={"presets"})}
                        for a in arms if a.name == name] for name in names},
    }


if __name__ == "__main__":
    main()
