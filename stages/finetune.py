"""DVC stage `finetune`: token-classification fine-tuning on the NER train split, early-stopped on valid.

Output: the model folder (the ``finetune.head`` model, a CRF head by default, with the tokenizer it was trained
with; its ``config.json`` names the head, so later stages load and decode it as trained), the training
curves (per step) and the validation curve (entity F1 per epoch), at the paths dvc.yaml's ``cmd`` gives.
Run with ``dvc repro finetune``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.plots import CurveRecorder
from electra_model.data.conll import check_labels_known, read_conll
from electra_model.errors import exit_on_user_error
from electra_model.tasks.ner.finetune import finetune
from electra_model.io import atomic_dir, write_json
from electra_model.data.tokenizer import as_transformers_tokenizer
from electra_model.tracking.runs import log_dataset, stage_run



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=Path, required=True, help="input: CoNLL training split (IOB2)")
    parser.add_argument("--valid", type=Path, required=True, help="input: CoNLL validation split (IOB2)")
    parser.add_argument("--pretrained", type=Path, required=True, help="input: pretrained model folder")
    parser.add_argument("--out", type=Path, required=True, help="output: fine-tuned model folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--curves", type=Path, required=True, help="output: per-step CSV (a PNG is written beside it)")
    parser.add_argument("--valid-curve", type=Path, required=True, help="output: per-epoch validation F1 CSV")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    with stage_run("finetune", params.tracking, stage_params(params, "finetune")):
        train = read_conll(args.train, scheme="iob2")
        valid = read_conll(args.valid, scheme="iob2")
        check_labels_known(train, valid, args.valid)
        log_dataset(args.train, name="ner-train", context="train")
        log_dataset(args.valid, name="ner-valid", context="validation")
        curves = CurveRecorder()

        def on_log(step: int, metrics: dict[str, float]) -> None:
            curves(step, metrics)
            mlflow.log_metrics(metrics, step=step)

        model, tokenizer, summary = finetune(params.finetune, params.seed, args.pretrained, train, valid, on_log)
        with atomic_dir(args.out) as staging:
            model.save_pretrained(staging, safe_serialization=True)
            as_transformers_tokenizer(tokenizer, params.finetune.max_seq_len).save_pretrained(staging)
        write_json(args.metrics, summary)
        curves.write_csv(args.curves, ["train_loss", "learning_rate"])
        curves.write_csv(args.valid_curve, ["epoch", "valid_f1"])
        curves.save_png(args.curves.with_suffix(".png"), ["train_loss", "valid_f1"], "NER fine-tuning")
        mlflow.log_metrics({f"final_{k}": v for k, v in summary.items()})
        for path in (args.curves, args.valid_curve, args.curves.with_suffix(".png")):
            mlflow.log_artifact(str(path), artifact_path="plots")


if __name__ == "__main__":
    main()
