"""Active learning on CoNLL-2003 with a simulated annotator: uncertainty selection against random selection.

Each seed starts from the same random seed set of the pool for both arms. The random arm then labels the pool in a
random order; the uncertainty arm fine-tunes, exports the model to ONNX with the pipeline's exporter, scores the rest
of the pool with the torch-free selection code that ``electra select`` runs (:mod:`electra_model.client.selection`,
the CRF-marginal measure, on the exported model through onnxruntime), and has the most uncertain sentences
"annotated" (their gold tags revealed) up to the next size. Every model is fine-tuned by the project's NER code path
(:func:`electra_model.tasks.ner.finetune.finetune`, CRF head, params.yaml's recipe with the overrides below) and
scored by entity F1 on the VALID split; test is never read::

    python benchmarks/active_learning.py --out /tmp/active_learning

Each seed's runs are kept in ``--out/rows-seedN.json`` and read back instead of re-run, so seeds may run as separate
processes (``--seeds 3`` beside ``--seeds 1 2``) and a last call with all seeds writes the table.

CPU budget (2 shared cores, one thread): the model is a small ELECTRA initialised at random (no pretrained
checkpoint is available offline; ``--hidden`` etc.), with a WordPiece vocabulary trained on the pool's own words,
and the pool is ``--pool`` sentences drawn from train. Written: ``benchmarks/active_learning.csv`` (every run),
``benchmarks/active_learning_curve.csv`` (mean per size and arm, the DVC plot ``active_learning_f1``) and the
markdown table on stdout. Data are read in place from ``--data`` and never copied.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import ElectraConfig

from electra_model.client.ner import NerPredictor
from electra_model.client.selection import score_word_sentences
from electra_model.config import FinetuneParams, load_section
from electra_model.data.tokenizer import as_transformers_tokenizer, train_wordpiece
from electra_model.export.build import export_onnx
from electra_model.io import atomic_file
from electra_model.tasks.ner.conll import Sentence, read_conll
from electra_model.tasks.ner.finetune import finetune

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "conll2003"
PARAMS_FILE = ROOT / "params.yaml"
ARMS = ("random", "uncertainty")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, required=True, help="scratch folder for models (outside the repository)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 1200, 2000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pool", type=int, default=5000, help="sentences of train that form the unlabelled pool")
    parser.add_argument("--pool-seed", type=int, default=0)
    parser.add_argument("--valid", type=int, default=1000, help="score on N valid sentences drawn at random (0: all)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks")
    return parser.parse_args()


def tiny_model_dir(args: argparse.Namespace, pool: Sequence[Sentence]) -> Path:
    """A config and tokenizer for ``finetune.init: random``: the shape the fine-tunes start from at random."""
    folder = args.out / "init"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_wordpiece((" ".join(s.tokens) for s in pool), args.vocab, 2, lowercase=False)
    as_transformers_tokenizer(tokenizer, 128).save_pretrained(folder)
    ElectraConfig(
        vocab_size=tokenizer.get_vocab_size(), embedding_size=args.hidden, hidden_size=args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=max(1, args.hidden // 64),
        intermediate_size=4 * args.hidden, max_position_embeddings=128,
    ).save_pretrained(folder)
    return folder


def recipe(args: argparse.Namespace) -> FinetuneParams:
    return load_section("finetune", PARAMS_FILE, {
        "init": "random", "head": "crf", "epochs": args.epochs, "patience": args.patience, "device": "cpu",
        "learning_rate": args.learning_rate, "layer_lr_decay": 1.0, "max_seq_len": 128,
    })


def train_and_score(args, init_dir, labelled, valid, seed, save_to: Path | None) -> float:
    """Fine-tune on the labelled sentences (early stopping on valid) and return the best valid entity F1; the
    model is saved (with its tokenizer) when it will be exported for the next selection."""
    model, tokenizer, summary = finetune(recipe(args), seed, init_dir, labelled, valid, lambda step, metrics: None)
    if save_to is not None:
        model.save_pretrained(save_to, safe_serialization=True)
        as_transformers_tokenizer(tokenizer, 128).save_pretrained(save_to)
    return float(summary["best_valid_f1"])


def uncertain_next(args, model_dir: Path, pool: Sequence[Sentence], chosen: list[int], count: int) -> list[int]:
    """Export the model and pick the ``count`` unlabelled pool sentences the torch-free client is least sure of."""
    export = load_section("export", PARAMS_FILE)
    onnx_dir = export_onnx(model_dir, model_dir.with_suffix(".onnx"), export.opset, 128, export.limits)
    predictor = NerPredictor.from_dir(onnx_dir, providers=["CPUExecutionProvider"], variant="fp32", threads=1)
    taken = set(chosen)
    rest = [index for index in range(len(pool)) if index not in taken]
    scores = score_word_sentences(predictor, [pool[index].tokens for index in rest], "marginal")
    order = sorted(range(len(rest)), key=lambda row: (-scores[row], row))
    return [rest[row] for row in order[:count]]


def run_seed(args, init_dir, pool, valid, seed) -> list[dict]:
    """Both arms for one seed, sharing the seed set (and so the first model)."""
    order = random.Random(seed).sample(range(len(pool)), len(pool))
    first, rows = args.sizes[0], []

    def record(arm: str, chosen: Sequence[int], f1: float, started: float) -> None:
        tokens = sum(len(pool[index].tokens) for index in chosen)
        rows.append({"arm": arm, "seed": seed, "sentences": len(chosen), "tokens": tokens, "valid_f1": round(f1, 4),
                     "wall_s": round(time.perf_counter() - started, 1)})
        print(json.dumps(rows[-1]), flush=True)

    started = time.perf_counter()
    chosen = order[:first]
    saved = args.out / f"seed{seed}-uncertainty-{first}"
    f1 = train_and_score(args, init_dir, [pool[i] for i in chosen], valid, seed, saved)
    for arm in ARMS:
        record(arm, chosen, f1, started)
    for size in args.sizes[1:]:
        started = time.perf_counter()
        record("random", order[:size], train_and_score(args, init_dir, [pool[i] for i in order[:size]], valid, seed,
                                                       None), started)
    for size in args.sizes[1:]:
        started = time.perf_counter()
        chosen = chosen + uncertain_next(args, saved, pool, chosen, size - len(chosen))
        saved = args.out / f"seed{seed}-uncertainty-{size}"
        last = size == args.sizes[-1]
        f1 = train_and_score(args, init_dir, [pool[i] for i in chosen], valid, seed, None if last else saved)
        record("uncertainty", chosen, f1, started)
    return rows


def seed_rows(args, init_dir, pool, valid, seed) -> list[dict]:
    """One seed's runs, read back from ``--out`` when an earlier invocation finished that seed: seeds can then run
    as separate processes (``--seeds 3`` beside ``--seeds 1 2``) and one last call with every seed writes the table."""
    saved = args.out / f"rows-seed{seed}.json"
    if saved.is_file():
        return json.loads(saved.read_text(encoding="utf-8"))
    rows = run_seed(args, init_dir, pool, valid, seed)
    with atomic_file(saved) as handle:
        json.dump(rows, handle, indent=1)
    return rows


def summarize(rows: Sequence[dict], sizes: Sequence[int]) -> list[dict]:
    """Mean and standard deviation of valid F1 (and tokens labelled) per size and arm."""
    summary = []
    for size in sizes:
        row = {"sentences": size}
        for arm in ARMS:
            runs = [r for r in rows if r["arm"] == arm and r["sentences"] == size]
            f1s = [r["valid_f1"] for r in runs]
            row[f"{arm}_f1"] = round(statistics.mean(f1s), 4)
            row[f"{arm}_f1_std"] = round(statistics.stdev(f1s) if len(f1s) > 1 else 0.0, 4)
            row[f"{arm}_tokens"] = round(statistics.mean(r["tokens"] for r in runs))
        summary.append(row)
    return summary


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    with atomic_file(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    train = read_conll(args.data / "train.txt.gz")
    valid = read_conll(args.data / "valid.txt.gz")
    valid = random.Random(args.pool_seed).sample(valid, args.valid) if args.valid else valid
    pool = random.Random(args.pool_seed).sample(train, args.pool)
    init_dir = tiny_model_dir(args, pool)
    started = time.perf_counter()
    rows = [row for seed in args.seeds for row in seed_rows(args, init_dir, pool, valid, seed)]
    summary = summarize(rows, args.sizes)
    write_csv(args.results / "active_learning.csv", rows)
    write_csv(args.results / "active_learning_curve.csv", summary)
    print(f"wall {time.perf_counter() - started:.0f} s; pool {len(pool)}, valid {len(valid)} sentences")
    print("| labelled sentences | random F1 | uncertainty F1 | random tokens | uncertainty tokens |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for row in summary:
        print(f"| {row['sentences']} | {100 * row['random_f1']:.2f} ± {100 * row['random_f1_std']:.2f} "
              f"| {100 * row['uncertainty_f1']:.2f} ± {100 * row['uncertainty_f1_std']:.2f} "
              f"| {row['random_tokens']} | {row['uncertainty_tokens']} |")


if __name__ == "__main__":
    main()
