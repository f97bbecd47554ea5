"""Pretraining quality on a real corpus within a wall-clock budget: losses, RTD accuracy on held-out text.

    python benchmarks/pretrain_quality.py --corpus ../shared/data/corpus/wiki_en_train_0*.txt.gz \\
        --valid ../shared/data/corpus/wiki_en_valid.txt.gz --preset small --minutes 60 --out /tmp/quality

It runs the pretrain stage's own code path on files read in place: a cased WordPiece vocabulary trained on the
first ``--tokenizer-lines`` paragraphs, the whole corpus tokenized once into the memory-mapped token stream,
packed blocks, :func:`electra_model.pretraining.loop.pretrain` with the preset's shape, and ``save_pretrained``. The step
count is fitted to the budget by the stage's own ``pretrain.budget_minutes``: the time left after tokenization
(less ``EVALUATION_RESERVE_S``) is the training budget, a few calibration steps time the step on this machine,
and the learning-rate schedule (warmup ``--warmup-fraction`` of the steps, then linear decay) ends inside it.

Quality is judged on held-out documents (``--valid``): the discriminator's RTD accuracy against the all-original
baseline (the share of tokens the generator left unchanged, which a discriminator that learned nothing scores),
its precision and recall on replaced tokens, and the generator's MLM accuracy. Written under ``--out``:
``pretrained/`` (discriminator + tokenizer, ready for ``benchmarks/ner_real_data.py --model-dir``),
``curve.jsonl`` (one line per logging step) and ``summary.json``; the last line printed is the held-out summary.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import yaml
from tokenizers import Tokenizer

from electra_model.config import PretrainParams, load_params, load_section
from electra_model.data.blocks import PackedBlocks, cached_token_stream, pack_blocks
from electra_model.pretraining import modeling
from electra_model.pretraining.modeling import PretrainingModel, mask_tokens
from electra_model.pretraining.loop import RunningStats, objective_metrics, pretrain, save_pretrained, shard_seed
from electra_model.data.tokenizer import (
    DOCUMENT_BREAK,
    as_transformers_tokenizer,
    paragraphs_with_breaks,
    special_token_ids,
    train_wordpiece,
)
from electra_model.training import Distributed

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"
PARAMS = load_params(PARAMS_FILE)
"""params.yaml: the flags' defaults (a null one: the chosen preset's), and every key no flag names."""
EVALUATION_RESERVE_S = 30  # held-out evaluation and saving, after training
NOMINAL_STEPS = 10_000  # the schedule a budget rescales: it sets only the warmup's share


def file_lines(path: Path) -> Iterator[str]:
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as f:
        yield from f


def paragraphs(files: Sequence[Path]) -> Iterator[str]:
    """Paragraphs of .txt or .txt.gz files in order, with a document break (a [SEP] in the blocks) between
    documents, as the pretrain stage reads its corpus."""
    return paragraphs_with_breaks(file_lines(path) for path in files)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, nargs="+", required=True, help="training text, one paragraph a line")
    parser.add_argument("--valid", type=Path, required=True, help="held-out text for the quality figures")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", default=PARAMS.pretrain.preset, help="a name in pretrain.presets")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="wall-clock budget, tokenization included")
    budget.add_argument("--steps", type=int, help="a fixed step count instead (on a shared machine, where the "
                        "calibration's step time says little about the run's)")
    parser.add_argument("--batch-size", type=int, help="default: the preset's")
    parser.add_argument("--learning-rate", type=float, help="default: the preset's")
    parser.add_argument("--warmup-fraction", type=float, help="default: the preset's warmup_steps / max_steps")
    parser.add_argument("--seq-len", type=int, default=PARAMS.pretrain.max_seq_len)
    parser.add_argument("--vocab-size", type=int, default=PARAMS.tokenizer.vocab_size)
    parser.add_argument("--tokenizer-lines", type=int, default=100_000)
    parser.add_argument("--tokenizer", type=Path, help="a tokenizer folder of an earlier run to reuse instead of "
                        "training one (arms compared on the same vocabulary)")
    parser.add_argument("--log-every", type=int, default=PARAMS.pretrain.log_every,
                        help="steps per logged window (one host sync each)")
    parser.add_argument("--eval-every", type=int, default=PARAMS.pretrain.eval_every,
                        help="steps between held-out masked-LM evaluations on the training corpus's tail (a multiple of --log-every)")
    parser.add_argument("--valid-blocks", type=int, default=2048)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--seed", type=int, default=PARAMS.seed)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any other pretrain param, dotted for nested ones (YAML values): --set objective=mlm "
                        "--set sampling_temperature=2 --set presets.tiny.generator_fraction=0.5")
    parser.add_argument("--uniform-replacements", action="store_true", help="a control, not ELECTRA: masked slots "
                        "get uniformly random tokens instead of the generator's samples (benchmarks/RESULTS.md)")
    return parser.parse_args()


def pretrain_params(args: argparse.Namespace, max_steps: int, budget_minutes: float | None) -> PretrainParams:
    """The params.yaml pretrain section with this run's preset, batch, learning rate and step count or budget, then
    the ``--set`` keys; validated on its own, since the benchmark runs no other stage."""
    chosen = load_section("pretrain", PARAMS_FILE, {"preset": args.preset})
    warmup_fraction = args.warmup_fraction
    if warmup_fraction is None:
        warmup_fraction = chosen.warmup_steps / chosen.max_steps
    keys = {
        "preset": args.preset,
        "batch_size": args.batch_size,  # null: the preset's, as in params.yaml
        "learning_rate": args.learning_rate,
        "max_seq_len": args.seq_len,
        "max_steps": max_steps,
        "warmup_steps": max(1, round(warmup_fraction * max_steps)),
        "budget_minutes": budget_minutes,
        "log_every": args.log_every,
        "eval_every": args.eval_every,
        "checkpoint_every": args.log_every,  # no checkpoints are written here; the params require a multiple
        "compile": args.compile,
    }
    for override in args.overrides:
        key, _, value = override.partition("=")
        keys[key] = yaml.safe_load(value)
    return load_section("pretrain", PARAMS_FILE, keys)


@torch.no_grad()
def held_out_metrics(
    model: PretrainingModel, blocks: np.ndarray, params: PretrainParams, tokenizer: Tokenizer, seed: int
) -> dict[str, float]:
    """MLM and RTD figures on held-out blocks, masked and sampled as in training, dropout off."""
    device = next(model.parameters()).device
    special = special_token_ids(tokenizer)
    unmaskable = torch.tensor([special[t] for t in ("[CLS]", "[SEP]", "[PAD]", "[MASK]")], device=device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    stats = RunningStats.zeros(device)
    model.eval()
    for index, start in enumerate(range(0, len(blocks), params.batch_size)):
        input_ids = torch.from_numpy(blocks[start : start + params.batch_size].astype(np.int64)).to(device)
        sampler = torch.Generator(device=device).manual_seed(shard_seed(seed, index, 0, 0))
        maskable = ~torch.isin(input_ids, unmaskable)
        masked = mask_tokens(input_ids, maskable, special["[MASK]"], params.mask_prob, params.mask_token_prob, sampler)
        with autocast:
            stats.add(model(input_ids, None, masked, sampler), masked)
    metrics = objective_metrics(stats.summary(Distributed()), params.objective)
    if "replaced_fraction" in metrics:
        metrics["all_original_baseline_accuracy"] = 1.0 - metrics["replaced_fraction"]
    return metrics


def uniform_replacements(
    logits: torch.Tensor, generator: torch.Generator | None = None, never: torch.Tensor | None = None
) -> torch.Tensor:
    """Tokens drawn uniformly from the vocabulary past its first 1,000 ids (special tokens and single characters
    sit there): replacements whose identity alone gives them away, which the generator's samples stop being once it
    has learned the unigram distribution."""
    return torch.randint(1000, logits.shape[-1], logits.shape[:-1], device=logits.device, generator=generator)


def main() -> None:
    args = parse_args()
    if args.uniform_replacements:
        modeling.sample_replacements = uniform_replacements
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tokenizer:
        tokenizer = Tokenizer.from_file(str(args.tokenizer / "tokenizer.json"))
    else:
        texts = (line for line in paragraphs(args.corpus) if line != DOCUMENT_BREAK)
        tokenizer = train_wordpiece(islice(texts, args.tokenizer_lines), args.vocab_size, 2, False)
    tokenizer_dir = args.out / "tokenizer"
    as_transformers_tokenizer(tokenizer, args.seq_len).save_pretrained(tokenizer_dir)
    stream = cached_token_stream(tokenizer, lambda: paragraphs(args.corpus), args.out / "tokens")
    blocks = PackedBlocks.for_tokenizer(stream, tokenizer, args.seq_len)
    valid_blocks = pack_blocks(tokenizer, paragraphs([args.valid]), args.seq_len)[: args.valid_blocks]
    prepared_s = time.perf_counter() - started

    if args.steps:
        params = pretrain_params(args, args.steps, None)
    else:
        left_s = args.minutes * 60 - (time.perf_counter() - started) - EVALUATION_RESERVE_S
        if left_s <= 0:
            raise SystemExit(f"--minutes {args.minutes} leaves no time to train after {prepared_s:.0f} s of preparation")
        params = pretrain_params(args, NOMINAL_STEPS, left_s / 60)
    print(f"prepared in {prepared_s:.0f} s: {len(stream):,} tokens, {len(blocks):,} blocks", flush=True)

    with open(args.out / "curve.jsonl", "w", encoding="utf-8") as curve:
        def on_log(step: int, metrics: dict[str, float]) -> None:
            curve.write(json.dumps({"step": step, **metrics}) + "\n")
            curve.flush()

        training_started = time.perf_counter()
        model, final = pretrain(params, args.seed, tokenizer, blocks, on_log)
        training_s = time.perf_counter() - training_started
    save_pretrained(model, tokenizer_dir, args.out / "pretrained")
    held_out = held_out_metrics(model, valid_blocks, params, tokenizer, args.seed)
    summary = {
        "preset": args.preset,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "params": params.model_dump(),
        "corpus_tokens": len(stream),
        "budget_minutes": params.budget_minutes,
        "steps": final["steps"],
        "tokens_seen": final["tokens_seen"],
        "training_wall_s": round(training_s, 1),
        "total_wall_s": round(time.perf_counter() - started, 1),
        "final_train_window": final,
        "held_out": held_out,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps({key: summary[key] for key in ("budget_minutes", "steps", "tokens_seen", "training_wall_s", "total_wall_s")}))
    print("held-out: " + ", ".join(f"{k} {v:.4f}" for k, v in held_out.items()))


if __name__ == "__main__":
    main()
