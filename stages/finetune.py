"""DVC stage `finetune`: token-classification fine-tuning on the NER train split, early-stopped on valid.

Output: ``models/ner`` (``ElectraForTokenClassification`` with the tokenizer it was trained with), the training
curves ``plots/finetune.csv`` (per step) and ``plots/finetune_valid.csv`` (validation entity F1 per epoch).
Run with ``dvc repro finetune``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from electra_model.config import load_params
from electra_model.curves import CurveRecorder
from electra_model.data.conll import check_labels_known, read_conll
from electra_model.errors import exit_on_user_error
from electra_model.finetune import finetune
from electra_model.io import atomic_dir, write_json
from electra_model.tokenizer import as_transformers_tokenizer
from electra_model.tracking import log_dataset, stage_run

NER_DIR = Path("data/ner")
PRETRAINED_DIR = Path("models/pretrained")
MODEL_DIR = Path("models/ner")
METRICS = Path("metrics/finetune.json")
CURVES = Path("plots/finetune.csv")
VALID_CURVE = Path("plots/finetune_valid.csv")


@exit_on_user_error
def main() -> None:
    params = load_params()
    with stage_run("finetune", params.tracking, {"seed": params.seed, "finetune": params.finetune.model_dump()}):
        train = read_conll(NER_DIR / "train.txt", scheme="iob2")
        valid = read_conll(NER_DIR / "valid.txt", scheme="iob2")
        check_labels_known(train, valid, NER_DIR / "valid.txt")
        log_dataset(NER_DIR / "train.txt", name="ner-train", context="train")
        log_dataset(NER_DIR / "valid.txt", name="ner-valid", context="validation")
        curves = CurveRecorder()

        def on_log(step: int, metrics: dict[str, float]) -> None:
            curves(step, metrics)
            mlflow.log_metrics(metrics, step=step)

        model, tokenizer, summary = finetune(params.finetune, params.seed, PRETRAINED_DIR, train, valid, on_log)
        with atomic_dir(MODEL_DIR) as staging:
            model.save_pretrained(staging, safe_serialization=True)
            as_transformers_tokenizer(tokenizer, params.finetune.max_seq_len).save_pretrained(staging)
        write_json(METRICS, summary)
        curves.write_csv(CURVES, ["train_loss", "learning_rate"])
        curves.write_csv(VALID_CURVE, ["epoch", "valid_f1"])
        curves.save_png(CURVES.with_suffix(".png"), ["train_loss", "valid_f1"], "NER fine-tuning")
        mlflow.log_metrics({f"final_{k}": v for k, v in summary.items()})
        for path in (CURVES, VALID_CURVE, CURVES.with_suffix(".png")):
            mlflow.log_artifact(str(path), artifact_path="plots")


if __name__ == "__main__":
    main()
