"""CoNLL-2003 fine-tuning on real data, one arm (an initialisation and its recipe), tuned on validation only.

Reads the CoNLL-2003 files in place (IOB1, converted to IOB2 on reading). For each learning rate of
``--learning-rates`` it fine-tunes with the first seed (early stopping on valid) and keeps the rate with the best
validation entity F1; it then fine-tunes with every other seed of ``--seeds`` at that rate. Test is scored for every
run, and never read to choose anything: the one figure that would have chosen on test ("chosen on test", the best
test F1 over the grid) is printed beside the honest one to show how much that would have flattered the result.
Each test score is given three ways from the same model: its own decoding (the headline, as the pipeline
decodes: constrained, with a CRF's learned transitions), per-word argmax, and the raw-text path (each sentence
typed as plain text through the client's predictor, entities mapped back onto the gold words)::

    python benchmarks/ner_real_data.py --init random --model-dir PRETRAINED_DIR --layer-lr-decay 1.0 \\
        --epochs 10 --learning-rates 3e-4 1e-3 2e-3 --seeds 1 2 3 --out /tmp/ner/random
    python benchmarks/ner_real_data.py --init pretrained --model-dir PRETRAINED_DIR --layer-lr-decay 0.8 \\
        --epochs 6 --learning-rates 3e-4 1e-3 2e-3 --seeds 1 2 3 --out /tmp/ner/pretrained

``--init random`` takes the shape and tokenizer of ``--model-dir`` and none of its weights, so arms differ in the
initial weights and in the recipe each was tuned with. Written under ``--out`` (keep it outside the repository):
``summary.json`` (every run and the arm's summary) and ``model/`` (the chosen rate's first-seed model with its
tokenizer, e.g. for ``inference_latency.py --f1-model``). The last line printed is
``test entity F1: MEAN ± STD over N seeds``.

``--head`` sets ``finetune.head`` (``crf``, the library's default, or ``softmax``), with the same grid, seeds and
validation choice. Every headline (``valid_f1``, which is finetune's own best-epoch score and chooses the rate,
``test_f1`` and the raw-text path) is the model's own decoding, as the pipeline and the client decode: constrained
Viterbi, with the learned transitions for a CRF (:mod:`electra_model.client.tag_decoding`). For a CRF,
``*_crf_unconstrained`` drops the IOB2 constraints and ``*_emissions_constrained`` ignores the learned chain, to
show what each part adds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from electra_model.config import FinetuneParams, load_section
from electra_model.tasks.ner.conll import Sentence, check_labels_known, read_conll
from electra_model.tasks.ner.finetune import finetune, model_labels, predict_word_log_probs
from electra_model.tasks.ner.metrics import entity_scores
from electra_model.tasks.ner.raw_text_eval import raw_text_tags, torch_predictor
from electra_model.tasks.ner.crf import model_chain
from electra_model.tasks.ner.heads import HEADS
from electra_model.client.tag_decoding import ARGMAX, CONSTRAINED, TagScheme, decode_tags, viterbi
from electra_model.data.tokenizer import as_transformers_tokenizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"
PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"
RECIPE: FinetuneParams = load_section("finetune", PARAMS_FILE)
"""The fine-tuning recipe of params.yaml: the flags' defaults, and every key no flag names."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", required=True, help="random | pretrained | a transformers checkpoint directory")
    parser.add_argument("--model-dir", type=Path, required=True, help="our pretrained discriminator (shape, tokenizer)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train/valid/test.txt.gz")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[RECIPE.learning_rate])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=RECIPE.epochs)
    parser.add_argument("--batch-size", type=int, default=RECIPE.batch_size)
    parser.add_argument("--layer-lr-decay", type=float, default=RECIPE.layer_lr_decay)
    parser.add_argument("--max-seq-len", type=int, default=RECIPE.max_seq_len)
    parser.add_argument("--patience", type=int, default=RECIPE.patience)
    parser.add_argument("--device", default=RECIPE.device, help="auto | cpu | cuda")
    parser.add_argument("--head", choices=sorted(HEADS), default=RECIPE.head, help="crf | softmax")
    return parser.parse_args()


def finetune_params(**keys: Any) -> FinetuneParams:
    """params.yaml's finetune section with this run's keys (a benchmark names its own model, so the check against
    the pretrain section's length does not apply)."""
    return load_section("finetune", PARAMS_FILE, keys)


def crf_parts(model: Any, split: str, gold: list[list[str]], scores: list[Any]) -> dict[str, float]:
    """A CRF head's entity F1 on a split with one part of its decoding left out: the IOB2 constraints (learned
    transitions alone), or the learned chain (its emissions under constrained decoding, as a softmax is decoded)."""
    labels = model_labels(model)
    anything = TagScheme(tuple(labels), np.ones(len(labels), dtype=bool), np.ones((len(labels),) * 2, dtype=bool))
    unconstrained = [[labels[i] for i in viterbi(sentence, anything, model_chain(model))] for sentence in scores]
    return {
        f"{split}_f1_crf_unconstrained": entity_scores(gold, unconstrained)["overall"]["f1"],
        f"{split}_f1_emissions_constrained":
            entity_scores(gold, decode_tags(scores, labels, CONSTRAINED))["overall"]["f1"],
    }


def test_scores(model: Any, tokenizer: Any, test: list[Sentence], max_len: int, head: str) -> dict[str, float]:
    """Test entity F1 from one model: its own decoding (the headline), argmax, the raw-text path, and for a CRF
    the parts of its decoding (see the module docstring)."""
    gold = [sentence.tags for sentence in test]
    scores = predict_word_log_probs(model, tokenizer, test, max_len, 64)
    labels = model_labels(model)
    raw = raw_text_tags(torch_predictor(model, tokenizer, max_len, 64), test)
    own = decode_tags(scores, labels, CONSTRAINED, model_chain(model))
    return {
        "test_f1": entity_scores(gold, own)["overall"]["f1"],
        **(crf_parts(model, "test", gold, scores) if head == "crf" else {}),
        "test_f1_argmax": entity_scores(gold, decode_tags(scores, labels, ARGMAX))["overall"]["f1"],
        "test_f1_raw_text": entity_scores(gold, raw.tags)["overall"]["f1"],
        "raw_text_sentences_split_differently": raw.sentences_split_differently,
    }


def run_once(args: argparse.Namespace, splits: dict[str, list[Sentence]], learning_rate: float, seed: int) -> dict:
    """Fine-tune one model (early-stopped on valid) and score it; saves it under ``--out/runs/``."""
    params = finetune_params(
        init=args.init,
        max_seq_len=args.max_seq_len,
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=learning_rate,
        layer_lr_decay=args.layer_lr_decay,
        patience=args.patience,
        device=args.device,
        head=args.head,
    )
    started = time.perf_counter()
    model, tokenizer, summary = finetune(
        params, seed, args.model_dir, splits["train"], splits["valid"], lambda step, metrics: None
    )
    run = {"learning_rate": learning_rate, "seed": seed, "valid_f1": summary["best_valid_f1"], **summary,
           "train_wall_s": round(time.perf_counter() - started, 1)}
    if args.head == "crf":
        valid = splits["valid"]
        valid_scores = predict_word_log_probs(model, tokenizer, valid, args.max_seq_len, 64)
        run.update(crf_parts(model, "valid", [sentence.tags for sentence in valid], valid_scores))
    run.update(test_scores(model, tokenizer, splits["test"], args.max_seq_len, args.head))
    saved = args.out / "runs" / f"lr{learning_rate:g}-seed{seed}"
    model.save_pretrained(saved, safe_serialization=True)
    as_transformers_tokenizer(tokenizer, args.max_seq_len).save_pretrained(saved)
    print(json.dumps(run), flush=True)
    return {**run, "model": str(saved)}


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    splits = {name: read_conll(args.data / f"{name}.txt.gz") for name in ("train", "valid", "test")}
    for name in ("valid", "test"):
        check_labels_known(splits["train"], splits[name], args.data / f"{name}.txt.gz")
    first_seed, *other_seeds = args.seeds
    grid = [run_once(args, splits, rate, first_seed) for rate in args.learning_rates]
    chosen = max(grid, key=lambda run: run["valid_f1"])
    on_test = max(grid, key=lambda run: run["test_f1"])
    runs = [chosen, *(run_once(args, splits, chosen["learning_rate"], seed) for seed in other_seeds)]
    shutil.copytree(chosen["model"], args.out / "model", dirs_exist_ok=True)
    summary = {
        "init": args.init,
        "head": args.head,
        "recipe": {key: getattr(args, key) for key in ("epochs", "batch_size", "layer_lr_decay", "patience")},
        "grid": grid,
        "chosen_learning_rate": chosen["learning_rate"],
        "runs": runs,
        **{key: mean_std([run[key] for run in runs]) for key in runs[0] if key.startswith(("valid_f1", "test_f1"))},
        "chosen_on_test": {"learning_rate": on_test["learning_rate"], "test_f1": on_test["test_f1"],
                           "flattery": on_test["test_f1"] - chosen["test_f1"]},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print("| lr | seed | valid F1 | test F1 | test F1 argmax | test F1 raw text |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in [*grid, *runs[1:]]:
        print(f"| {run['learning_rate']:g} | {run['seed']} | {100 * run['valid_f1']:.2f} | {100 * run['test_f1']:.2f}"
              f" | {100 * run['test_f1_argmax']:.2f} | {100 * run['test_f1_raw_text']:.2f} |")
    test = summary["test_f1"]
    print(f"chosen on valid: lr {chosen['learning_rate']:g}; chosen on test would have been lr "
          f"{on_test['learning_rate']:g}, +{100 * summary['chosen_on_test']['flattery']:.2f} F1 on seed {first_seed}")
    print(f"test entity F1: {100 * test['mean']:.2f} ± {100 * test['std']:.2f} over {len(runs)} seeds")


if __name__ == "__main__":
    main()
