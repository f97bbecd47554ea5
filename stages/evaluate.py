"""DVC stage `evaluate`: the fine-tuned model's scores on the held-out split (``evaluate.split``), for the task
``task`` names (params.yaml). Reported, never used to choose anything.

NER (:mod:`electra_model.tasks.ner.evaluation`): headline ``entity_f1`` (the model's own decoding),
``entity_f1_argmax`` and ``raw_text_entity_f1``; entity P/R/F1 overall, macro and per type, token accuracy, error
counts; reports ``conlleval.txt``, ``predictions.txt``, token reports, ``confusion_matrix.json``, ``errors.json`` /
``errors.txt`` and ``raw_text.txt``. Classification (:mod:`electra_model.tasks.classification.evaluation`):
``accuracy``, ``macro_f1`` and ``per_class`` precision/recall/F1; reports ``confusion_matrix.json``,
``predictions.jsonl`` and the most confident mistakes ``mistakes.json`` / ``mistakes.txt``.
Outputs, at the paths dvc.yaml's ``cmd`` gives: the metrics JSON, the reports folder, and the confusion plot (CSV of
``actual,predicted`` rows for DVC's confusion template, and a PNG beside it). Run with ``dvc repro evaluate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.errors import exit_on_user_error
from electra_model.io import atomic_dir, write_json
from electra_model.tasks.catalog import task_for
from electra_model.tasks.evaluators import evaluator_for
from electra_model.tracking.runs import flatten, log_dataset, stage_run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="input: the task's data folder (split: evaluate.split)")
    parser.add_argument("--model", type=Path, required=True, help="input: fine-tuned model folder")
    parser.add_argument("--reports", type=Path, required=True, help="output: reports folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--confusion", type=Path, required=True, help="output: confusion CSV (a PNG is written beside)")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    task = task_for(params)
    split = params.evaluate.split
    with stage_run("evaluate", params.tracking, stage_params(params, "evaluate")):
        split_path = task.split_path(args.data, split)
        with atomic_dir(args.reports) as staging:
            metrics = evaluator_for(params).evaluate(params, args.model, split_path, split, staging, args.confusion)
        log_dataset(split_path, name=f"{task.name}-{split}", context="evaluation")
        write_json(args.metrics, metrics)
        mlflow.log_metrics({k: float(v) for k, v in flatten(metrics).items() if isinstance(v, (int, float))})
        mlflow.log_artifacts(str(args.reports), artifact_path="reports")
        mlflow.log_artifact(str(args.confusion.with_suffix(".png")), artifact_path="plots")


if __name__ == "__main__":
    main()
