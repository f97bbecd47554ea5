"""CPU inference latency of the exported NER model: torch eager vs onnxruntime fp32 vs optimized fp32 vs int8.

One run, one model, the same inputs for every contender: an ELECTRA-Small-shaped token classifier (12 layers x 256,
embedding 128, 4 heads, vocabulary 30522, 9 labels; random weights, which cost the same time as trained ones) is
exported by the pipeline's own ``export_onnx`` and timed at batch 1 and batch 32 of ``--seq-len`` tokens, in
blocks of runs per contender over several rounds so a busy period of a shared machine slows all of them alike.
onnxruntime runs as the client serves it (:func:`electra_model.client.exported.open_session`: idle threads spinning,
its default; ``--no-spinning`` times it with sleeping threads, as a process sharing its cores would). Then every
variant's entity F1 on a labelled CoNLL file, for a fine-tuned model (``--f1-model``, default the pipeline's
``models/finetuned`` scored on ``data/task/test.txt``)::

    python benchmarks/inference_latency.py
    python benchmarks/inference_latency.py --f1-model FINETUNED_DIR --f1-data ../shared/data/conll2003/test.txt.gz

Prints markdown tables (latency: median, p95, sequences/s, speedup over torch; F1 per variant) and, last,
``int8 speedup b1: X.XXx, f1 drop: Y.YY`` (F1 points, fp32 minus int8).

``--device cuda`` times the GPU pair instead: torch eager in fp16 against the exported fp16 variant on
onnxruntime-gpu, with the CUDA execution provider and, where it loads, TensorRT's, both fed from and answering into
GPU memory (IO binding), so neither pays host copies. Its last line is ``fp16 gpu speedup b1: X.XXx``; the
variants' F1 comes from the CPU run, which scores the fp16 variant too::

    python benchmarks/inference_latency.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.capi.onnxruntime_pybind11_state import EPFail, Fail
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import ElectraConfig, ElectraForTokenClassification

from electra_model.config import load_params
from electra_model.dvc_map import stage_path
from electra_model.tasks.ner.conll import read_conll
from electra_model.export.build import export_onnx
from electra_model.export.choose import block_timings, check_variants, latency_summary
from electra_model.client.exported import CPU, CUDA, MODEL_FILE, OUTPUT_NAME, open_session, read_meta, session_options
from electra_model.data.tokenizer import SPECIAL_TOKENS

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")
"""params.yaml: the export's opset and the fine-tuned model's input length."""
FINETUNED = ROOT / stage_path("finetune", "outs", dvc_file=ROOT / "dvc.yaml")
TASK_DATA = ROOT / stage_path("download", "outs", suffix="task", dvc_file=ROOT / "dvc.yaml")

SMALL = {"hidden_size": 256, "num_hidden_layers": 12, "num_attention_heads": 4, "intermediate_size": 1024,
         "embedding_size": 128, "vocab_size": 30522}
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
ONNX_VARIANTS = ("fp32", "optimized", "int8")
TENSORRT = "TensorrtExecutionProvider"
GOALS = {
    "cpu": {("onnxruntime optimized", 1): 2.0, ("onnxruntime int8", 1): 3.0, ("onnxruntime int8", 32): 2.0},
    "cuda": {("onnxruntime cuda fp16", 1): 2.0, ("onnxruntime tensorrt fp16", 1): 2.0},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-len", type=int, default=PARAMS.finetune.max_seq_len)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--runs", type=int, nargs="+", default=[40, 8], help="timed runs per batch size")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and onnxruntime threads")
    parser.add_argument("--no-spinning", dest="spinning", action="store_false",
                        help="onnxruntime threads sleep between runs instead of spinning (its default)")
    parser.add_argument("--f1-model", type=Path, default=FINETUNED, help="a fine-tuned model dir")
    parser.add_argument("--f1-data", type=Path, default=TASK_DATA / "test.txt", help="CoNLL file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cpu: torch eager fp32 vs the CPU variants; "
                             "cuda: torch eager fp16 vs onnxruntime-gpu fp16")
    return parser.parse_args()


def small_model_dir(directory: Path, max_len: int, seed: int) -> Path:
    """An ELECTRA-Small-shaped classifier with random weights and a WordPiece vocabulary of the same size, laid
    out as the finetune stage writes a model, so ``export_onnx`` exports it as it exports a trained one."""
    torch.manual_seed(seed)
    config = ElectraConfig(**SMALL, max_position_embeddings=max(512, max_len), id2label=dict(enumerate(LABELS)),
                           label2id={label: index for index, label in enumerate(LABELS)})
    ElectraForTokenClassification(config).save_pretrained(directory)
    words = [*SPECIAL_TOKENS, *(f"w{index}" for index in range(SMALL["vocab_size"] - len(SPECIAL_TOKENS)))]
    tokenizer = Tokenizer(models.WordPiece({word: index for index, word in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory


def contenders(
    model_dir: Path, onnx_dir: Path, feed: dict[str, np.ndarray], threads: int, spinning: bool
) -> dict[str, Callable]:
    """One zero-argument call per contender, all on the same input arrays. Torch runs as users run it eagerly:
    default (SDPA) attention under inference_mode, with the same thread count as onnxruntime."""
    torch.set_num_threads(threads)
    model = ElectraForTokenClassification.from_pretrained(model_dir).eval()
    tensors = {name: torch.from_numpy(array) for name, array in feed.items()}

    def torch_eager() -> object:
        with torch.inference_mode():
            return model(**tensors).logits

    calls: dict[str, Callable] = {"torch eager": torch_eager}
    for name in ONNX_VARIANTS:
        path = onnx_dir / read_meta(onnx_dir)["variants"][name]["file"]
        session = open_session(path, [CPU], threads, spinning)
        calls[f"onnxruntime {name}"] = lambda session=session: session.run([OUTPUT_NAME], feed)
    return calls


def gpu_contenders(model_dir: Path, onnx_dir: Path, feed: dict[str, np.ndarray]) -> dict[str, Callable]:
    """torch eager fp16 against the exported model in fp16 on each GPU execution provider that loads and runs;
    every call returns once its logits are in GPU memory (torch synchronises, onnxruntime's run waits for its
    stream).

    The CUDA provider runs the fp16 variant, whose fused contrib operators (Attention, SkipLayerNormalization) it
    has kernels for. TensorRT's parser does not know those operators, so it gets the plain graph and builds its
    own fp16 engine (``trt_fp16_enable``) at the first run, which is untimed."""
    device = torch.device("cuda")
    model = ElectraForTokenClassification.from_pretrained(model_dir).to(device=device, dtype=torch.float16).eval()
    tensors = {name: torch.from_numpy(array).to(device) for name, array in feed.items()}

    def torch_eager_fp16() -> object:
        with torch.inference_mode():
            logits = model(**tensors).logits
        torch.cuda.synchronize()
        return logits

    calls: dict[str, Callable] = {"torch eager fp16": torch_eager_fp16}
    fp16_graph = onnx_dir / read_meta(onnx_dir)["variants"]["fp16"]["file"]
    tensorrt = (TENSORRT, {"trt_fp16_enable": True})
    for name, path, providers in (("cuda", fp16_graph, [CUDA]), ("tensorrt", onnx_dir / MODEL_FILE, [tensorrt, CUDA])):
        call = gpu_call(path, providers, feed)
        if call is not None:
            calls[f"onnxruntime {name} fp16"] = call
    return calls


def gpu_call(path: Path, providers: list, feed: dict[str, np.ndarray]) -> Callable[[], object] | None:
    """One bound run (:func:`bound_call`) on a session whose first provider really is the one asked for, tried
    once; or None, with the reason printed. onnxruntime falls back to the next provider with only a warning when
    one fails to load (TensorRT without its libraries), or raises, at load or at the first run (engine build)."""
    wanted = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
    if wanted not in ort.get_available_providers():
        print(f"{wanted}: not in this onnxruntime build ({ort.get_available_providers()}); not timed")
        return None
    try:
        session = ort.InferenceSession(str(path), session_options(None, cpu=False), providers=providers)
        if session.get_providers()[0] != wanted:
            print(f"{wanted}: did not load (the session runs on {session.get_providers()}); not timed")
            return None
        call = bound_call(session, feed)
        call()
    except (Fail, EPFail, RuntimeError) as error:
        print(f"{wanted}: did not load or run ({error}); not timed")
        return None
    return call


def bound_call(session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> Callable[[], object]:
    """One run with the inputs already in GPU memory and the logits left there (IO binding), as a GPU service that
    keeps its tensors on the device runs it."""
    binding = session.io_binding()
    for name, array in feed.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
    binding.bind_output(OUTPUT_NAME, "cuda")

    def call() -> object:
        session.run_with_iobinding(binding)
        return binding

    return call


def latency_rows(model_dir: Path, onnx_dir: Path, args: argparse.Namespace) -> list[dict]:
    rng = np.random.default_rng(args.seed)
    rows = []
    for batch, runs in zip(args.batches, args.runs):
        ids = rng.integers(len(SPECIAL_TOKENS), SMALL["vocab_size"], size=(batch, args.seq_len), dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if args.device == "cuda":
            calls = gpu_contenders(model_dir, onnx_dir, feed)
        else:
            calls = contenders(model_dir, onnx_dir, feed, args.threads, args.spinning)
        timings = block_timings(calls, runs)
        baseline = next(iter(timings.values()))  # torch eager comes first
        base = float(np.median(baseline))
        for name, seconds in timings.items():
            summary = latency_summary(seconds, batch)
            rows.append({"name": name, "batch": batch, **summary, "speedup": base / float(np.median(seconds))})
    return rows


def latency_table(rows: list[dict], seq_len: int) -> str:
    lines = ["| contender | batch x seq | median ms | p95 ms | sequences/s | speedup vs torch |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(f"| {row['name']} | {row['batch']} x {seq_len} | {row['median_ms']:.1f} | {row['p95_ms']:.1f} "
                     f"| {row['per_s']:.1f} | {row['speedup']:.2f}x |")
    return "\n".join(lines)


def goal_lines(rows: list[dict], device: str) -> list[str]:
    lines = []
    speedups = {(row["name"], row["batch"]): row["speedup"] for row in rows}
    for (contender, batch), goal in GOALS[device].items():
        speedup = speedups.get((contender, batch))
        if speedup is None:
            continue
        verdict = "met" if speedup >= goal else "MISSED"
        lines.append(f"- {contender} b{batch}: {speedup:.2f}x (goal >= {goal:.0f}x): {verdict}")
    return lines


def f1_table(model_dir: Path, data: Path, max_len: int, scratch: Path) -> tuple[str, dict[str, float]]:
    """Every variant of a fine-tuned model scored on ``data`` through the serving client's own decoding."""
    onnx_dir = export_onnx(model_dir, scratch / "f1-onnx", opset=PARAMS.export.opset, max_len=max_len, limits=PARAMS.export.limits)
    sentences = read_conll(data, scheme="auto")
    results = check_variants(model_dir, onnx_dir, sentences, batch_size=64)
    lines = [f"F1 of `{model_dir}` on `{data}` ({len(sentences)} sentences; torch eager's labels are identical to "
             f"fp32's: {results['fp32']['labels_identical']})", "",
             "| variant | entity F1 | max abs logit diff vs torch |", "| --- | ---: | ---: |"]
    for name, result in results.items():
        lines.append(f"| {name} | {100 * result['f1']:.2f} | {result['max_abs_logit_diff']:.2e} |")
    return "\n".join(lines), {name: result["f1"] for name, result in results.items()}


def machine() -> str:
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load}; "
            f"torch {torch.__version__}, onnxruntime {ort.__version__}")


def main() -> None:
    args = parse_args()
    print(f"machine: {machine()}")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda needs a GPU and a CUDA build of torch; this machine has neither")
        print(f"gpu: {torch.cuda.get_device_name()}; onnxruntime providers: {ort.get_available_providers()}")
    else:
        print(f"threads: {args.threads} (torch and onnxruntime); onnxruntime spinning: "
              f"{'on' if args.spinning else 'off'}")
    with tempfile.TemporaryDirectory(prefix="electra-bench-") as scratch_name:
        scratch = Path(scratch_name)
        model_dir = small_model_dir(scratch / "small", args.seq_len, args.seed)
        onnx_dir = export_onnx(model_dir, scratch / "onnx", opset=PARAMS.export.opset, max_len=args.seq_len, limits=PARAMS.export.limits)
        print(f"fused operators (optimized graph): {read_meta(onnx_dir)['fused_operators']}\n")
        rows = latency_rows(model_dir, onnx_dir, args)
        print(latency_table(rows, args.seq_len))
        print("\n".join(["", *goal_lines(rows, args.device), f"- after the run: load average {os.getloadavg()[0]:.1f}",
                         ""]))
        first = args.batches[0]
        if args.device == "cuda":  # the variants' F1 is the CPU run's: check_variants scores them on CPU
            speedup = next((row["speedup"] for row in rows if row["name"] == "onnxruntime cuda fp16"
                            and row["batch"] == first), float("nan"))
            print(f"fp16 gpu speedup b{first}: {speedup:.2f}x")
            return
        f1 = {"fp32": float("nan"), "int8": float("nan")}
        if (args.f1_model / "config.json").is_file() and args.f1_data.is_file():
            table, f1 = f1_table(args.f1_model, args.f1_data, args.seq_len, scratch)
            print(table + "\n")
        else:
            print(f"no F1: {args.f1_model} (a fine-tuned model) or {args.f1_data} is missing\n")
    speedup = next(row["speedup"] for row in rows if row["name"] == "onnxruntime int8" and row["batch"] == first)
    print(f"int8 speedup b{first}: {speedup:.2f}x, f1 drop: {100 * (f1['fp32'] - f1['int8']):.2f}")


if __name__ == "__main__":
    main()
