"""DVC stage `finetune`: fine-tuning for the task ``task`` names (params.yaml) on its train split, early-stopped on
valid.

NER trains the ``finetune.head`` model (a CRF head by default; its ``config.json`` names the head, so later stages
load and decode it as trained) and selects on entity F1 (``best_valid_f1``); classification trains a
sequence-classification head and selects on ``classification.selection_metric`` (``best_valid_accuracy`` by
default). Outputs: the model folder (with the tokenizer it was trained with), the training curves (per step) and the
validation curve (the task's validation metrics per epoch), at the paths dvc.yaml's ``cmd`` gives.
Run with ``dvc repro finetune``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.data.tokenizer import as_transformers_tokenizer
from electra_model.errors import exit_on_user_error
from electra_model.io import atomic_dir, write_json
from electra_model.plots import CurveRecorder
from electra_model.tasks.catalog import task_for
from electra_model.tasks.trainers import trainer_for
from electra_model.tracking.runs import DEVICE_TAG, log_dataset, stage_run
from electra_model.training import device_description, resolve_device


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="input: the task's data folder (train and valid)")
    parser.add_argument("--pretrained", type=Path, required=True, help="input: pretrained model folder")
    parser.add_argument("--out", type=Path, required=True, help="output: fine-tuned model folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--curves", type=Path, required=True, help="output: per-step CSV (a PNG is written beside it)")
    parser.add_argument("--valid-curve", type=Path, required=True, help="output: per-epoch validation metrics CSV")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    task = task_for(params)
    with stage_run("finetune", params.tracking, stage_params(params, "finetune")):
        mlflow.set_tag(DEVICE_TAG, device_description(resolve_device(params.finetune.device)))  # for the model card
        curves = CurveRecorder()

        def on_log(step: int, metrics: dict[str, float]) -> None:
            curves(step, metrics)
            mlflow.log_metrics(metrics, step=step)

        finetuned = trainer_for(params).finetune(params, args.pretrained, args.data, on_log)  # reads, checks, then trains
        log_dataset(task.split_path(args.data, "train"), name=f"{task.name}-train", context="train")
        log_dataset(task.split_path(args.data, "valid"), name=f"{task.name}-valid", context="validation")
        with atomic_dir(args.out) as staging:
            finetuned.model.save_pretrained(staging, safe_serialization=True)
            as_transformers_tokenizer(finetuned.tokenizer, params.finetune.max_seq_len).save_pretrained(staging)
        write_json(args.metrics, finetuned.summary)
        curves.write_csv(args.curves, ["train_loss", "learning_rate"])
        curves.write_csv(args.valid_curve, ["epoch", *task.valid_curve])
        curves.save_png(args.curves.with_suffix(".png"), ["train_loss", *task.valid_curve], f"{task.title} fine-tuning")
        mlflow.log_metrics({f"final_{k}": v for k, v in finetuned.summary.items()})
        for path in (args.curves, args.valid_curve, args.curves.with_suffix(".png")):
            mlflow.log_artifact(str(path), artifact_path="plots")


if __name__ == "__main__":
    main()
