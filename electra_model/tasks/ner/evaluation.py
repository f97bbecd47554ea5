"""NER's evaluation: entity-level and token-level scores of a fine-tuned model on a held-out split, and its reports.

Headline ``entity_f1``: tags decoded as the model's own decoding, as the client decodes them (the best valid IOB2
sequence, with the learned transitions of a CRF head; ``head`` says which); ``entity_f1_argmax``: per-word argmax
of the same scores; ``raw_text_entity_f1``: each sentence typed as plain text and run through the client's
predictor, its entities mapped back onto the gold words. The reports: ``conlleval.txt`` (the conlleval report),
``predictions.txt`` (``word gold guess``, re-scorable with ``electra score``), ``token_report.txt`` /
``token_report_without_o.txt``, ``confusion_matrix.json`` and ``errors.json`` / ``errors.txt`` (boundary vs type vs
missed vs spurious), ``raw_text.txt`` (where the client's word cut differs from the data's, most frequent first).
The confusion plot is gold vs predicted entity type per token.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from electra_model.config import Params
from electra_model.tasks.ner.conll import Sentence, read_conll
from electra_model.data.tokenizer import load_backend_tokenizer
from electra_model.io import atomic_file
from electra_model.plots import save_confusion_png
from electra_model.tasks.ner.conlleval import count_chunks, report, sequence_rows
from electra_model.tasks.ner.crf import model_chain
from electra_model.tasks.ner.error_analysis import analyse, render
from electra_model.tasks.ner.finetune import model_labels, predict_word_log_probs
from electra_model.tasks.ner.heads import head_name, load_finetuned
from electra_model.tasks.ner.metrics import entity_scores, entity_type, token_scores, type_confusion
from electra_model.tasks.ner.raw_text_eval import RawTextResult, raw_text_tags, torch_predictor
from electra_model.client.tag_decoding import ARGMAX, CONSTRAINED, decode_tags


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


class NerEvaluator:
    """NER's :class:`electra_model.tasks.base.Evaluator`."""

    def evaluate(
        self, params: Params, model_dir: Path, split_path: Path, split: str, reports: Path, confusion: Path
    ) -> dict[str, Any]:
        return evaluate_ner(params, model_dir, split_path, split, reports, confusion)


def evaluate_ner(
    params: Params, model_dir: Path, split_path: Path, split: str, reports: Path, confusion: Path
) -> dict[str, Any]:
    """Score the model on ``split`` (the CoNLL file ``split_path``); write the reports and the confusion plot;
    return the metrics."""
    finetune = params.finetune
    sentences = read_conll(split_path, scheme="iob2")
    model = load_finetuned(model_dir)
    tokenizer = load_backend_tokenizer(model_dir)
    batch_size = params.evaluate.batch_size
    scores = predict_word_log_probs(model, tokenizer, sentences, finetune.max_seq_len, batch_size, finetune.document_context)
    predicted = decode_tags(scores, model_labels(model), CONSTRAINED, model_chain(model))
    argmax = decode_tags(scores, model_labels(model), ARGMAX)
    raw = raw_text_tags(torch_predictor(model, tokenizer, finetune.max_seq_len, batch_size), sentences)
    gold = [s.tags for s in sentences]
    extra = write_reports(reports, sentences, predicted, params.evaluate.top_confusions)
    (reports / "raw_text.txt").write_text(render_raw_text(raw, len(sentences)), encoding="utf-8")
    write_confusion_plots(gold, predicted, confusion)
    entity = entity_scores(gold, predicted)
    raw_text_entity = entity_scores(gold, raw.tags)
    return {
        "split": split,
        "head": head_name(model.config, model_dir),
        "sentences": len(sentences),
        "entity_f1": entity["overall"]["f1"],
        "entity_f1_argmax": entity_scores(gold, argmax)["overall"]["f1"],
        "raw_text_entity_f1": raw_text_entity["overall"]["f1"],
        "raw_text_sentences_split_differently": raw.sentences_split_differently,
        "entity": entity,
        "raw_text_entity": raw_text_entity,  # per type too: the model card's raw-text column
        **extra,
    }
