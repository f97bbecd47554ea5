"""DVC stage `download`: fetch the corpus and the NER data from the configured source, normalized.

Outputs: ``data/corpus/*.txt`` (plain text, one paragraph per line) and ``data/ner/{train,valid,test}.txt``
(CoNLL, IOB2). Run with ``dvc repro download``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from electra_model.config import load_params
from electra_model.data.sources import materialize
from electra_model.errors import exit_on_user_error
from electra_model.io import write_json
from electra_model.tracking import flatten, log_dataset, stage_run

CORPUS_DIR = Path("data/corpus")
NER_DIR = Path("data/ner")
METRICS = Path("metrics/download.json")


@exit_on_user_error
def main() -> None:
    params = load_params()
    with stage_run("download", params.tracking, {"seed": params.seed, "data": params.data.model_dump()}):
        summary = materialize(params.data, params.seed, CORPUS_DIR, NER_DIR)
        write_json(METRICS, summary)
        mlflow.log_metrics({k: v for k, v in flatten(summary).items() if isinstance(v, (int, float))})
        log_dataset(CORPUS_DIR, name=f"corpus-{params.data.source}", context="pretraining")
        for split in ("train", "valid", "test"):
            log_dataset(NER_DIR / f"{split}.txt", name=f"ner-{params.data.source}-{split}", context=split)


if __name__ == "__main__":
    main()
