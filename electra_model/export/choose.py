"""What the export stage decides after exporting, and the measurements it decides on.

``check_variants`` runs torch and every variant on the validation split (logit difference, label agreement, and
the task's scores, by the exported task's :class:`~electra_model.tasks.spec.Exporter`: entity F1 for NER in
:mod:`electra_model.tasks.ner.export_checks`, accuracy and macro-F1 for a classifier in
:mod:`electra_model.tasks.classification.export_checks`), ``measure_latency`` times them at batch 1,
``choose_cpu_variant`` picks the one the registered model serves on CPU, and ``check_and_choose`` does all three for the stage and returns an
:class:`~electra_model.export.result.ExportQuality`; ``score_variants`` scores the test split afterwards, for the
record only. The fp16 variant can only be checked loosely here: onnxruntime's CPU provider runs it, but a GPU
computes fp16 differently, so its CPU F1 and latency say little about a GPU::

    quality = check_and_choose("models/finetuned", "models/onnx", read_conll("data/task/valid.txt"), 64, params.export,
                               split="valid")     # or a classifier's folder with its TextExamples
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from electra_model.client.exported import CPU, META_FILE, OUTPUT_NAME, open_session, read_meta
from electra_model.config import ExportParams
from electra_model.errors import ElectraError
from electra_model.export.build import load_torch_model
from electra_model.export.result import ExportQuality, at_least_as_good
from electra_model.io import write_json
from electra_model.tasks.registry import spec_for
from electra_model.tasks.spec import TaskSpec

CPU_VARIANTS = ("fp32", "optimized", "int8")
EXACT_VARIANTS = ("fp32", "optimized")  # fp32 graphs: they must match torch within parity_atol, label for label


def exported_spec(onnx_dir: Path | str) -> TaskSpec:
    """The spec of the task the exported directory serves (its ``model_meta.json`` names it)."""
    return spec_for(read_meta(Path(onnx_dir))["task"])


def check_variants(
    model_dir: Path | str, onnx_dir: Path | str, examples: Sequence[Any], batch_size: int
) -> dict[str, dict[str, Any]]:
    """Every variant's parity with torch and task scores on ``examples`` (the task's own split examples), by the
    exported task's :class:`~electra_model.tasks.spec.Exporter`, against the model as :func:`load_torch_model`
    loads it. Parity is asked of the fp32 variants only (see :func:`summarize`)."""
    if not examples:
        raise ElectraError("the export check got no validation examples; check the valid split of the task data")
    exporter = exported_spec(onnx_dir).exporter()
    return exporter.check_variants(load_torch_model(model_dir), Path(onnx_dir), examples, batch_size)


def score_variants(onnx_dir: Path | str, examples: Sequence[Any], batch_size: int) -> dict[str, dict[str, float]]:
    """The task's scores of every variant on a reporting split (test), through the client as served. Reported,
    never used to choose: :func:`check_and_choose` does not see these examples."""
    return exported_spec(onnx_dir).exporter().score_variants(Path(onnx_dir), examples, batch_size)


def block_timings(
    calls: Mapping[str, Callable[[], object]], runs: int, rounds: int = 4, settle_s: float = 0.25
) -> dict[str, list[float]]:
    """Seconds per call of each function: ``runs`` timed calls each, spread over ``rounds`` rounds in which every
    contender runs one block: untimed calls for at least ``settle_s`` seconds (and at least three), then its
    timed calls.

    Blocks, not call-by-call alternation: onnxruntime's pool threads keep spinning for work after a run (its
    default, and how the model is served) and take the cores from whatever runs next for a while; the untimed
    calls that open each block outlast that (benchmarks/RESULTS.md, "Why the serving and export settings are what
    they are"). Several rounds, so that a slow period of a shared
    machine is spread over every contender.
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
    with the session settings the client serves it with (:func:`electra_model.client.exported.open_session`)."""
    meta = read_meta(Path(onnx_dir))
    ids = np.random.default_rng(0).integers(5, meta["vocab_size"], size=(1, meta["max_len"]), dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    feed = {name: feed[name] for name in meta["inputs"]}
    sessions = {
        name: open_session(Path(onnx_dir) / entry["file"], [CPU], threads) for name, entry in meta["variants"].items()
    }
    calls = {name: (lambda session=session: session.run([OUTPUT_NAME], feed)) for name, session in sessions.items()}
    return {name: latency_summary(seconds, 1) for name, seconds in block_timings(calls, runs).items()}


def choose_cpu_variant(
    variants: Mapping[str, Mapping[str, Any]], export: ExportParams, metric: str = "f1", higher_is_better: bool = True
) -> tuple[str, str]:
    """The variant to serve on CPU and why: ``export.serve_variant``, or with ``auto`` the fastest at batch 1
    (``latency_ms_b1``) among those whose ``metric`` (the task's quality score: entity F1, accuracy) is within
    ``export.max_f1_drop`` of the fp32 export's, on the worse side of it as ``higher_is_better`` says."""
    if export.serve_variant != "auto":
        return export.serve_variant, f"{export.serve_variant}: set by export.serve_variant"
    drop = export.max_f1_drop if higher_is_better else -export.max_f1_drop
    bar = variants["fp32"][metric] - drop
    eligible = [name for name in CPU_VARIANTS if at_least_as_good(variants[name][metric], bar, higher_is_better)]
    fastest = min(eligible, key=lambda name: variants[name]["latency_ms_b1"])
    timings = ", ".join(f"{name} {variants[name]['latency_ms_b1']:.2f} ms" for name in CPU_VARIANTS)
    return fastest, (
        f"{fastest}: fastest at batch 1 ({timings}) of {eligible}, the variants whose {metric} is within "
        f"max_f1_drop {export.max_f1_drop} of fp32's {variants['fp32'][metric]:.4f}"
    )


def set_cpu_variant(onnx_dir: Path | str, variant: str, variants: Mapping[str, Mapping[str, Any]]) -> None:
    """Record the CPU choice and each variant's measurements in ``model_meta.json``, which travels with the
    registered model, so a client sees what it runs and what the alternatives scored."""
    path = Path(onnx_dir) / META_FILE
    meta = read_meta(Path(onnx_dir))
    meta["cpu_variant"] = variant
    meta["variants"] = {name: {**entry, **variants.get(name, {})} for name, entry in meta["variants"].items()}
    write_json(path, meta)


def summarize(results: Mapping[str, Mapping[str, Any]], variant: str, atol: float, spec: TaskSpec) -> dict[str, Any]:
    """What the registry gate and ``metrics/export.json`` read: the served variant's scores (``spec``'s), and parity
    of the two fp32 graphs (the worse of the two), since either failing means the export does not compute the
    model."""
    served = results[variant]
    metric = spec.quality_metric
    diff = max(results[name]["max_abs_logit_diff"] for name in EXACT_VARIANTS)
    identical = all(results[name]["labels_identical"] for name in EXACT_VARIANTS)
    return {
        "task": spec.name,
        "metric": metric,
        "higher_is_better": spec.higher_is_better,
        "score": served[metric],
        "scores": {name: served[name] for name in spec.scores},
        "serve_variant": variant,
        "max_abs_logit_diff": diff,
        "labels_identical": identical,
        "parity_passed": diff <= atol and identical,
        "parity_atol": atol,
    }


def check_and_choose(
    model_dir: Path | str,
    onnx_dir: Path | str,
    examples: Sequence[Any],
    batch_size: int,
    export: ExportParams,
    split: str,
) -> ExportQuality:
    """Everything the export stage decides after exporting: check every variant on ``examples`` (the ``split``
    that may choose: validation), time it, choose the CPU variant and record the choice in the directory."""
    spec = exported_spec(onnx_dir)
    results = check_variants(model_dir, onnx_dir, examples, batch_size)
    latency = measure_latency(onnx_dir, export.latency_runs)
    variants = {
        name: {**scores, "latency_ms_b1": latency[name]["median_ms"], "latency_ms_b1_p95": latency[name]["p95_ms"]}
        for name, scores in results.items()
    }
    variant, reason = choose_cpu_variant(variants, export, spec.quality_metric, spec.higher_is_better)
    set_cpu_variant(onnx_dir, variant, variants)
    return ExportQuality(
        **summarize(results, variant, export.parity_atol, spec),
        serve_reason=reason,
        variants=variants,
        fused_operators=read_meta(Path(onnx_dir))["fused_operators"],
        selection_split=split,
    )
