"""DVC stage `export`: ONNX variants (fp32, optimized fp32, int8, fp16), each checked against torch on the
validation split, the CPU variant chosen, and registration as ``export.model_name``.

Everything that chooses reads validation only: the served variant and the alias (``export.alias``, default
``champion``), which moves to the new version only if the fp32 graphs match torch and the validation entity F1 of
the variant served on CPU reaches ``export.min_f1`` and is not below the current champion's. The reporting split
(``evaluate.split``, test by default) is scored afterwards, for the record only.
Outputs: ``models/onnx`` and ``metrics/export.json`` (``f1`` is the served variant's on ``selection_split``;
``variants`` holds every variant's F1, logit difference and batch-1 latency; ``report`` every variant's scores on
``report_split``; ``fused_operators`` the optimizer's fusions). Run with ``dvc repro export``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from electra_model.config import load_params
from electra_model.data.conll import read_conll
from electra_model.errors import exit_on_user_error
from electra_model.export import check_and_choose, export_onnx, score_variants
from electra_model.io import write_json
from electra_model.registry import register
from electra_model.tracking import stage_run

NER_DIR = Path("data/ner")
MODEL_DIR = Path("models/ner")
ONNX_DIR = Path("models/onnx")
METRICS = Path("metrics/export.json")
SELECTION_SPLIT = "valid"


def run_metrics(quality: dict) -> dict[str, float]:
    """The served variant's F1 and parity, and every variant's numbers as ``<variant>_<measure>``."""
    metrics = {key: float(quality[key]) for key in ("f1", "max_abs_logit_diff", "parity_passed")}
    for name, measures in quality["variants"].items():
        metrics.update({f"{name}_{key}": float(value) for key, value in measures.items()})
    return metrics


@exit_on_user_error
def main() -> None:
    params = load_params()
    export = params.export
    report_split = params.evaluate.split
    with stage_run("export", params.tracking, {"export": export.model_dump(), "evaluate.split": report_split}):
        selection = read_conll(NER_DIR / f"{SELECTION_SPLIT}.txt", scheme="iob2")
        export_onnx(MODEL_DIR, ONNX_DIR, export.opset, params.finetune.max_seq_len)
        quality = {**check_and_choose(MODEL_DIR, ONNX_DIR, selection, params.evaluate.batch_size, export),
                   "selection_split": SELECTION_SPLIT}
        mlflow.log_metrics(run_metrics(quality))
        registration = register(ONNX_DIR, export, quality)
        report = score_variants(ONNX_DIR, read_conll(NER_DIR / f"{report_split}.txt", scheme="iob2"),
                                params.evaluate.batch_size)
        mlflow.log_metrics({f"{report_split}_{name}_f1": scores["f1"] for name, scores in report.items()})
        write_json(METRICS, {**quality, "sentences": len(selection), "registered_version": int(registration["version"]),
                             "alias_moved": registration["alias_moved"], "report_split": report_split,
                             "report": report})
        mlflow.set_tags({"registered_model": registration["name"], "registered_version": registration["version"],
                         "champion_reason": registration["reason"], "serve_variant": quality["serve_variant"]})


if __name__ == "__main__":
    main()
