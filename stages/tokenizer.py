"""DVC stage `tokenizer`: train a cased WordPiece vocabulary on the corpus.

Output: a tokenizer folder (loads with ``AutoTokenizer.from_pretrained``) at the path dvc.yaml's ``cmd`` gives.
Run with ``dvc repro tokenizer``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.errors import exit_on_user_error
from electra_model.io import atomic_dir, write_json
from electra_model.data.tokenizer import CorpusLines, as_transformers_tokenizer, train_wordpiece
from electra_model.tracking.runs import stage_run



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="input: corpus folder")
    parser.add_argument("--out", type=Path, required=True, help="output: tokenizer folder")
    parser.add_argument("--metrics", type=Path, required=True)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    with stage_run("tokenizer", params.tracking, stage_params(params, "tokenizer")):
        settings = params.tokenizer
        tokenizer = train_wordpiece(
            CorpusLines(args.corpus), settings.vocab_size, settings.min_frequency, settings.lowercase
        )
        with atomic_dir(args.out) as staging:
            as_transformers_tokenizer(tokenizer, params.pretrain.max_seq_len).save_pretrained(staging)
        metrics = {"vocab_size": tokenizer.get_vocab_size()}
        write_json(args.metrics, metrics)
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(args.out), artifact_path="tokenizer")


if __name__ == "__main__":
    main()
