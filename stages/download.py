"""DVC stage `download`: fetch the corpus and the task's data (``task`` in params.yaml) from the configured source,
normalized.

Outputs: the corpus folder (``*.txt``, plain text, one paragraph per line) and the task folder with the splits in
the task's form (NER: ``{train,valid,test}.txt``, CoNLL, IOB2; classification: ``{train,valid,test}.jsonl`` with
``text``, ``pair`` and ``label``), at the paths dvc.yaml's ``cmd`` gives. Run with ``dvc repro download``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.data.remote import DOWNLOAD_CACHE
from electra_model.data.sources import materialize
from electra_model.errors import exit_on_user_error
from electra_model.io import write_json
from electra_model.tasks.catalog import task_for
from electra_model.tracking.runs import flatten, log_dataset, stage_run



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="output: corpus folder")
    parser.add_argument("--task-data", type=Path, required=True, help="output: the task's data folder")
    parser.add_argument("--metrics", type=Path, required=True)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    with stage_run("download", params.tracking, stage_params(params, "download")):
        task = task_for(params)
        task_data = task.load_data(params, DOWNLOAD_CACHE)
        summary = materialize(params.data, params.seed, args.corpus, args.task_data, task_data, DOWNLOAD_CACHE)
        write_json(args.metrics, summary)
        mlflow.log_metrics({k: v for k, v in flatten(summary).items() if isinstance(v, (int, float))})
        log_dataset(args.corpus, name=f"corpus-{params.data.source}", context="pretraining")
        for split in ("train", "valid", "test"):
            log_dataset(task.split_path(args.task_data, split), name=f"{task.name}-{params.data.source}-{split}",
                        context=split)


if __name__ == "__main__":
    main()
