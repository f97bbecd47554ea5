"""Which unlabelled texts to label next: a pool file read and checked, each text scored by the exported model's
uncertainty (:mod:`electra_model.client.uncertainty`), the ``k`` least certain chosen, optionally spread out
(:mod:`electra_model.client.diversity`). Torch-free: ``electra select`` and the light client run it on onnxruntime::

    spec, predictor = load_served("models:/electra-ner@champion")
    pool = read_pool(Path("unlabelled.txt"))
    chosen = select(spec.kind, predictor, [item.text for item in pool], k=100)

The measure is looked up by the predictor kind that ``model_meta.json`` records (:attr:`ClientSpec.kind`), never by
task name, so a new task served by the token tagger or the classifier is ranked without a change here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from electra_model.client import classifier, ner
from electra_model.client.diversity import k_center_greedy, token_features
from electra_model.client.text_words import split_words
from electra_model.client.uncertainty import CLASSIFIER_MEASURES, TAGGING_MEASURES
from electra_model.errors import ElectraError

KCENTER = "kcenter"
DIVERSITY = (KCENTER,)
CANDIDATES_PER_PICK = 4
"""k-center greedy chooses among the ``4 * k`` most uncertain texts: wide enough to leave near-duplicates out,
narrow enough that every pick is still among the least certain (the core-set papers use a few times ``k``)."""
FEATURE_DIMENSIONS = 4096  # hashed sub-token buckets; collisions are rare at a few thousand for sentence-length texts


@dataclass(frozen=True)
class PoolText:
    """One unlabelled text and the line of the pool file it came from (1-based), kept for the output."""

    line: int
    text: str


def read_pool(path: Path) -> list[PoolText]:
    """The pool's texts: one per non-blank line, or, when the first non-blank line is a JSON object, JSONL whose
    objects each carry a string ``"text"``. Anything else is refused naming the file and line."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ElectraError(
            f"{path}: cannot read the pool ({error.strerror}); pass a text file, one text per line"
        ) from None
    lines = raw.removeprefix(b"\xef\xbb\xbf").split(b"\n")  # a byte-order mark is not text
    pool: list[PoolText] = []
    jsonl: bool | None = None
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise ElectraError(
                f"{path}, line {number}: not UTF-8 text (byte {error.start + 1} of the line); convert it to UTF-8"
            ) from None
        if not text.strip():
            continue
        if jsonl is None:
            jsonl = text.lstrip().startswith("{")
        pool.append(PoolText(number, _jsonl_text(text, path, number) if jsonl else text))
    if not pool:
        raise ElectraError(f"{path}: the pool is empty; put one unlabelled text per line (or JSONL with \"text\")")
    return pool


def _jsonl_text(line: str, path: Path, number: int) -> str:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ElectraError(
            f"{path}, line {number}: not a JSON object ({error.msg}); the file is JSONL from its first line on"
        ) from None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise ElectraError(f"{path}, line {number}: a JSONL line needs a string \"text\" field")
    return row["text"]


def check_k(k: int, pool_size: int | None, path: Path) -> None:
    """``k`` must be a batch the pool can fill (``pool_size`` ``None``: not read yet, so only ``k >= 1`` is checked,
    before a bad ``--k`` costs a read of a large pool)."""
    if k < 1:
        raise ElectraError(f"--k {k}: choose at least 1 text")
    if pool_size is not None and k > pool_size:
        raise ElectraError(f"--k {k}: {path} holds only {pool_size} texts; lower --k or add texts to the pool")


def score_tagging(predictor: Any, texts: Sequence[str], measure: str | None) -> np.ndarray:
    """Token tagger: each text cut into words as the client cuts them, scored from its per-word scores and the
    CRF's chain when the model has one (``marginal`` then, else ``sequence``, unless ``measure`` says)."""
    name = measure or ("marginal" if predictor.chain is not None else "sequence")
    words = [[word for word, _, _ in split_words(text)] for text in texts]
    return score_word_sentences(predictor, words, name)


def score_word_sentences(predictor: Any, sentences: Sequence[Sequence[str]], measure: str) -> np.ndarray:
    """Uncertainty of pre-split sentences (what the benchmark feeds: CoNLL's own words)."""
    scorer = TAGGING_MEASURES[measure]
    log_probs = predictor.sentence_log_probs(sentences)
    return np.array([scorer(scores, predictor.scheme, predictor.chain) for scores in log_probs])


def score_classification(predictor: Any, texts: Sequence[str], measure: str | None) -> np.ndarray:
    """Classifier: ``margin`` (the default) or ``entropy`` of each text's label probabilities."""
    scorer = CLASSIFIER_MEASURES[measure or "margin"]
    results = predictor.predict(list(texts))
    return np.array([scorer(np.array([result["scores"][label] for label in predictor.labels])) for result in results])


Scorer = Callable[[Any, Sequence[str], "str | None"], np.ndarray]
SCORERS: Mapping[str, tuple[Scorer, tuple[str, ...]]] = {
    ner.KIND: (score_tagging, tuple(TAGGING_MEASURES)),
    classifier.KIND: (score_classification, tuple(CLASSIFIER_MEASURES)),
}
"""Per predictor kind: how its texts are scored, and the measures it takes (the first of a classifier's is its
default; a tagger's default depends on its head)."""


def score_texts(kind: str, predictor: Any, texts: Sequence[str], measure: str | None = None) -> np.ndarray:
    """Uncertainty of every text (higher: less sure) by the predictor ``kind``'s measure."""
    if kind not in SCORERS:
        raise ElectraError(
            f"active learning has no uncertainty measure for {kind!r} models; it ranks {sorted(SCORERS)} models"
        )
    scorer, measures = SCORERS[kind]
    if measure is not None and measure not in measures:
        raise ElectraError(f"--measure {measure}: a {kind} model is scored by one of {list(measures)}")
    return scorer(predictor, texts, measure)


def choose(
    scores: np.ndarray, k: int, diversity: str | None = None, features: np.ndarray | None = None
) -> list[int]:
    """Indices of the ``k`` texts to label: the highest scores (ties: the earlier text), or with ``kcenter`` a
    spread of the ``CANDIDATES_PER_PICK * k`` highest over ``features`` (see :mod:`~electra_model.client.diversity`)."""
    order = [int(index) for index in np.lexsort((np.arange(len(scores)), -scores))]
    if diversity is None:
        return order[:k]
    if diversity != KCENTER or features is None:
        raise ValueError(f"diversity {diversity!r} needs one of {DIVERSITY} and features")
    candidates = np.array(order[: CANDIDATES_PER_PICK * k])
    return [int(candidates[pick]) for pick in k_center_greedy(features[candidates], scores[candidates], k)]


def select(
    kind: str, predictor: Any, texts: Sequence[str], k: int, measure: str | None = None, diversity: str | None = None
) -> list[tuple[int, float]]:
    """``(index, score)`` of the ``k`` texts to label next, in the order chosen (most uncertain first without
    diversity)."""
    scores = score_texts(kind, predictor, texts, measure)
    features = token_features(predictor.tokenizer, texts, FEATURE_DIMENSIONS) if diversity else None
    return [(index, float(scores[index])) for index in choose(scores, k, diversity, features)]
