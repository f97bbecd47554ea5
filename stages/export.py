"""DVC stage `export`: ONNX variants (fp32, optimized fp32, int8, fp16), each checked against torch on the
validation split, the CPU variant chosen, and registration as ``export.model_name`` (null: ``electra-ner`` or
``electra-classifier``, after the model's task).

The task is the model folder's own (its ``config.json`` head: NER or sequence classification), not a param, so the
stage exports whatever the finetune stage wrote. Its data folder holds the splits as the task writes them
(``valid.txt`` CoNLL for NER, ``valid.jsonl`` with text/pair/label for a classifier); ``--valid`` names the
selection split's file directly instead.
Everything that chooses reads validation only: the served variant and the alias (``export.alias``, default
``champion``), which moves to the new version only if the fp32 graphs match torch and the validation quality score
(entity F1 for NER, accuracy for a classifier) of the variant served on CPU reaches ``export.min_f1`` and is not
below the current champion's. The reporting split (``evaluate.split``, test by default) is scored afterwards, for
the record only.
Outputs, at the paths dvc.yaml's ``cmd`` gives: the ONNX folder and the metrics JSON (``score`` is the served
variant's ``metric`` on ``selection_split``, also listed under its own name, ``f1`` or ``accuracy``; ``variants``
holds every variant's scores, logit difference and batch-1 latency; ``report`` every variant's scores on
``report_split``; ``fused_operators`` the optimizer's fusions). Run with ``dvc repro export``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.errors import exit_on_user_error
from electra_model.export.build import export_onnx, model_spec
from electra_model.export.choose import check_and_choose, score_variants
from electra_model.export.result import ExportQuality
from electra_model.export.splits import read_split, split_path
from electra_model.io import write_json
from electra_model.tasks.registry import register_plugins
from electra_model.tracking.registry import register
from electra_model.tracking.runs import stage_run

SELECTION_SPLIT = "valid"


def run_metrics(quality: ExportQuality) -> dict[str, float]:
    """The served variant's scores and parity, and every variant's numbers as ``<variant>_<measure>``."""
    metrics = {**quality.scores, "max_abs_logit_diff": quality.max_abs_logit_diff,
               "parity_passed": float(quality.parity_passed)}
    for name, measures in quality.variants.items():
        metrics.update({f"{name}_{key}": float(value) for key, value in measures.items()})
    return metrics


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True,
                        help="input: task data folder (valid.txt|.jsonl chooses, the evaluate.split file reports)")
    parser.add_argument("--valid", type=Path, help="input: the selection split's file instead of the one in --data")
    parser.add_argument("--model", type=Path, required=True, help="input: fine-tuned model folder")
    parser.add_argument("--out", type=Path, required=True, help="output: ONNX folder")
    parser.add_argument("--metrics", type=Path, required=True)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    export = params.export
    report_split = params.evaluate.split
    register_plugins(params.plugins)
    spec = model_spec(args.model)
    with stage_run("export", params.tracking, stage_params(params, "export")):
        selection = read_split(args.valid or split_path(args.data, SELECTION_SPLIT, spec), spec)
        export_onnx(args.model, args.out, export.opset, params.finetune.max_seq_len, export.limits)
        quality = check_and_choose(args.model, args.out, selection, params.evaluate.batch_size, export,
                                   split=SELECTION_SPLIT)
        mlflow.log_metrics(run_metrics(quality))
        registration = register(args.out, export, quality)
        report = score_variants(args.out, read_split(split_path(args.data, report_split, spec), spec),
                                params.evaluate.batch_size)
        mlflow.log_metrics({f"{report_split}_{name}_{quality.metric}": scores[quality.metric]
                            for name, scores in report.items()})
        write_json(args.metrics, {**quality.to_dict(), "examples": len(selection),
                                  "registered_version": int(registration["version"]),
                                  "alias_moved": registration["alias_moved"], "report_split": report_split,
                                  "report": report})
        mlflow.set_tags({"registered_model": registration["name"], "registered_version": registration["version"],
                         "champion_reason": registration["reason"], "serve_variant": quality.serve_variant})


if __name__ == "__main__":
    main()
