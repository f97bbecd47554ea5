"""Active learning on CoNLL-2003 with a simulated annotator: uncertainty selection against random selection.

Each seed starts from the same random seed set of the pool for both arms. The random arm then labels the pool in a
random order; the uncertainty arm fine-tunes, exports the model to ONNX with the pipeline's exporter, scores the rest
of the pool with the torch-free selection code that ``electra select`` runs (:mod:`electra_model.client.selection`,
the CRF-marginal measure, on the exported model through onnxruntime), and has the most uncertain sentences
"annotated" (their gold tags revealed) up to the next size. Every model is fine-tuned by the project's NER code path
(:func:`electra_model.tasks.ner.finetune.finetune`, CRF head, params.yaml's recipe with the overrides below) and
scored by entity F1 on the VALID split; test is never read::

    python benchmarks/active_learning.py --out /tmp/active_learning

Each finished run is kept in ``--out/rows-seedN.jsonl`` and not run again, so seeds may run as separate processes
(``--seeds 3`` beside ``--seeds 1 2``), an interrupted run resumes, and ``--summarize`` writes the table from them.

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
    parser.add_argument("--summarize", action="store_true", help="write the table from --out's rows, run nothing")
    return parser.parse_args()


def tiny_model_dir(args: argparse.Namespace, pool: Sequence[Sentence]) -> Path:
    """A config and tokenizer for ``finetune.init: random``: the shape the fine-tunes start from at random."""
    folder = args.out / "init"
    if (folder / "config.json").is_file():  # made by an earlier run or a seed's process beside this one
        return folder
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


def rows_file(args: argparse.Namespace, seed: int) -> Path:
    return args.out / f"rows-seed{seed}.jsonl"


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def run_seed(args, init_dir, pool, valid, seed) -> None:
    """Both arms for one seed, sharing the seed set (and so the first model). Each finished run is appended to
    ``--out/rows-seedN.jsonl`` (an uncertainty run with the sentences it labelled), and a run found there, with its
    saved model where the next selection needs one, is not run again: seeds can run as separate processes, an
    interrupted seed resumes, and ``--summarize`` writes the table from what is there. The runs the goal compares
    come first: the uncertainty rounds below the largest size, then random at the largest size."""
    path = rows_file(args, seed)
    done = {(row["arm"], row["sentences"]): row for row in read_rows(path)}
    order = random.Random(seed).sample(range(len(pool)), len(pool))
    sizes = args.sizes

    def record(arm: str, chosen: Sequence[int], f1: float, started: float) -> None:
        row = {"arm": arm, "seed": seed, "sentences": len(chosen), "tokens": sum(len(pool[i].tokens) for i in chosen),
               "valid_f1": round(f1, 4), "wall_s": round(time.perf_counter() - started, 1)}
        print(json.dumps(row), flush=True)
        done[(arm, len(chosen))] = {**row, **({"chosen": list(chosen)} if arm == "uncertainty" else {})}
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(done[(arm, len(chosen))]) + "\n")

    def model_dir(size: int) -> Path:
        return args.out / f"seed{seed}-uncertainty-{size}"

    def finished(arm: str, size: int, needs_model: bool) -> bool:
        return (arm, size) in done and (not needs_model or model_dir(size).is_dir())

    chosen = order[: sizes[0]]
    if not finished("uncertainty", sizes[0], needs_model=True):
        started = time.perf_counter()
        f1 = train_and_score(args, init_dir, [pool[i] for i in chosen], valid, seed, model_dir(sizes[0]))
        for arm in ARMS:
            record(arm, chosen, f1, started)

    def uncertainty_round(previous: int, size: int, keep_model: bool) -> None:
        nonlocal chosen
        if finished("uncertainty", size, needs_model=keep_model):
            chosen = done[("uncertainty", size)]["chosen"]
            return
        started = time.perf_counter()
        chosen = chosen + uncertain_next(args, model_dir(previous), pool, chosen, size - len(chosen))
        f1 = train_and_score(args, init_dir, [pool[i] for i in chosen], valid, seed,
                             model_dir(size) if keep_model else None)
        record("uncertainty", chosen, f1, started)

    def random_round(size: int) -> None:
        if not finished("random", size, needs_model=False):
            started = time.perf_counter()
            record("random", order[:size], train_and_score(args, init_dir, [pool[i] for i in order[:size]], valid,
                                                           seed, None), started)

    for previous, size in zip(sizes[:-1], sizes[1:-1]):
        uncertainty_round(previous, size, keep_model=True)
    random_round(sizes[-1])
    for size in sizes[1:-1]:
        random_round(size)
    uncertainty_round(sizes[-2], sizes[-1], keep_model=False)


def summarize(rows: Sequence[dict], sizes: Sequence[int]) -> list[dict]:
    """Mean and standard deviation of valid F1 (and tokens labelled) per size and arm, with the number of seeds
    each cell holds (a cell an interrupted run did not reach is empty, not guessed)."""
    summary = []
    for size in sizes:
        row: dict = {"sentences": size}
        for arm in ARMS:
            runs = [r for r in rows if r["arm"] == arm and r["sentences"] == size]
            f1s = [r["valid_f1"] for r in runs]
            row[f"{arm}_f1"] = round(statistics.mean(f1s), 4) if f1s else ""
            row[f"{arm}_f1_std"] = round(statistics.stdev(f1s), 4) if len(f1s) > 1 else ""
            row[f"{arm}_tokens"] = round(statistics.mean(r["tokens"] for r in runs)) if runs else ""
            row[f"{arm}_seeds"] = len(runs)
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
    if not args.summarize:
        for seed in args.seeds:
            run_seed(args, init_dir, pool, valid, seed)
    rows = [{key: value for key, value in row.items() if key != "chosen"}
            for seed in args.seeds for row in read_rows(rows_file(args, seed))]
    summary = summarize(rows, args.sizes)
    write_csv(args.results / "active_learning.csv", rows)
    write_csv(args.results / "active_learning_curve.csv", summary)
    print(f"wall {time.perf_counter() - started:.0f} s; pool {len(pool)}, valid {len(valid)} sentences")
    print("| labelled sentences | random F1 (seeds) | uncertainty F1 (seeds) | random tokens | uncertainty tokens |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for row in summary:
        cells = [cell(row, arm) for arm in ARMS]
        tokens = f"{row['random_tokens']} | {row['uncertainty_tokens']}"
        print(f"| {row['sentences']} | {cells[0]} | {cells[1]} | {tokens} |")


def cell(row: dict, arm: str) -> str:
    """``mean ± std (n)`` in F1 points, or ``-`` for a cell no run reached."""
    if not row[f"{arm}_seeds"]:
        return "-"
    spread = f" ± {100 * row[f'{arm}_f1_std']:.2f}" if row[f"{arm}_f1_std"] != "" else ""
    return f"{100 * row[f'{arm}_f1']:.2f}{spread} ({row[f'{arm}_seeds']})"

if __name__ == "__main__":
    main()
