"""DVC stage `evaluate`: entity-level and token-level scores of the fine-tuned model on the held-out split.

Reported, never used to choose anything. Headline ``entity_f1``: tags decoded as the model's own decoding, as the
client decodes them (the best valid IOB2 sequence, with the learned transitions of a CRF head; ``head`` says which);
``entity_f1_argmax``: per-word argmax of the same scores; ``raw_text_entity_f1``: each
sentence typed as plain text and run through the client's predictor, its entities mapped back onto the gold words.
Outputs, at the paths dvc.yaml's ``cmd`` gives: the metrics JSON (those three; entity P/R/F1 overall (micro),
macro and per type; token accuracy; error counts; raw-text word-cut disagreements), the confusion plot (CSV and
PNG: gold vs predicted entity type per token) and the reports folder: ``conlleval.txt`` (the conlleval report), ``predictions.txt`` (``word gold guess``, re-scorable with
``electra score``), ``token_report.txt`` / ``token_report_without_o.txt``, ``confusion_matrix.json`` and
``errors.json`` / ``errors.txt`` (boundary vs type vs missed vs spurious), ``raw_text.txt`` (where the client's word
cut differs from the data's, most frequent first). Run with ``dvc repro evaluate``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.tasks.ner.conlleval import count_chunks, report, sequence_rows
from electra_model.data.conll import Sentence, read_conll
from electra_model.tasks.ner.error_analysis import analyse, render
from electra_model.errors import exit_on_user_error
from electra_model.tasks.ner.crf import model_chain
from electra_model.tasks.ner.finetune import model_labels, predict_word_log_probs
from electra_model.tasks.ner.heads import head_name, load_finetuned
from electra_model.io import atomic_dir, atomic_file, write_json
from electra_model.plots import save_confusion_png
from electra_model.tasks.ner.metrics import entity_scores, entity_type, token_scores, type_confusion
from electra_model.tasks.ner.raw_text_eval import RawTextResult, raw_text_tags, torch_predictor
from electra_model.tasks.ner.tag_decoding import ARGMAX, CONSTRAINED, decode_tags
from electra_model.data.tokenizer import load_backend_tokenizer
from electra_model.tracking.runs import flatten, log_dataset, stage_run



def write_reports(staging: Path, sentences: list[Sentence], predicted: list[list[str]], top: int) -> dict:
    """Every human-readable report into ``staging``; returns the error analysis for the metrics."""
    gold = [s.tags for s in sentences]
    tokens = token_scores(gold, predicted)
    (staging / "token_report.txt").write_text(str(tokens["report_with_o"]), encoding="utf-8")
    (staging / "token_report_without_o.txt").write_text(str(tokens["report_without_o"]), encoding="utf-8")
    (staging / "conlleval.txt").write_text(report(count_chunks(sequence_rows(gold, predicted))), encoding="utf-8")
    lines = [
        line
        for sentence, tags in zip(sentences, predicted)
        for line in (*(f"{w} {g} {p}" for w, g, p in zip(sentence.tokens, sentence.tags, tags)), "")
    ]
    (staging / "predictions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    confusion = type_confusion(gold, predicted)
    (staging / "confusion_matrix.json").write_text(json.dumps(confusion, indent=2), encoding="utf-8")
    errors = analyse(sentences, predicted, top)
    (staging / "errors.json").write_text(json.dumps(errors, indent=2, ensure_ascii=False), encoding="utf-8")
    (staging / "errors.txt").write_text(render(errors), encoding="utf-8")
    return {"token_accuracy": tokens["accuracy"], "errors": errors["counts"]}


def write_confusion_plots(gold: list[tuple[str, ...]], predicted: list[list[str]], csv_path: Path) -> None:
    """One ``actual,predicted`` row per token for DVC's confusion template, and the same matrix as a PNG beside it."""
    with atomic_file(csv_path) as handle:
        writer = csv.writer(handle)
        writer.writerow(["actual", "predicted"])
        for gold_tags, tags in zip(gold, predicted):
            writer.writerows((entity_type(g), entity_type(p)) for g, p in zip(gold_tags, tags))
    save_confusion_png(type_confusion(gold, predicted), csv_path.with_suffix(".png"), "entity type per token")


def render_raw_text(result: RawTextResult, sentences: int) -> str:
    """Where the client's word cut of the typed text differs from the data's words."""
    lines = [f"{result.sentences_split_differently} of {sentences} sentences split differently from the data", ""]
    lines += [f"{count:6d}  data: {gold!r:40}  client: {got!r}" for gold, got, count in result.disagreements]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="input: NER folder (the split is evaluate.split)")
    parser.add_argument("--model", type=Path, required=True, help="input: fine-tuned model folder")
    parser.add_argument("--reports", type=Path, required=True, help="output: reports folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--confusion", type=Path, required=True, help="output: confusion CSV (a PNG is written beside)")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    finetune = params.finetune
    with stage_run("evaluate", params.tracking, stage_params(params, "evaluate")):
        split_path = args.data / f"{params.evaluate.split}.txt"
        sentences = read_conll(split_path, scheme="iob2")
        log_dataset(split_path, name=f"ner-{params.evaluate.split}", context="evaluation")
        model = load_finetuned(args.model)
        tokenizer = load_backend_tokenizer(args.model)
        batch_size = params.evaluate.batch_size
        scores = predict_word_log_probs(
            model, tokenizer, sentences, finetune.max_seq_len, batch_size, finetune.document_context
        )
        predicted = decode_tags(scores, model_labels(model), CONSTRAINED, model_chain(model))
        argmax = decode_tags(scores, model_labels(model), ARGMAX)
        raw = raw_text_tags(torch_predictor(model, tokenizer, finetune.max_seq_len, batch_size), sentences)
        gold = [s.tags for s in sentences]
        with atomic_dir(args.reports) as staging:
            extra = write_reports(staging, sentences, predicted, params.evaluate.top_confusions)
            (staging / "raw_text.txt").write_text(render_raw_text(raw, len(sentences)), encoding="utf-8")
        write_confusion_plots(gold, predicted, args.confusion)
        entity = entity_scores(gold, predicted)
        metrics = {
            "split": params.evaluate.split,
            "head": head_name(model.config, args.model),
            "sentences": len(sentences),
            "entity_f1": entity["overall"]["f1"],
            "entity_f1_argmax": entity_scores(gold, argmax)["overall"]["f1"],
            "raw_text_entity_f1": entity_scores(gold, raw.tags)["overall"]["f1"],
            "raw_text_sentences_split_differently": raw.sentences_split_differently,
            "entity": entity,
            **extra,
        }
        write_json(args.metrics, metrics)
        mlflow.log_metrics({k: float(v) for k, v in flatten(metrics).items() if isinstance(v, (int, float))})
        mlflow.log_artifacts(str(args.reports), artifact_path="reports")
        mlflow.log_artifact(str(args.confusion.with_suffix(".png")), artifact_path="plots")


if __name__ == "__main__":
    main()
