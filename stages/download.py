"""DVC stage `download`: fetch the corpus and the NER data from the configured source, normalized.

Outputs: the corpus folder (``*.txt``, plain text, one paragraph per line) and the NER folder
(``{train,valid,test}.txt``, CoNLL, IOB2), at the paths dvc.yaml's ``cmd`` gives. Run with ``dvc repro download``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.data.sources import materialize
from electra_model.errors import exit_on_user_error
from electra_model.io import write_json
from electra_model.tracking.runs import flatten, log_dataset, stage_run



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="output: corpus folder")
    parser.add_argument("--ner", type=Path, required=True, help="output: NER folder")
    parser.add_argument("--metrics", type=Path, required=True)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    with stage_run("download", params.tracking, stage_params(params, "download")):
        summary = materialize(params.data, params.seed, args.corpus, args.ner)
        write_json(args.metrics, summary)
        mlflow.log_metrics({k: v for k, v in flatten(summary).items() if isinstance(v, (int, float))})
        log_dataset(args.corpus, name=f"corpus-{params.data.source}", context="pretraining")
        for split in ("train", "valid", "test"):
            log_dataset(args.ner / f"{split}.txt", name=f"ner-{params.data.source}-{split}", context=split)


if __name__ == "__main__":
    main()
