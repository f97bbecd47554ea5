"""DVC stage `tokenizer`: train a cased WordPiece vocabulary on the corpus.

Output: ``models/tokenizer`` (loads with ``AutoTokenizer.from_pretrained``). Run with ``dvc repro tokenizer``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from electra_model.config import load_params
from electra_model.errors import exit_on_user_error
from electra_model.io import atomic_dir, write_json
from electra_model.tokenizer import as_transformers_tokenizer, corpus_lines, train_wordpiece
from electra_model.tracking import stage_run

CORPUS_DIR = Path("data/corpus")
TOKENIZER_DIR = Path("models/tokenizer")
METRICS = Path("metrics/tokenizer.json")


@exit_on_user_error
def main() -> None:
    params = load_params()
    stage_params = {"tokenizer": params.tokenizer.model_dump(), "pretrain.max_seq_len": params.pretrain.max_seq_len}
    with stage_run("tokenizer", params.tracking, stage_params):
        settings = params.tokenizer
        tokenizer = train_wordpiece(
            corpus_lines(CORPUS_DIR), settings.vocab_size, settings.min_frequency, settings.lowercase
        )
        with atomic_dir(TOKENIZER_DIR) as staging:
            as_transformers_tokenizer(tokenizer, params.pretrain.max_seq_len).save_pretrained(staging)
        metrics = {"vocab_size": tokenizer.get_vocab_size()}
        write_json(METRICS, metrics)
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(TOKENIZER_DIR), artifact_path="tokenizer")


if __name__ == "__main__":
    main()
