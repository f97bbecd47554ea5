"""NER's export checks: every ONNX variant against torch, and scored with entity F1, on CoNLL sentences.

What the export stage runs for an NER model (:class:`NerExporter`, made by :data:`electra_model.tasks.ner.spec.NER`):
the same windows go to torch and to each variant, built and decoded by the serving client itself
(:class:`~electra_model.client.ner.NerPredictor`), so what is compared and scored is what is served::

    results = check_ner_variants(model, Path("models/onnx"), read_conll(Path("data/task/valid.txt")), batch_size=64)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import ElectraForTokenClassification

from electra_model.client.exported import CPU, read_meta
from electra_model.client.ner import CHAIN_FILE, INPUT_NAMES, NerPredictor
from electra_model.client.ner_encoding import pad_batch, word_log_probs
from electra_model.tasks.ner.conll import Sentence, read_conll
from electra_model.errors import ElectraError
from electra_model.tasks.ner.crf import model_chain
from electra_model.tasks.ner.heads import load_finetuned
from electra_model.tasks.ner.metrics import entity_scores


class _Tally:
    """Running comparison of one variant with torch over the evaluation batches."""

    def __init__(self) -> None:
        self.max_diff = 0.0
        self.identical = True
        self.window_scores: list[np.ndarray] = []

    def add(self, logits: np.ndarray, reference: np.ndarray, real: np.ndarray, scores: list[np.ndarray]) -> None:
        self.max_diff = max(self.max_diff, float(np.abs(logits - reference)[real].max()))
        self.identical = self.identical and bool((logits.argmax(-1) == reference.argmax(-1))[real].all())
        self.window_scores.extend(scores)


def check_ner_variants(
    model: ElectraForTokenClassification, onnx_dir: Path | str, sentences: Sequence[Sentence], batch_size: int
) -> dict[str, dict[str, Any]]:
    """Compare every variant's logits with torch's on real inputs (padding included, where export bugs hide) and
    score each with entity F1 through the serving client's own windows and decoding, since the ONNX model, not the
    torch one, is what gets registered and served. ``sentences`` is the selection split (validation): these
    figures choose the served variant and gate the alias.

    Per variant: ``max_abs_logit_diff`` and ``labels_identical`` over every real token, and ``f1``, ``precision``,
    ``recall``. Parity (within ``parity_atol``, identical labels) is asked of the fp32 variants only, see
    :func:`electra_model.export.choose.summarize`.
    """
    if not sentences:
        raise ElectraError("the export check got no validation sentences; check data/task/valid.txt")
    predictors = _predictors(onnx_dir, batch_size)
    windows = predictors["fp32"].windows([list(sentence.tokens) for sentence in sentences])
    tallies = {name: _Tally() for name in predictors}
    for first in range(0, len(windows), batch_size):
        encoded = [window.encoded for window in windows[first : first + batch_size]]
        feed = pad_batch(encoded, predictors["fp32"].pad_id)
        with torch.no_grad():
            reference = model(**{name: torch.from_numpy(feed[name]) for name in INPUT_NAMES}).logits.numpy()
        real = feed["attention_mask"].astype(bool)
        for name, predictor in predictors.items():
            logits = predictor.logits(encoded)
            tallies[name].add(logits, reference, real, word_log_probs(logits, encoded))
    gold = [sentence.tags for sentence in sentences]
    lengths = [len(sentence.tokens) for sentence in sentences]
    results = {}
    for name, tally in tallies.items():
        decoded = predictors[name].decode(windows, tally.window_scores, lengths)
        overall = entity_scores(gold, [tags for tags, _ in decoded])["overall"]
        results[name] = {
            "max_abs_logit_diff": tally.max_diff,
            "labels_identical": tally.identical,
            "f1": overall["f1"],
            "precision": overall["precision"],
            "recall": overall["recall"],
        }
    return results


def _predictors(onnx_dir: Path | str, batch_size: int) -> dict[str, NerPredictor]:
    """One CPU predictor per exported variant."""
    variants = read_meta(Path(onnx_dir))["variants"]
    return {
        name: NerPredictor.from_dir(onnx_dir, providers=[CPU], variant=name, batch_size=batch_size) for name in variants
    }


def score_ner_variants(onnx_dir: Path | str, sentences: Sequence[Sentence], batch_size: int) -> dict[str, dict[str, float]]:
    """Entity F1, precision and recall of every variant on a reporting split (test), through the client as
    served."""
    gold = [sentence.tags for sentence in sentences]
    words = [list(sentence.tokens) for sentence in sentences]
    scores = {}
    for name, predictor in _predictors(onnx_dir, batch_size).items():
        overall = entity_scores(gold, predictor.tag_words(words))["overall"]
        scores[name] = {key: overall[key] for key in ("f1", "precision", "recall")}
    return scores


class NerExporter:
    """The torch side of NER's export (:class:`electra_model.tasks.spec.Exporter`)."""

    def load_model(self, model_dir: Path, **options: Any) -> ElectraForTokenClassification:
        return load_finetuned(model_dir, **options)

    def extra_files(self, model: ElectraForTokenClassification, labels: Sequence[str]) -> dict[str, Any]:
        """A CRF head's learned chain (the graphs output emissions only; the client's Viterbi adds the chain)."""
        chain = model_chain(model)
        return {} if chain is None else {CHAIN_FILE: {"labels": list(labels), **chain.to_lists()}}

    def read_split(self, path: Path) -> list[Sentence]:
        return read_conll(path, scheme="iob2")

    def check_variants(
        self, model: ElectraForTokenClassification, onnx_dir: Path, examples: Sequence[Sentence], batch_size: int
    ) -> dict[str, dict[str, Any]]:
        return check_ner_variants(model, onnx_dir, examples, batch_size)

    def score_variants(self, onnx_dir: Path, examples: Sequence[Sentence], batch_size: int) -> dict[str, dict[str, float]]:
        return score_ner_variants(onnx_dir, examples, batch_size)
