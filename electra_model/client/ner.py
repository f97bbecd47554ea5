"""Text in, named entities out: the NER client that runs the exported model on onnxruntime, without torch.

It loads the directory :func:`electra_model.export.build.export_onnx` writes, from disk or from the MLflow registry,
and returns entities with character offsets into the text it was given::

    from electra_model.client.ner import NerPredictor, predict
    predictor = NerPredictor.from_uri("models:/electra-ner@champion")   # or models:/electra-ner/3, or models/onnx
    predictor.predict(["Angela Merkel visited Paris.", "..."])          # a batch of texts
    predictor.predict_words([["Angela", "Merkel", "visited", "Paris", "."]])   # pre-tokenized input
    predict(["Angela Merkel visited Paris."], model="models/onnx")

The directory holds several variants of one model (fp32, graph-optimized fp32, int8, fp16); ``model_meta.json``
names the one to run on CPU (chosen by the export stage) and the one to run on GPU, and ``variant=`` overrides it.
A model with a CRF head also has ``crf_chain.json``, its learned transition, start and end scores (the graph outputs
the emissions only); a softmax-head model has none.
Texts longer than the model's ``max_len`` sub-tokens are cut into windows; windows of all texts share batches.

Text is cut into words by CoNLL-2003's rules (:mod:`electra_model.client.text_words`), the words the model was
trained on,
and each sentence's tags are decoded as evaluation decodes them: the best valid IOB2 sequence, with the CRF's
learned chain when the model has one (:mod:`electra_model.client.tag_decoding`).
Only onnxruntime (or onnxruntime-gpu), tokenizers and numpy are needed (mlflow only when a ``models:/`` URI is
resolved), so this module and the torch-free modules it imports are also packaged on
their own as the light client ``electra-ner-client`` (``pip install ./client[cpu]``, see client/pyproject.toml).
From a terminal in the project: ``electra predict "Angela Merkel visited Paris."``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from electra_model.client.exported import OUTPUT_NAME, REEXPORT, FromUri, check_texts, open_model_dir
from electra_model.client.ner_encoding import (
    EncodedSentence,
    Example,
    encode_examples,
    merge_word_scores,
    pad_batch,
    word_log_probs,
)
from electra_model.client.spec import ClientSpec
from electra_model.client.tag_decoding import Chain, TagScheme, viterbi
from electra_model.client.text_words import WordSpan, split_words
from electra_model.errors import ElectraError

CHAIN_FILE = "crf_chain.json"  # a CRF head's transition/start/end scores; absent for a softmax head
INPUT_NAMES = ("input_ids", "attention_mask")
DEFAULT_MODEL = "models:/electra-ner@champion"
KIND = "token_tagging"  # model_meta.json's ``predictor`` for these models


@dataclass(frozen=True)
class Entity:
    """One named entity; ``text == source[start:end]`` for the text it was found in."""

    type: str
    text: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def joined_spans(words: Sequence[str]) -> tuple[str, list[WordSpan]]:
    """Pre-split words as one text joined by single spaces, with each word's span in it."""
    spans, position = [], 0
    for word in words:
        spans.append((word, position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), spans


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(type, first word, last word + 1)`` per entity under conlleval chunking (an ``I-X`` that does not continue
    an ``X`` starts one), the rule the entity F1 in the registry was measured with."""
    spans: list[tuple[str, int, int]] = []
    for index, tag in enumerate(tags):
        if tag == "O":
            continue
        kind = tag[2:]
        if tag.startswith("I-") and spans and spans[-1][0] == kind and spans[-1][2] == index:
            spans[-1] = (kind, spans[-1][1], index + 1)
        else:
            spans.append((kind, index, index + 1))
    return spans




def read_chain(onnx_dir: Path, labels: Sequence[str]) -> Chain | None:
    """The CRF head's learned scores when the export wrote them (``None`` for a softmax-head model), checked to
    belong to these labels, so a chain from another model is refused rather than decoded with."""
    path = onnx_dir / CHAIN_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload["labels"] != list(labels):
            raise ValueError(f"its labels {payload['labels']} are not the model's {list(labels)}")
        return Chain.from_lists(payload["transitions"], payload["start"], payload["end"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        detail = f"lacks {error}" if isinstance(error, KeyError) else str(error)
        raise ElectraError(f"{path}: not the CRF chain the export stage writes ({detail}); {REEXPORT}") from None




class NerPredictor(FromUri):
    """An onnxruntime session plus the tokenizer and labels it was exported with."""

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        labels: Sequence[str],
        max_len: int,
        batch_size: int = 32,
        variant: str = "fp32",
        chain: Chain | None = None,
    ) -> None:
        self.session = session
        self.chain = chain
        self.tokenizer = tokenizer
        self.id2label = dict(enumerate(labels))
        self.scheme = TagScheme.iob2(labels)
        self.max_len = max_len
        self.batch_size = batch_size
        self.variant = variant
        self.pad_id = tokenizer.token_to_id("[PAD]")

    @classmethod
    def from_dir(
        cls,
        onnx_dir: Path | str,
        providers: Sequence[str] | None = None,
        variant: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> NerPredictor:
        """Load an exported directory; windows and offsets need the tokenizer to neither truncate nor pad."""
        opened = open_model_dir(onnx_dir, KIND, INPUT_NAMES, providers, variant, threads)
        chain = read_chain(opened.directory, opened.labels)
        return cls(opened.session, opened.tokenizer, opened.labels, opened.max_len, batch_size, opened.variant, chain)

    def predict(self, texts: Sequence[str]) -> list[list[Entity]]:
        """Entities per text, with character offsets into that text; blank text gives no entities."""
        texts = check_texts(texts)
        spans = [split_words(text) for text in texts]
        predictions = self._word_predictions([[word for word, _, _ in words] for words in spans])
        return [_entities(text, words, *prediction) for text, words, prediction in zip(texts, spans, predictions)]

    def predict_words(self, sentences: Sequence[Sequence[str]]) -> list[list[Entity]]:
        """Entities for pre-split words; offsets index the words joined by single spaces (``" ".join(words)``)."""
        for sentence in sentences:
            check_texts(sentence)
        joined = [joined_spans(words) for words in sentences]
        predictions = self._word_predictions(sentences)
        return [_entities(text, spans, *prediction) for (text, spans), prediction in zip(joined, predictions)]

    def tag_words(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One IOB2 tag per word, every word included however long the sentence (what entity scoring needs)."""
        return [tags for tags, _ in self._word_predictions(sentences)]

    def windows(self, sentences: Sequence[Sequence[str]]) -> list[Example]:
        """Model inputs for the sentences, cut as training and evaluation cut them (a long sentence into windows
        that overlap as context, every word labelled in exactly one), ordered by length so that batches of
        similar lengths waste little on padding (the order changes no result).

        A sentence is first cut into segments of ``max_len`` words, given to the encoder as consecutive sentences
        of one document with document context on, so each segment still sees its neighbours as context: the
        encoder's cost grows with the square of a sentence's length, and a 100k-character text is one sentence.
        """
        segments, documents, origins = [], [], []
        for row, words in enumerate(sentences):
            for offset in range(0, len(words), self.max_len):
                segments.append(words[offset : offset + self.max_len])
                documents.append(row)
                origins.append(offset)
        examples = encode_examples(self.tokenizer, segments, self.max_len, documents=documents, document_context=True)
        placed = [Example(documents[e.sentence], origins[e.sentence] + e.start, e.encoded) for e in examples]
        return sorted(placed, key=lambda example: len(example.encoded.input_ids))

    def logits(self, encoded: Sequence[EncodedSentence]) -> np.ndarray:
        """Logits of one padded batch, as float32 whatever the variant computes in."""
        batch = pad_batch(encoded, self.pad_id)
        feed = {name: batch[name] for name in INPUT_NAMES}
        return self.session.run([OUTPUT_NAME], feed)[0].astype(np.float32, copy=False)

    def _word_predictions(self, sentences: Sequence[Sequence[str]]) -> list[tuple[list[str], list[float]]]:
        """Tag and probability per word; the windows of all sentences share batches."""
        windows, window_scores = self._window_scores(sentences)
        return self.decode(windows, window_scores, [len(words) for words in sentences])

    def sentence_log_probs(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Each sentence's per-word label log-probabilities ``(words, labels)``, the scores :meth:`decode` decodes
        (with :attr:`chain` for a CRF head): what an uncertainty measure reads
        (:mod:`electra_model.client.uncertainty`)."""
        windows, window_scores = self._window_scores(sentences)
        return merge_word_scores(windows, window_scores, [len(words) for words in sentences])

    def _window_scores(self, sentences: Sequence[Sequence[str]]) -> tuple[list[Example], list[np.ndarray]]:
        """The sentences' windows and each window's per-word log-probabilities; all windows share batches."""
        windows = self.windows(sentences)
        window_scores: list[np.ndarray] = []
        for first in range(0, len(windows), self.batch_size):
            encoded = [window.encoded for window in windows[first : first + self.batch_size]]
            window_scores += word_log_probs(self.logits(encoded), encoded)
        return windows, window_scores

    def decode(
        self, windows: Sequence[Example], window_scores: Sequence[np.ndarray], lengths: Sequence[int]
    ) -> list[tuple[list[str], list[float]]]:
        """Each sentence's tags, the best valid IOB2 sequence under the model's chain if it has one
        (:func:`electra_model.client.tag_decoding.viterbi`, as evaluation decodes), and each word's probability
        of its tag under the per-word softmax, from the windows' per-word scores."""
        predictions = []
        for log_probs in merge_word_scores(windows, window_scores, lengths):
            path = viterbi(log_probs, self.scheme, self.chain)
            probs = np.exp(log_probs[np.arange(len(path)), path])
            predictions.append(([self.id2label[int(i)] for i in path], probs.tolist()))
        return predictions


def _entities(text: str, spans: Sequence[WordSpan], tags: Sequence[str], probs: Sequence[float]) -> list[Entity]:
    entities = []
    for kind, first, last in entity_spans(tags):
        start, end = spans[first][1], spans[last - 1][2]
        entities.append(Entity(kind, text[start:end], start, end, float(np.mean(probs[first:last]))))
    return entities


def predict(texts: Sequence[str], model: str = DEFAULT_MODEL, tracking_uri: str | None = None) -> list[list[Entity]]:
    """One-call prediction for scripts: load ``model`` (registry URI or directory) and tag ``texts``."""
    return NerPredictor.from_uri(model, tracking_uri).predict(texts)


def entity_line(entity: Entity) -> str:
    """``TYPE  start-end  "text"  score``; the text is JSON-quoted so quotes and newlines inside it stay readable."""
    quoted = json.dumps(entity.text, ensure_ascii=False)
    return f"{entity.type}  {entity.start}-{entity.end}  {quoted}  {entity.score:.3f}"


NER = ClientSpec(
    kind=KIND,
    load=NerPredictor.from_dir,
    inputs=INPUT_NAMES,
    logit_axes={0: "batch", 1: "sequence"},
    takes_pairs=False,
    to_json=lambda entities: [entity.to_dict() for entity in entities],
    human=lambda entities: [entity_line(entity) for entity in entities] or ["(no entities)"],
    json_key="entities",
)
"""The token-tagging client (NER's): entities per text, one row of logits per token."""
