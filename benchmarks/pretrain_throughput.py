"""Pretraining throughput: our trainer step against the obvious Hugging Face approach, in one process.

    python benchmarks/pretrain_throughput.py --preset small --batch-size 8 --corpus ../shared/data/corpus/sample.txt.gz

Both sides train the same preset (discriminator and generator of the same sizes) on the same text, B sequences of
L tokens per step, with the same AdamW (fused), gradient clipping and loss (MLM + 50 x RTD):

- ours: ``Trainer.train_step`` as the pretrain stage runs it: packed full-length blocks, one embedding module
  shared by generator and discriminator, generator logits at the masked slots only, SDPA without a mask, static
  shapes (and bf16 autocast on a GPU);
- baseline: ``ElectraForMaskedLM`` + ``ElectraForPreTraining`` (HF ELECTRA whatever ``--backbone`` ours trains)
  with separate embeddings, one paragraph per row
  (truncated at L, padded to L, as line-by-line tokenization does), generator logits over the whole vocabulary at
  every position, boolean-mask indexing, fp32. On a GPU the baseline runs twice, in fp32 and under the same bf16
  autocast as ours, and ``speedup`` is against the bf16 one (the fair, harder comparison).

Steps alternate between the two (the first ``--warmup`` of each are not timed), so a machine busy with other work
slows both alike; each step takes the next batch of text. With ``--compile``, once that table is printed (and saved
to ``--results``), our bodies are compiled and timed again alone, and a row and a ``speedup compiled`` line follow:
a run cut short while compiling still leaves the eager figures. tokens/s counts real tokens (not padding), the text each
side learns from per second; the table reports medians over the timed steps. The eager table ends with
``speedup: X.XXx`` (ours / baseline, by wall time); the line before it compares CPU time, the steadier
measure when other work shares the machine.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import ElectraForMaskedLM, ElectraForPreTraining

from electra_model.config import PretrainParams, load_params, load_section
from electra_model.data.blocks import pack_blocks
from electra_model.data.demo import demo_corpus
from electra_model.pretraining.flops import peak_flops
from electra_model.pretraining.modeling import electra_configs
from electra_model.pretraining.loop import RunningStats, Trainer, compile_bodies
from electra_model.data.tokenizer import special_token_ids, train_wordpiece
from electra_model.io import write_json
from electra_model.training import Distributed, build_optimizer

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"
PARAMS = load_params(PARAMS_FILE)
"""params.yaml: the flags' defaults (a null one: the chosen preset's), and every key no flag names."""


def read_paragraphs(corpus: Path | None) -> list[str]:
    """One paragraph per line from a .txt or .txt.gz file, or the embedded demo corpus."""
    if corpus is None:
        return [p for document in demo_corpus(400, seed=1) for p in document.split("\n") if p.strip()]
    with (gzip.open(corpus, "rt", encoding="utf-8") if corpus.suffix == ".gz" else open(corpus, encoding="utf-8")) as f:
        return [line.strip() for line in f if line.strip()]


def padded_batch(tokenizer: Tokenizer, paragraphs: list[str], rows: int, seq_len: int, pad_id: int) -> torch.Tensor:
    """The baseline's input: ``rows`` paragraphs with [CLS]/[SEP], truncated at ``seq_len`` and padded to it."""
    batch = torch.full((rows, seq_len), pad_id, dtype=torch.long)
    for row, encoding in enumerate(tokenizer.encode_batch(paragraphs[:rows])):
        ids = encoding.ids[: seq_len - 1] + encoding.ids[-1:] if len(encoding.ids) > seq_len else encoding.ids
        batch[row, : len(ids)] = torch.tensor(ids)
    return batch


class NaiveElectra:
    """The obvious implementation: two separately embedded transformers models, full-vocabulary generator logits."""

    def __init__(self, trainer: Trainer, special: dict[str, int], disc_weight: float, bf16: bool = False):
        params = trainer.params
        discriminator, generator = electra_configs(
            params.architecture, trainer.vocab_size, params.max_seq_len, special["[PAD]"], params.dropout,
            params.init_scale, "electra",  # the naive baseline is HF ELECTRA whichever backbone ours trains
        )
        self.device = trainer.device
        self.generator = ElectraForMaskedLM(generator).to(self.device).train()
        self.discriminator = ElectraForPreTraining(discriminator).to(self.device).train()
        modules = torch.nn.ModuleList([self.generator, self.discriminator])
        self.parameters = list(modules.parameters())
        self.optimizer = build_optimizer(
            modules, params.learning_rate, params.weight_decay, params.adam_epsilon, self.device
        )
        self.special, self.disc_weight, self.max_grad_norm = special, disc_weight, params.max_grad_norm
        self.autocast = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=bf16)

    def step(self, input_ids: torch.Tensor) -> None:
        input_ids = input_ids.to(self.device)
        attention_mask = (input_ids != self.special["[PAD]"]).long()
        special = torch.tensor([self.special[t] for t in ("[PAD]", "[CLS]", "[SEP]")], device=self.device)
        masked = (torch.rand(input_ids.shape, device=self.device) < 0.15) & ~torch.isin(input_ids, special)
        to_mask_token = masked & (torch.rand(input_ids.shape, device=self.device) < 0.85)
        generator_input = input_ids.masked_fill(to_mask_token, self.special["[MASK]"])
        labels = input_ids.masked_fill(~masked, -100)
        with self.autocast:
            generator_out = self.generator(generator_input, attention_mask=attention_mask, labels=labels)
            with torch.no_grad():
                sampled = torch.distributions.Categorical(logits=generator_out.logits[masked].float()).sample()
            corrupted = input_ids.clone()
            corrupted[masked] = sampled
            rtd_labels = (corrupted != input_ids).long()
            discriminator_out = self.discriminator(corrupted, attention_mask=attention_mask, labels=rtd_labels)
            loss = generator_out.loss + self.disc_weight * discriminator_out.loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


@dataclass
class Measured:
    """Per timed step: real tokens, wall seconds, CPU seconds."""

    tokens: list[int] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, tokens: int, wall: float, cpu: float) -> None:
        self.tokens.append(tokens)
        self.wall.append(wall)
        self.cpu.append(cpu)

    def rate(self, seconds: list[float]) -> float:
        """Median over steps of tokens per second."""
        return statistics.median(t / s for t, s in zip(self.tokens, seconds))


def timed(step: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """Wall time and process CPU time of one step (waiting for a GPU to finish it).

    On a machine shared with other work, CPU time is the steadier measure of the work a CPU step costs.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=PARAMS.pretrain.preset, help="a name in pretrain.presets")
    parser.add_argument("--batch-size", type=int, help="default: the preset's")
    parser.add_argument("--seq-len", type=int, default=PARAMS.pretrain.max_seq_len)
    parser.add_argument("--vocab-size", type=int, default=PARAMS.tokenizer.vocab_size,
                        help="WordPiece vocabulary trained on the corpus")
    parser.add_argument("--corpus", type=Path, help="paragraphs, one per line (.txt or .txt.gz); default: demo data")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--compile", action="store_true", help="then torch.compile our transformer bodies and time "
                        "them again (the eager table is printed and saved first)")
    parser.add_argument("--results", type=Path, help="JSON of the figures, rewritten after each measurement")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's, one per core)")
    parser.add_argument("--backbone", help="ours: a pretrain.backbone (default: the preset's); the baseline stays "
                        "naive HF ELECTRA")
    return parser.parse_args()


def figures(runs: Measured, flops_per_step: int | None = None, peak: float | None = None) -> dict[str, float]:
    """What the results file keeps of one contender: median tokens/s and step time, and MFU where it applies."""
    out = {"tokens_per_s": runs.rate(runs.wall), "median_step_s": statistics.median(runs.wall)}
    if flops_per_step is not None and peak:
        out["mfu"] = flops_per_step / out["median_step_s"] / peak
    return out


def print_row(name: str, runs: Measured) -> None:
    print(f"| {name} | {statistics.mean(runs.tokens):.0f} | {statistics.median(runs.wall):.3f} | "
          f"{runs.rate(runs.wall):,.0f} | {runs.rate(runs.cpu):,.0f} |", flush=True)


def time_compiled(trainer: Trainer, stats: RunningStats, warmup: int, steps: int) -> Measured:
    """Our step again with the bodies compiled, after the eager table is out: compilation (minutes on a CPU, tens
    of seconds on a GPU) happens in the untimed warm-up steps, so a run cut short there still leaves the eager
    figures. Timed alone, not interleaved: the baseline's figure comes from the eager round."""
    compile_bodies(trainer.model)
    for _ in range(warmup):
        trainer.train_step(trainer.model, stats)
    runs = Measured()
    for _ in range(steps):
        runs.add(trainer.params.batch_size * trainer.params.max_seq_len,
                 *timed(lambda: trainer.train_step(trainer.model, stats), trainer.device))
    stats.summary(Distributed())
    return runs


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    paragraphs = read_paragraphs(args.corpus)
    tokenizer = train_wordpiece(paragraphs, vocab_size=args.vocab_size, min_frequency=2, lowercase=False)
    special = special_token_ids(tokenizer)
    params: PretrainParams = load_section("pretrain", PARAMS_FILE, {  # the preset's learning rate, with this batch
        "preset": args.preset, "batch_size": args.batch_size, "max_seq_len": args.seq_len, "max_steps": 1000,
        "warmup_steps": 10,
        "short_seq_fraction": 0.0,  # full-length blocks throughout: a curriculum's short phase would flatter ours
        "backbone": args.backbone,
    })
    blocks = pack_blocks(tokenizer, paragraphs, args.seq_len)
    trainer = Trainer(params, 0, tokenizer, blocks, Distributed())
    trainer.model.train()
    stats = RunningStats.zeros(trainer.device)
    on_gpu = trainer.device.type == "cuda"
    baselines = {"naive HF: padded rows, separate embeddings, full-vocab generator logits, fp32": NaiveElectra(
        trainer, special, params.disc_weight
    )}
    if on_gpu:
        baselines["naive HF, as above under bf16 autocast"] = NaiveElectra(
            trainer, special, params.disc_weight, bf16=True
        )
    shuffled = [paragraphs[i] for i in np.random.default_rng(0).permutation(len(paragraphs))]
    rows = params.batch_size
    padded = [
        padded_batch(tokenizer, shuffled[i * rows : (i + 1) * rows], rows, args.seq_len, special["[PAD]"])
        for i in range(args.warmup + args.steps)
    ]

    ours_tokens = params.batch_size * args.seq_len
    ours, naive_runs = Measured(), {name: Measured() for name in baselines}
    for index, batch in enumerate(padded):
        ours_times = timed(lambda: trainer.train_step(trainer.model, stats), trainer.device)
        if index >= args.warmup:
            ours.add(ours_tokens, *ours_times)
        for name, naive in baselines.items():
            naive_times = timed(lambda: naive.step(batch), trainer.device)
            if index >= args.warmup:
                naive_runs[name].add(int((batch != special["[PAD]"]).sum()), *naive_times)
    stats.summary(Distributed())  # the loop's one read-back, outside the timed steps
    peak = peak_flops(trainer.device, params.peak_tflops)
    flops_per_step = trainer.step_flops()
    eager = figures(ours, flops_per_step, peak)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    device_name = torch.cuda.get_device_name(trainer.device) if on_gpu else f"cpu, {torch.get_num_threads()} threads"
    ours_name = "ours: packed blocks, shared embeddings, masked-only generator head" + (", bf16" if on_gpu else "")
    print(f"preset {args.preset} ({parameters / 1e6:.1f}M parameters), vocab {trainer.vocab_size}, batch "
          f"{params.batch_size} x {args.seq_len}, {device_name}, {args.warmup} warmup + {args.steps} timed steps each, "
          f"interleaved; our MFU {eager.get('mfu', float('nan')):.1%}")
    print("| trainer | real tokens / step | median step (s) | tokens/s | tokens per CPU-second |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in ((ours_name, ours), *naive_runs.items()):
        print_row(name, runs)
    baseline_name, baseline = list(naive_runs.items())[-1]  # on a GPU the bf16 baseline, on a CPU the fp32 one
    if on_gpu:
        fp32 = list(naive_runs.values())[0]
        print(f"speedup over the fp32 baseline: {ours.rate(ours.wall) / fp32.rate(fp32.wall):.2f}x")
    else:
        print(f"speedup per CPU-second: {ours.rate(ours.cpu) / baseline.rate(baseline.cpu):.2f}x")
    print(f"speedup: {ours.rate(ours.wall) / baseline.rate(baseline.wall):.2f}x", flush=True)
    results = {"preset": args.preset, "device": device_name, "batch_size": params.batch_size, "seq_len": args.seq_len,
               "compile": args.compile, "eager": eager, "baseline": {"name": baseline_name, **figures(baseline)}}
    if args.results:
        write_json(args.results, results)
    if args.compile:
        compiled = time_compiled(trainer, stats, args.warmup, args.steps)
        results["compiled"] = figures(compiled, flops_per_step, peak)
        print_row(f"{ours_name}, compiled", compiled)
        print(f"compiled MFU {results['compiled'].get('mfu', float('nan')):.1%}; speedup compiled: "
              f"{compiled.rate(compiled.wall) / baseline.rate(baseline.wall):.2f}x", flush=True)
        if args.results:
            write_json(args.results, results)


if __name__ == "__main__":
    main()
