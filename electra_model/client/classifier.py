"""Text (or a text pair) in, a label out: the sequence-classification client on onnxruntime, without torch.

It loads the directory :func:`electra_model.export.build.export_onnx` writes for a classifier (``model_meta.json``
says ``"predictor": "text_classification"``), from disk or the MLflow registry, and returns per text
``{"label", "score", "scores": {label: probability}}``::

    from electra_model.client.classifier import ClassifierPredictor
    predictor = ClassifierPredictor.from_uri("models:/electra-classifier@champion")   # or models/onnx
    predictor.predict(["a gripping film"])                        # single texts
    predictor.predict(["A man plays."], pairs=["Someone plays."])  # pairs: [CLS] a [SEP] b [SEP]

Encoding and post-processing are :mod:`electra_model.client.classifier_encoding`'s, the functions training
uses, so the served model sees the inputs it was trained on. :func:`electra_model.client.loader.load_predictor`
picks this class or the NER one from the model it loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from electra_model.errors import ElectraError
from electra_model.client.classifier_encoding import INPUT_NAMES, Encoded, classify, encode, pad_batch
from electra_model.client.exported import FromUri, check_texts, open_model_dir
from electra_model.client.spec import ClientSpec

KIND = "text_classification"  # model_meta.json's ``predictor`` for these models


class ClassifierPredictor(FromUri):
    """An onnxruntime session plus the tokenizer, labels and ``max_len`` the classifier was exported with."""

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        labels: Sequence[str],
        max_len: int,
        batch_size: int = 32,
        variant: str = "fp32",
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.max_len = max_len
        self.batch_size = batch_size
        self.variant = variant

    @classmethod
    def from_dir(
        cls,
        onnx_dir: Path | str,
        providers: Sequence[str] | None = None,
        variant: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> ClassifierPredictor:
        """Load an exported classifier directory; a token tagger's is refused by name (its graph scores tokens)."""
        opened = open_model_dir(onnx_dir, KIND, INPUT_NAMES, providers, variant, threads)
        return cls(opened.session, opened.tokenizer, opened.labels, opened.max_len, batch_size, opened.variant)

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """``{"label", "score", "scores"}`` per text (or per ``(text, pair)``), in input order. Blank text is
        classified too (as ``[CLS] [SEP]``): refusing it would fail a whole batch for one empty line."""
        texts = check_texts(texts)
        if pairs is not None:
            pairs = check_texts(pairs)
            if len(pairs) != len(texts):
                raise ElectraError(f"{len(texts)} texts but {len(pairs)} second texts; give one second text per text")
        return classify(self.session, self.tokenizer, texts, self.labels, self.max_len, pairs, self.batch_size)

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[Encoded]:
        """Model inputs, as :meth:`predict` builds them (the export check feeds torch the same)."""
        return encode(self.tokenizer, texts, pairs, self.max_len)

    def logits(self, encoded: Sequence[Encoded]) -> np.ndarray:
        """Logits of one padded batch, as float32 whatever the variant computes in."""
        batch = pad_batch(encoded, self.tokenizer.token_to_id("[PAD]"))
        return self.session.run(["logits"], dict(batch))[0].astype(np.float32, copy=False)


CLASSIFIER = ClientSpec(
    kind=KIND,
    load=ClassifierPredictor.from_dir,
    inputs=INPUT_NAMES,
    logit_axes={0: "batch"},
    takes_pairs=True,
    to_json=lambda result: result,
    human=lambda result: [f"{result['label']}  {result['score']:.3f}"],
)
"""The sequence classifier's client: a label with probabilities per text or pair, one row of logits per text."""
