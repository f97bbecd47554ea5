"""DVC stage `evaluate`: entity-level and token-level scores of the fine-tuned model on the held-out split.

Outputs: ``metrics/evaluate.json`` (entity P/R/F1 overall, macro and per type; token accuracy) and
``reports/evaluate/`` (token-level reports with and without ``O``, predictions in conlleval format).
Run with ``dvc repro evaluate``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from transformers import ElectraForTokenClassification

from electra_model.config import load_params
from electra_model.data.conll import read_conll
from electra_model.errors import exit_on_user_error
from electra_model.finetune import predict_tags
from electra_model.io import atomic_dir, write_json
from electra_model.metrics import entity_scores, token_scores
from electra_model.tokenizer import load_backend_tokenizer
from electra_model.tracking import flatten, log_dataset, stage_run

NER_DIR = Path("data/ner")
MODEL_DIR = Path("models/ner")
METRICS = Path("metrics/evaluate.json")
REPORTS = Path("reports/evaluate")


@exit_on_user_error
def main() -> None:
    params = load_params()
    with stage_run("evaluate", params.tracking, {"evaluate": params.evaluate.model_dump(), "finetune.max_seq_len": params.finetune.max_seq_len}):
        split_path = NER_DIR / f"{params.evaluate.split}.txt"
        sentences = read_conll(split_path, scheme="iob2")
        log_dataset(split_path, name=f"ner-{params.evaluate.split}", context="evaluation")
        model = ElectraForTokenClassification.from_pretrained(MODEL_DIR)
        tokenizer = load_backend_tokenizer(MODEL_DIR)
        predicted = predict_tags(
            model, tokenizer, sentences, params.finetune.max_seq_len, params.evaluate.batch_size
        )
        gold = [s.tags for s in sentences]
        entities = entity_scores(gold, predicted)
        tokens = token_scores(gold, predicted)
        metrics = {"split": params.evaluate.split, "sentences": len(sentences), "entity": entities,
                   "token_accuracy": tokens["accuracy"]}
        with atomic_dir(REPORTS) as staging:
            (staging / "token_report.txt").write_text(str(tokens["report_with_o"]), encoding="utf-8")
            (staging / "token_report_without_o.txt").write_text(str(tokens["report_without_o"]), encoding="utf-8")
            lines = []
            for sentence, tags in zip(sentences, predicted):
                lines += [f"{word} {gold_tag} {tag}" for word, gold_tag, tag in zip(sentence.tokens, sentence.tags, tags)]
                lines.append("")
            (staging / "predictions.conll").write_text("\n".join(lines), encoding="utf-8")
        write_json(METRICS, metrics)
        mlflow.log_metrics({k: v for k, v in flatten(metrics).items() if isinstance(v, float)})
        mlflow.log_artifacts(str(REPORTS), artifact_path="reports")


if __name__ == "__main__":
    main()
