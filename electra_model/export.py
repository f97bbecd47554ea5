"""ONNX export of the fine-tuned NER model in four variants, and the checks that prove what each one computes.

``export_onnx`` writes one self-contained serving directory that :mod:`electra_model.inference` loads with
onnxruntime alone: ``tokenizer.json``, ``labels.json``, ``model_meta.json`` and the variants

    fp32       model.onnx            the TorchScript export (eager attention, so the optimizer can fuse it)
    optimized  model.optimized.onnx  onnxruntime's transformer optimizer (model_type 'bert'): fused Attention,
                                     SkipLayerNormalization, BiasGelu, EmbedLayerNormalization
    int8       model.int8.onnx       dynamic int8 quantization (per channel; head and embeddings float), for CPU
    fp16       model.fp16.onnx       the optimized graph in fp16 (inputs and outputs kept), for GPU

``check_variants`` runs torch and every variant on the validation sentences (logit difference, label agreement,
entity F1), ``measure_latency`` times them at batch 1, ``choose_cpu_variant`` picks the one the registered model
serves on CPU, and ``check_and_choose`` does all three for the stage; ``score_variants`` scores the test split
afterwards, for the record only. The fp16 variant can only be checked loosely
here: onnxruntime's CPU provider runs it, but a GPU computes fp16 differently, so its CPU F1 and latency say little
about a GPU. All of it runs in the DVC stage ``dvc repro export``::

    export_onnx("models/ner", "models/onnx", opset=17, max_len=128)
    quality = check_and_choose("models/ner", "models/onnx", read_conll("data/ner/valid.txt"), 64, params.export,
                               split="valid")
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers import optimizer
from onnxruntime.transformers.fusion_options import FusionOptions
from onnxruntime.transformers.onnx_model import OnnxModel
from transformers import ElectraForTokenClassification

from electra_model.config import ExportParams
from electra_model.data.conll import Sentence
from electra_model.errors import ElectraError
from electra_model.inference import (
    CPU,
    INPUT_NAMES,
    LABELS_FILE,
    META_FILE,
    MODEL_FILE,
    OUTPUT_NAME,
    TOKENIZER_FILE,
    NerPredictor,
    open_session,
    read_meta,
)
from electra_model.io import atomic_dir, write_json
from electra_model.metrics import entity_scores
from electra_model.ner_encoding import pad_batch, word_log_probs

DYNAMIC_AXES = {name: {0: "batch", 1: "sequence"} for name in [*INPUT_NAMES, OUTPUT_NAME]}
VARIANT_FILES = {
    "fp32": MODEL_FILE,
    "optimized": "model.optimized.onnx",
    "int8": "model.int8.onnx",
    "fp16": "model.fp16.onnx",
}
CPU_VARIANTS = ("fp32", "optimized", "int8")
GPU_VARIANT = "fp16"
EXACT_VARIANTS = ("fp32", "optimized")  # fp32 graphs: they must match torch within parity_atol, label for label


def load_torch_model(model_dir: Path | str) -> ElectraForTokenClassification:
    """The fine-tuned model in fp32 eval mode with eager attention: SDPA's fused kernel has no clean ONNX form."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ElectraError(f"{model_dir}: no config.json, so no fine-tuned model to export; run `dvc repro finetune`")
    model = ElectraForTokenClassification.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float32)
    return model.eval()


def label_list(model: ElectraForTokenClassification) -> list[str]:
    """Labels in id order, the order of the logits' last axis."""
    return [model.config.id2label[index] for index in range(model.config.num_labels)]


def _trace(model: ElectraForTokenClassification, path: Path, opset: int) -> None:
    """Export with the TorchScript exporter: unlike the dynamo exporter it gives an attention graph that
    onnxruntime's transformer optimizer can fuse. Its tracer warnings are silenced because the parity check, not
    the tracer, is what proves the graph right at other shapes."""
    sample_ids = (torch.arange(16, dtype=torch.int64) % model.config.vocab_size).reshape(2, 8)
    sample_mask = torch.ones_like(sample_ids)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
        torch.onnx.export(
            model,
            (sample_ids, sample_mask),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes=DYNAMIC_AXES,
            opset_version=opset,
            dynamo=False,
        )


def _check_dynamic_axes(path: Path, num_labels: int) -> None:
    """Run the graph at two shapes unlike the traced one, so an exporter that froze a shape fails here, not in use."""
    session = ort.InferenceSession(str(path), providers=[CPU])
    for batch, length in ((1, 5), (3, 19)):
        feed = {name: np.ones((batch, length), dtype=np.int64) for name in INPUT_NAMES}
        shape = session.run([OUTPUT_NAME], feed)[0].shape
        if shape != (batch, length, num_labels):
            raise RuntimeError(f"exported graph gave logits of shape {shape} for input {(batch, length)}")


def _fusion_options(for_cpu: bool) -> FusionOptions:
    """The transformer optimizer's BERT fusions; on CPU without the SkipLayerNormalization and
    EmbedLayerNormalization kernels, which were slower on CPU than what onnxruntime makes of the unfused ops
    (measured on 2 cores, ELECTRA-Small shape: 9.0 against 10.1 ms at batch 1, 231 against 277 ms at batch 32)."""
    options = FusionOptions("bert")
    if for_cpu:
        options.enable_skip_layer_norm = False
        options.enable_bias_skip_layer_norm = False
        options.enable_embed_layer_norm = False
    return options


def _optimize(source: Path, target: Path, model: ElectraForTokenClassification, for_cpu: bool) -> dict[str, int]:
    """Fuse the graph with onnxruntime's transformer optimizer and return the fused-operator counts.

    The fusion is pattern matching on the exported graph, so a change of exporter, opset or attention
    implementation can silently leave attention unfused (a plain, slower graph that still passes parity); one
    fused Attention node per layer is therefore required, not hoped for.
    """
    logging.getLogger("onnxruntime.transformers").setLevel(logging.WARNING)
    fused = optimizer.optimize_model(
        str(source),
        model_type="bert",
        num_heads=model.config.num_attention_heads,
        hidden_size=model.config.hidden_size,
        optimization_options=_fusion_options(for_cpu),
    )
    counts = {name: int(count) for name, count in fused.get_fused_operator_statistics().items() if count}
    layers = model.config.num_hidden_layers
    if counts.get("Attention", 0) != layers:
        raise ElectraError(
            f"onnxruntime's optimizer fused {counts.get('Attention', 0)} Attention nodes for {layers} layers "
            f"(fused: {counts}); export.opset must be 14-20 and the model exported with eager attention"
        )
    fused.save_model_to_file(str(target))
    return counts


INT8_OPERATORS = ("MatMul", "Attention")
"""What int8 quantizes: the transformer's matrix products. The embedding lookups (Gather) stay float: quantizing
them saves no compute (a lookup is a copy) and costs accuracy (benchmarks/RESULTS.md, "int8 that keeps quality")."""


def classifier_nodes(model: onnx.ModelProto, num_labels: int) -> list[str]:
    """Names of the MatMul nodes that project onto the labels (their weight is ``hidden x num_labels``): the task
    head, kept in float because its errors go straight into the logits that pick the tags."""
    shapes = {tensor.name: list(tensor.dims) for tensor in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and any(shapes.get(name, [None])[-1] == num_labels for name in node.input)
    ]


def quantize_int8(
    source: Path,
    target: Path,
    num_labels: int,
    per_channel: bool = True,
    operators: Sequence[str] = INT8_OPERATORS,
    head_in_float: bool = True,
) -> None:
    """Dynamic int8 (weights int8, activations quantized per call): no calibration data needed, and the CPU
    kernels for the fused Attention and MatMul nodes exist. By default weights are quantized per output channel
    (one scale per column instead of one per matrix, so a column of small weights keeps its resolution) and the
    classifier head and the embedding lookups stay float (:data:`INT8_OPERATORS`); the other settings exist for
    benchmarks/int8_variants.py, which measures what each choice costs. ``DefaultTensorType`` covers the outputs of
    fused contrib ops, whose types onnx shape inference cannot infer."""
    logging.disable(logging.WARNING)  # the quantizer logs a generic pre-processing tip on the root logger
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=list(operators),
            nodes_to_exclude=classifier_nodes(onnx.load(str(source)), num_labels) if head_in_float else [],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.disable(logging.NOTSET)


def _convert_fp16(source: Path, target: Path) -> None:
    """fp16 weights and compute with fp32 inputs and outputs, so a GPU client feeds and reads the same arrays."""
    model = OnnxModel(onnx.load(str(source)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(target))


def _stamp(path: Path, properties: Mapping[str, Any]) -> None:
    """Record facts the client checks at load (vocabulary size, ...) inside the model file itself, so a model
    file that was swapped or paired with another tokenizer is refused rather than run."""
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {key: str(value) for key, value in properties.items()})
    onnx.save(model, str(path))


def export_onnx(model_dir: Path | str, out_dir: Path | str, opset: int, max_len: int) -> Path:
    """Write the serving directory with every variant atomically, so a half-finished export is never mistaken for
    a model. ``model_meta.json`` serves fp32 on CPU until :func:`set_cpu_variant` records the choice."""
    model_dir = Path(model_dir)
    model = load_torch_model(model_dir)
    if max_len > model.config.max_position_embeddings:
        raise ElectraError(
            f"finetune.max_seq_len {max_len} exceeds the model's {model.config.max_position_embeddings} positions "
            f"({model_dir / 'config.json'}); lower finetune.max_seq_len"
        )
    tokenizer_file = model_dir / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise ElectraError(f"{tokenizer_file}: tokenizer file not found next to the model; re-run `dvc repro finetune`")
    labels = label_list(model)
    with atomic_dir(out_dir) as staging:
        paths = {name: staging / file for name, file in VARIANT_FILES.items()}
        _trace(model, paths["fp32"], opset)
        _check_dynamic_axes(paths["fp32"], len(labels))
        fused = _optimize(paths["fp32"], paths["optimized"], model, for_cpu=True)
        quantize_int8(paths["optimized"], paths["int8"], len(labels))
        gpu_graph = staging / "gpu-fused.onnx"
        _optimize(paths["fp32"], gpu_graph, model, for_cpu=False)
        _convert_fp16(gpu_graph, paths["fp16"])
        gpu_graph.unlink()
        for name, path in paths.items():
            _stamp(path, {"vocab_size": model.config.vocab_size, "num_labels": len(labels), "variant": name})
        shutil.copyfile(tokenizer_file, staging / TOKENIZER_FILE)
        write_json(staging / LABELS_FILE, labels)
        write_json(
            staging / META_FILE,
            {
                "max_len": max_len,
                "labels": labels,
                "opset": opset,
                "vocab_size": model.config.vocab_size,
                "fused_operators": fused,
                "variants": {name: {"file": file} for name, file in VARIANT_FILES.items()},
                "cpu_variant": "fp32",
                "gpu_variant": GPU_VARIANT,
            },
        )
    return Path(out_dir)


# ------------------------------------------------------------------------------------------ checks
class _Tally:
    """Running comparison of one variant with torch over the evaluation batches."""

    def __init__(self) -> None:
        self.max_diff = 0.0
        self.identical = True
        self.window_scores: list[np.ndarray] = []

    def add(self, logits: np.ndarray, reference: np.ndarray, real: np.ndarray, scores: list[np.ndarray]) -> None:
        self.max_diff = max(self.max_diff, float(np.abs(logits - reference)[real].max()))
        self.identical = self.identical and bool((logits.argmax(-1) == reference.argmax(-1))[real].all())
        self.window_scores.extend(scores)


def check_variants(
    model_dir: Path | str, onnx_dir: Path | str, sentences: Sequence[Sentence], batch_size: int
) -> dict[str, dict[str, Any]]:
    """Compare every variant's logits with torch's on real inputs (padding included, where export bugs hide) and
    score each with entity F1 through the serving client's own windows and decoding, since the ONNX model, not the
    torch one, is what gets registered and served. ``sentences`` is the selection split (validation): these
    figures choose the served variant and gate the alias.

    Per variant: ``max_abs_logit_diff`` and ``labels_identical`` over every real token, and ``f1``, ``precision``,
    ``recall``. Parity (within ``parity_atol``, identical labels) is asked of the fp32 variants only, see
    :func:`summarize`.
    """
    if not sentences:
        raise ElectraError("the export check got no validation sentences; check data/ner/valid.txt")
    model = load_torch_model(model_dir)
    predictors = _predictors(onnx_dir, batch_size)
    windows = predictors["fp32"].windows([list(sentence.tokens) for sentence in sentences])
    tallies = {name: _Tally() for name in predictors}
    for first in range(0, len(windows), batch_size):
        encoded = [window.encoded for window in windows[first : first + batch_size]]
        feed = pad_batch(encoded, predictors["fp32"].pad_id)
        with torch.no_grad():
            reference = model(**{name: torch.from_numpy(feed[name]) for name in INPUT_NAMES}).logits.numpy()
        real = feed["attention_mask"].astype(bool)
        for name, predictor in predictors.items():
            logits = predictor.logits(encoded)
            tallies[name].add(logits, reference, real, word_log_probs(logits, encoded))
    gold = [sentence.tags for sentence in sentences]
    lengths = [len(sentence.tokens) for sentence in sentences]
    results = {}
    for name, tally in tallies.items():
        decoded = predictors[name].decode(windows, tally.window_scores, lengths)
        overall = entity_scores(gold, [tags for tags, _ in decoded])["overall"]
        results[name] = {
            "max_abs_logit_diff": tally.max_diff,
            "labels_identical": tally.identical,
            "f1": overall["f1"],
            "precision": overall["precision"],
            "recall": overall["recall"],
        }
    return results


def _predictors(onnx_dir: Path | str, batch_size: int) -> dict[str, NerPredictor]:
    """One CPU predictor per exported variant."""
    variants = read_meta(Path(onnx_dir))["variants"]
    return {
        name: NerPredictor.from_dir(onnx_dir, providers=[CPU], variant=name, batch_size=batch_size) for name in variants
    }


def score_variants(onnx_dir: Path | str, sentences: Sequence[Sentence], batch_size: int) -> dict[str, dict[str, float]]:
    """Entity scores of every variant on a reporting split (test), through the client as served. Reported, never
    used to choose: :func:`check_and_choose` does not see these sentences."""
    gold = [sentence.tags for sentence in sentences]
    words = [list(sentence.tokens) for sentence in sentences]
    scores = {}
    for name, predictor in _predictors(onnx_dir, batch_size).items():
        overall = entity_scores(gold, predictor.tag_words(words))["overall"]
        scores[name] = {key: overall[key] for key in ("f1", "precision", "recall")}
    return scores


def block_timings(
    calls: Mapping[str, Callable[[], object]], runs: int, rounds: int = 4, settle_s: float = 0.25
) -> dict[str, list[float]]:
    """Seconds per call of each function: ``runs`` timed calls each, spread over ``rounds`` rounds in which every
    contender runs one block: untimed calls for at least ``settle_s`` seconds (and at least three), then its
    timed calls.

    Blocks, not call-by-call alternation: onnxruntime's pool threads keep spinning for work after a run (its
    default, and how the model is served), and take the cores from whatever runs next for some 50 ms (measured
    on 2 cores: torch eager's first calls after an int8 session's took 35-60 ms against 18 ms; alternated call by
    call, torch eager timed 57 against 22 ms). The untimed calls that open each block outlast that. Several
    rounds, so that a slow period of a shared machine is spread over every contender.
    """
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for round_index in range(rounds):
        per_round = runs // rounds + (round_index < runs % rounds)
        for name, call in calls.items():
            settled_at = time.perf_counter() + settle_s
            for count in itertools.count(1):
                call()
                if count >= 3 and time.perf_counter() >= settled_at:
                    break
            for _ in range(per_round):
                started = time.perf_counter()
                call()
                timings[name].append(time.perf_counter() - started)
    return timings


def latency_summary(seconds: Sequence[float], batch: int) -> dict[str, float]:
    """Median and 95th percentile in milliseconds, and sequences per second at the median."""
    median = float(np.median(seconds))
    return {"median_ms": 1000 * median, "p95_ms": 1000 * float(np.percentile(seconds, 95)), "per_s": batch / median}


def measure_latency(onnx_dir: Path | str, runs: int, threads: int | None = None) -> dict[str, dict[str, float]]:
    """Batch-1 latency of every variant on CPU at the full ``max_len``, the per-request cost a CPU service pays,
    with the session settings the client serves it with (:func:`electra_model.inference.open_session`)."""
    meta = read_meta(Path(onnx_dir))
    ids = np.random.default_rng(0).integers(5, meta["vocab_size"], size=(1, meta["max_len"]), dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    sessions = {
        name: open_session(Path(onnx_dir) / entry["file"], [CPU], threads) for name, entry in meta["variants"].items()
    }
    calls = {name: (lambda session=session: session.run([OUTPUT_NAME], feed)) for name, session in sessions.items()}
    return {name: latency_summary(seconds, 1) for name, seconds in block_timings(calls, runs).items()}


def choose_cpu_variant(variants: Mapping[str, Mapping[str, Any]], export: ExportParams) -> tuple[str, str]:
    """The variant to serve on CPU and why: ``export.serve_variant``, or with ``auto`` the fastest at batch 1
    (``latency_ms_b1``) among those whose F1 is within ``export.max_f1_drop`` of the fp32 export's."""
    if export.serve_variant != "auto":
        return export.serve_variant, f"{export.serve_variant}: set by export.serve_variant"
    floor = variants["fp32"]["f1"] - export.max_f1_drop
    eligible = [name for name in CPU_VARIANTS if variants[name]["f1"] >= floor]
    fastest = min(eligible, key=lambda name: variants[name]["latency_ms_b1"])
    timings = ", ".join(f"{name} {variants[name]['latency_ms_b1']:.2f} ms" for name in CPU_VARIANTS)
    return fastest, (
        f"{fastest}: fastest at batch 1 ({timings}) of {eligible}, the variants whose f1 is within "
        f"max_f1_drop {export.max_f1_drop} of fp32's {variants['fp32']['f1']:.4f}"
    )


def set_cpu_variant(onnx_dir: Path | str, variant: str, variants: Mapping[str, Mapping[str, Any]]) -> None:
    """Record the CPU choice and each variant's measurements in ``model_meta.json``, which travels with the
    registered model, so a client sees what it runs and what the alternatives scored."""
    path = Path(onnx_dir) / META_FILE
    meta = read_meta(Path(onnx_dir))
    meta["cpu_variant"] = variant
    meta["variants"] = {name: {**entry, **variants.get(name, {})} for name, entry in meta["variants"].items()}
    write_json(path, meta)


def summarize(results: Mapping[str, Mapping[str, Any]], variant: str, atol: float) -> dict[str, Any]:
    """What the registry gate and ``metrics/export.json`` read: the served variant's scores, and parity of the
    two fp32 graphs (the worse of the two), since either failing means the export does not compute the model."""
    served = results[variant]
    diff = max(results[name]["max_abs_logit_diff"] for name in EXACT_VARIANTS)
    identical = all(results[name]["labels_identical"] for name in EXACT_VARIANTS)
    return {
        "f1": served["f1"],
        "precision": served["precision"],
        "recall": served["recall"],
        "serve_variant": variant,
        "max_abs_logit_diff": diff,
        "labels_identical": identical,
        "parity_passed": diff <= atol and identical,
        "parity_atol": atol,
    }


def check_and_choose(
    model_dir: Path | str,
    onnx_dir: Path | str,
    sentences: Sequence[Sentence],
    batch_size: int,
    export: ExportParams,
    split: str,
) -> dict[str, Any]:
    """Everything the export stage decides after exporting: check every variant on ``sentences`` (the ``split``
    that may choose: validation), time it, choose the CPU variant and record the choice in the directory. Returns
    :func:`summarize`'s result plus ``serve_reason``, ``variants`` (each variant's checks and ``latency_ms_b1`` /
    ``latency_ms_b1_p95``), ``fused_operators`` and ``selection_split``, which the registry records."""
    results = check_variants(model_dir, onnx_dir, sentences, batch_size)
    latency = measure_latency(onnx_dir, export.latency_runs)
    variants = {
        name: {**scores, "latency_ms_b1": latency[name]["median_ms"], "latency_ms_b1_p95": latency[name]["p95_ms"]}
        for name, scores in results.items()
    }
    variant, reason = choose_cpu_variant(variants, export)
    set_cpu_variant(onnx_dir, variant, variants)
    return {
        **summarize(results, variant, export.parity_atol),
        "serve_reason": reason,
        "variants": variants,
        "fused_operators": read_meta(Path(onnx_dir))["fused_operators"],
        "selection_split": split,
    }
