"""SST-2 sentence classification, one arm (an initialisation), every choice made on a held-out slice of train.

Reads GLUE SST-2 in place (``label<TAB>sentence``, train and dev). A fixed ``--holdout-fraction`` of train (drawn
with ``--holdout-seed``, the same slice for every arm and seed) is held out: it early-stops each run (the best epoch
is kept) and picks the learning rate from ``--learning-rates`` with the first seed; every other seed then trains at
that rate. Dev is scored once per final model and never read to choose anything -- it is the split the GLUE papers
report. ``--train-limit`` caps the training rows (after the hold-out) for a short budget. Fine-tuning is the
library's (:func:`electra_model.tasks.classification.train.finetune_classifier`)::

    OMP_NUM_THREADS=1 python benchmarks/sst2_classification.py --init random --model-dir PRETRAINED_DIR \\
        --learning-rates 3e-4 1e-3 --seeds 1 2 3 --epochs 2 --out /tmp/sst2/random
    OMP_NUM_THREADS=1 python benchmarks/sst2_classification.py --init pretrained --model-dir PRETRAINED_DIR \\
        --learning-rates 3e-4 1e-3 --seeds 1 2 3 --epochs 2 --out /tmp/sst2/pretrained

``--init random`` takes the shape and tokenizer of ``--model-dir`` and none of its weights; ``--init`` also takes a
checkpoint directory or a Hugging Face model id (its own tokenizer is used). Written under ``--out`` (keep it outside
the repository): ``summary.json``. The last line printed is ``dev accuracy: MEAN ± STD over N seeds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from electra_model.config import ClassificationParams, FinetuneParams, load_section
from electra_model.tasks.classification.data import TextExample, read_file
from electra_model.tasks.classification.train import evaluate_split, finetune_classifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"
PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"
TASK: ClassificationParams = load_section("classification", PARAMS_FILE)
"""params.yaml's classification section: SST-2's columns, sentence and label."""
RECIPE: FinetuneParams = load_section("finetune", PARAMS_FILE)
"""params.yaml's fine-tuning recipe: the flags' defaults, and every key no flag names."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", required=True, help="random | pretrained | a checkpoint directory | a hub id")
    parser.add_argument("--model-dir", type=Path, required=True, help="our pretrained discriminator (shape, tokenizer)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train.tsv.gz and dev.tsv.gz")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[RECIPE.learning_rate])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=RECIPE.epochs)
    parser.add_argument("--patience", type=int, default=RECIPE.patience)
    parser.add_argument("--batch-size", type=int, default=RECIPE.batch_size)
    parser.add_argument("--layer-lr-decay", type=float, default=RECIPE.layer_lr_decay)
    parser.add_argument("--warmup-ratio", type=float, default=RECIPE.warmup_ratio)
    parser.add_argument("--max-seq-len", type=int, default=RECIPE.max_seq_len)
    parser.add_argument("--holdout-fraction", type=float, default=0.05)
    parser.add_argument("--holdout-seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=None, help="cap on training rows after the hold-out")
    parser.add_argument("--device", default=RECIPE.device, help="auto | cpu | cuda")
    return parser.parse_args()


def split_train(
    examples: list[TextExample], fraction: float, seed: int, limit: int | None
) -> tuple[list[TextExample], list[TextExample]]:
    """(train, held-out): a fixed random slice of train held out for every choice; dev stays untouched."""
    order = np.random.default_rng(seed).permutation(len(examples))
    held = round(fraction * len(examples))
    train = [examples[i] for i in order[held:]]
    return train[:limit] if limit else train, [examples[i] for i in order[:held]]


def finetune_params(**keys: Any) -> FinetuneParams:
    """params.yaml's finetune section with this run's keys (a benchmark names its own model, so the check against
    the pretrain section's length does not apply)."""
    return load_section("finetune", PARAMS_FILE, keys)


def one_run(args: argparse.Namespace, learning_rate: float, seed: int, train: list, held: list) -> tuple[Any, dict]:
    params = finetune_params(
        init=args.init, max_seq_len=args.max_seq_len, batch_size=args.batch_size, epochs=args.epochs,
        learning_rate=learning_rate, layer_lr_decay=args.layer_lr_decay, warmup_ratio=args.warmup_ratio,
        patience=args.patience, device=args.device,
    )
    started = time.monotonic()
    model, tokenizer, summary = finetune_classifier(params, TASK, seed, args.model_dir, train, held, lambda s, m: None)
    run = {"learning_rate": learning_rate, "seed": seed, "held_out_accuracy": summary["best_valid_accuracy"],
           "best_epoch": summary["best_epoch"], "epochs_run": summary["epochs_run"], "steps": summary["steps"],
           "minutes": round((time.monotonic() - started) / 60, 2)}
    return (model, tokenizer), run


def score_dev(args: argparse.Namespace, trained: tuple[Any, Any], dev: list, run: dict) -> dict:
    model, tokenizer = trained
    scores, _ = evaluate_split(model, tokenizer, dev, args.max_seq_len, args.batch_size * 2)
    return {**run, "dev_accuracy": scores["accuracy"], "dev_macro_f1": scores["macro_f1"]}


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    all_train = read_file(args.data / "train.tsv.gz", TASK)
    dev = read_file(args.data / "dev.tsv.gz", TASK)
    train, held = split_train(all_train, args.holdout_fraction, args.holdout_seed, args.train_limit)
    print(f"train {len(train)}, held out {len(held)} (of {len(all_train)}), dev {len(dev)}", flush=True)

    first, *others = args.seeds
    grid = []
    for learning_rate in args.learning_rates:  # the rate is chosen on the held-out slice, first seed only
        trained, run = one_run(args, learning_rate, first, train, held)
        print(json.dumps(run), flush=True)
        grid.append((run["held_out_accuracy"], trained, run))
    _, trained, chosen = max(grid, key=lambda entry: entry[0])
    runs = [score_dev(args, trained, dev, chosen)]
    print(json.dumps(runs[-1]), flush=True)
    for seed in others:
        trained, run = one_run(args, chosen["learning_rate"], seed, train, held)
        runs.append(score_dev(args, trained, dev, run))
        print(json.dumps(runs[-1]), flush=True)

    accuracy = mean_std([run["dev_accuracy"] for run in runs])
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "sizes": {"train": len(train), "held_out": len(held),
               "dev": len(dev)}, "grid": [run for _, _, run in grid], "runs": runs, "dev_accuracy": accuracy}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print("| lr | seed | held-out acc | best epoch | dev acc | dev macro-F1 | minutes |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        print(f"| {run['learning_rate']:g} | {run['seed']} | {100 * run['held_out_accuracy']:.2f} | {run['best_epoch']} "
              f"| {100 * run['dev_accuracy']:.2f} | {100 * run['dev_macro_f1']:.2f} | {run['minutes']} |")
    print(f"dev accuracy: {100 * accuracy['mean']:.2f} ± {100 * accuracy['std']:.2f} over {len(runs)} seeds")


if __name__ == "__main__":
    main()
