"""Uncertainty from real exported models (the session's tiny fixtures): the measure follows the predictor kind and
head that ``model_meta.json`` and the export record, and each score is the one its definition gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from electra_model.client.loader import load_served
from electra_model.client.selection import score_texts, select
from electra_model.client.text_words import split_words
from electra_model.client.uncertainty import marginal_uncertainty

TEXTS = ["Alice lives in Paris", "the cat sat", "Bob met Alice in Berlin today", "Paris"]


def test_a_classifier_is_ranked_by_margin_or_entropy(classifier_onnx_dir: Path) -> None:
    spec, predictor = load_served(classifier_onnx_dir)
    probabilities = np.array([[r["scores"][label] for label in predictor.labels] for r in predictor.predict(TEXTS)])
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    np.testing.assert_allclose(score_texts(spec.kind, predictor, TEXTS), 1 - (top_two[:, 1] - top_two[:, 0]))
    entropy = -(probabilities * np.log(probabilities)).sum(axis=1)
    np.testing.assert_allclose(score_texts(spec.kind, predictor, TEXTS, "entropy"), entropy)
    chosen = select(spec.kind, predictor, TEXTS, 2)
    assert [score for _, score in chosen] == sorted((1 - (top_two[:, 1] - top_two[:, 0])).tolist(), reverse=True)[:2]


def test_a_softmax_tagger_falls_back_to_the_sequence_probability(pattern_onnx_dir: Path) -> None:
    spec, predictor = load_served(pattern_onnx_dir)
    assert predictor.chain is None
    words = [[word for word, _, _ in split_words(text)] for text in TEXTS]
    expected = [1 - np.exp(scores.max(axis=1).sum()) for scores in predictor.sentence_log_probs(words)]
    np.testing.assert_allclose(score_texts(spec.kind, predictor, TEXTS), expected)


def test_a_crf_tagger_is_ranked_by_its_marginals(crf_pattern_onnx_dir: Path) -> None:
    spec, predictor = load_served(crf_pattern_onnx_dir)
    assert predictor.chain is not None
    words = [[word for word, _, _ in split_words(text)] for text in TEXTS]
    expected = [marginal_uncertainty(s, predictor.scheme, predictor.chain) for s in predictor.sentence_log_probs(words)]
    scores = score_texts(spec.kind, predictor, TEXTS)
    np.testing.assert_allclose(scores, expected)
    assert all(0 <= score <= len(sentence) for score, sentence in zip(scores, words))
    assert [index for index, _ in select(spec.kind, predictor, TEXTS, 4)] == sorted(
        range(4), key=lambda index: (-scores[index], index)
    )


@pytest.mark.parametrize("measure", ["marginal", "sequence"])
def test_either_tagging_measure_can_be_asked_for(crf_pattern_onnx_dir: Path, measure: str) -> None:
    spec, predictor = load_served(crf_pattern_onnx_dir)
    assert score_texts(spec.kind, predictor, TEXTS, measure).shape == (len(TEXTS),)
