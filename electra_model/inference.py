"""Text in, named entities out: the NER client that runs the exported model on onnxruntime, without torch.

It loads the directory :func:`electra_model.export.export_onnx` writes, from disk or from the MLflow registry,
and returns entities with character offsets into the text it was given::

    from electra_model.inference import NerPredictor, predict
    predictor = NerPredictor.from_uri("models:/electra-ner@champion")   # or models:/electra-ner/3, or models/onnx
    predictor.predict(["Angela Merkel visited Paris."])
    predict(["Angela Merkel visited Paris."], model="models/onnx")

Only onnxruntime, tokenizers and numpy are imported at module level (mlflow only when a ``models:/`` URI is
resolved), so a client or a serving image needs neither torch nor transformers. From a terminal:
``electra predict "Angela Merkel visited Paris."``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer, pre_tokenizers

from electra_model.errors import ElectraError
from electra_model.ner_encoding import EncodedSentence, encode_words, pad_batch, word_tags

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
META_FILE = "model_meta.json"
DEFAULT_MODEL = "models:/electra-ner@champion"
MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))/?")
SPLITTER = pre_tokenizers.BertPreTokenizer()
WordSpan = tuple[str, int, int]


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


def split_words(text: str) -> list[WordSpan]:
    """Words with their character spans, split on whitespace and punctuation exactly as the model's
    BertPreTokenizer splits, so every word the model sees maps back to a span of the original text."""
    return [(word, start, end) for word, (start, end) in SPLITTER.pre_tokenize_str(text)]


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


def first_subtoken_probs(logits: np.ndarray, sentences: Sequence[EncodedSentence]) -> list[list[float]]:
    """Softmax probability of each word's predicted label at its first sub-token (0 for a word with none)."""
    result = []
    for row, sentence in enumerate(sentences):
        positions = np.asarray(sentence.first_subtoken, dtype=np.int64)
        picked = logits[row, np.clip(positions, 0, None)]
        exp = np.exp(picked - picked.max(-1, keepdims=True))
        best = exp.max(-1) / exp.sum(-1)
        result.append(np.where(positions >= 0, best, 0.0).tolist())
    return result


def default_providers() -> list[str]:
    """CUDA when this onnxruntime build has it, else CPU (onnxruntime wants the choice made explicitly)."""
    available = ort.get_available_providers()
    return [provider for provider in ("CUDAExecutionProvider", "CPUExecutionProvider") if provider in available]


def find_onnx_dir(root: Path) -> Path:
    """The exported directory itself, or the one inside a downloaded MLflow model (under ``artifacts/``)."""
    if (root / META_FILE).is_file():
        return root
    found = sorted(root.rglob(META_FILE))
    if not found:
        raise ElectraError(
            f"{root}: no {META_FILE} here or below, so this is not an exported NER model; pass the directory the "
            "export stage wrote (models/onnx) or a models:/NAME@ALIAS URI"
        )
    return found[0].parent


class NerPredictor:
    """An onnxruntime session plus the tokenizer and labels it was exported with."""

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        labels: Sequence[str],
        max_len: int,
        batch_size: int = 32,
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.id2label = dict(enumerate(labels))
        self.max_len = max_len
        self.batch_size = batch_size
        self.pad_id = tokenizer.token_to_id("[PAD]")

    @classmethod
    def from_dir(cls, onnx_dir: Path | str, providers: Sequence[str] | None = None) -> NerPredictor:
        """Load an exported directory; windows and offsets need the tokenizer to neither truncate nor pad."""
        onnx_dir = find_onnx_dir(Path(onnx_dir))
        for name in (MODEL_FILE, TOKENIZER_FILE):
            if not (onnx_dir / name).is_file():
                raise ElectraError(f"{onnx_dir}: {name} is missing from the exported model; re-run `dvc repro export`")
        meta = json.loads((onnx_dir / META_FILE).read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(onnx_dir / TOKENIZER_FILE))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        session = ort.InferenceSession(str(onnx_dir / MODEL_FILE), providers=list(providers or default_providers()))
        return cls(session, tokenizer, meta["labels"], int(meta["max_len"]))

    @classmethod
    def from_uri(cls, uri_or_path: str | Path, tracking_uri: str | None = None) -> NerPredictor:
        """Load from a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` URI, or from a local directory.

        A registered model is downloaded to a scratch directory that is removed once the session has read it, so
        repeated CLI calls leave nothing behind.
        """
        uri = str(uri_or_path)
        if uri.startswith("models:/"):
            with tempfile.TemporaryDirectory(prefix="electra-model-", ignore_cleanup_errors=True) as scratch:
                return cls.from_dir(download_registered_model(uri, resolve_tracking_uri(tracking_uri), Path(scratch)))
        path = Path(uri)
        if not path.is_dir():
            raise ElectraError(
                f"{path}: no such model directory; pass the ONNX directory the export stage wrote (models/onnx) "
                "or a registry URI models:/NAME@ALIAS or models:/NAME/VERSION"
            )
        return cls.from_dir(path)

    def predict(self, texts: Sequence[str]) -> list[list[Entity]]:
        """Entities per text, with character offsets into that text; blank text gives no entities."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap a single text in a list")
        spans = [split_words(text) for text in texts]
        predictions = self._word_predictions([[word for word, _, _ in words] for words in spans])
        return [_entities(text, words, *prediction) for text, words, prediction in zip(texts, spans, predictions)]

    def predict_words(self, sentences: Sequence[Sequence[str]]) -> list[list[Entity]]:
        """Entities for pre-split words; offsets index the words joined by single spaces (``" ".join(words)``)."""
        joined = [joined_spans(words) for words in sentences]
        predictions = self._word_predictions(sentences)
        return [_entities(text, spans, *prediction) for (text, spans), prediction in zip(joined, predictions)]

    def tag_words(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One IOB2 tag per word, every word included however long the sentence (what entity scoring needs)."""
        return [tags for tags, _ in self._word_predictions(sentences)]

    def _word_predictions(self, sentences: Sequence[Sequence[str]]) -> list[tuple[list[str], list[float]]]:
        """Tag and probability per word: every sentence is cut into windows that fit ``max_len``, and the windows
        of all sentences share batches."""
        windows = [
            (row, start, encode_words(self.tokenizer, words[start:end], self.max_len))
            for row, words in enumerate(sentences)
            for start, end in self._windows(words)
        ]
        tags: list[list[str]] = [["O"] * len(words) for words in sentences]
        probs: list[list[float]] = [[0.0] * len(words) for words in sentences]
        for first in range(0, len(windows), self.batch_size):
            batch = windows[first : first + self.batch_size]
            encoded = [window for _, _, window in batch]
            logits = self._logits(encoded)
            for (row, start, _), window_tags, window_probs in zip(
                batch, word_tags(logits, encoded, self.id2label), first_subtoken_probs(logits, encoded)
            ):
                tags[row][start : start + len(window_tags)] = window_tags
                probs[row][start : start + len(window_probs)] = window_probs
        return list(zip(tags, probs))

    def _windows(self, words: Sequence[str]) -> list[tuple[int, int]]:
        """Consecutive word ranges whose sub-tokens fit between [CLS] and [SEP]; a word longer than that gets a
        window of its own, where its first sub-token (the one its tag is read from) still fits."""
        if not words:
            return []
        encoding = self.tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
        counts = np.bincount([index for index in encoding.word_ids if index is not None], minlength=len(words))
        budget = self.max_len - 2
        windows, start, used = [], 0, 0
        for index, count in enumerate(counts.tolist()):
            if used + count > budget and index > start:
                windows.append((start, index))
                start, used = index, 0
            used += count
        windows.append((start, len(words)))
        return windows

    def _logits(self, encoded: Sequence[EncodedSentence]) -> np.ndarray:
        batch = pad_batch(encoded, self.pad_id)
        feed = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        return self.session.run(["logits"], feed)[0]


def _entities(text: str, spans: Sequence[WordSpan], tags: Sequence[str], probs: Sequence[float]) -> list[Entity]:
    entities = []
    for kind, first, last in entity_spans(tags):
        start, end = spans[first][1], spans[last - 1][2]
        entities.append(Entity(kind, text[start:end], start, end, float(np.mean(probs[first:last]))))
    return entities


def predict(texts: Sequence[str], model: str = DEFAULT_MODEL, tracking_uri: str | None = None) -> list[list[Entity]]:
    """One-call prediction for scripts: load ``model`` (registry URI or directory) and tag ``texts``."""
    return NerPredictor.from_uri(model, tracking_uri).predict(texts)


# ------------------------------------------------------------------------------------------ MLflow registry
def resolve_tracking_uri(tracking_uri: str | None = None, params_file: Path | str = "params.yaml") -> str:
    """The registry to read: the explicit URI, else ``MLFLOW_TRACKING_URI``, else ``tracking.uri`` of
    ``params.yaml`` when run in a project, else the project's default store -- the same store the pipeline wrote."""
    if tracking_uri:
        return tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    from electra_model.config import TrackingParams, load_params

    return load_params(params_file).tracking.uri if Path(params_file).is_file() else TrackingParams().uri


def check_store(tracking_uri: str) -> None:
    """Refuse a sqlite store that does not exist (MLflow would create an empty one) or a server that is down."""
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])
        if not path.is_file():
            raise ElectraError(
                f"no MLflow store at {path} ({tracking_uri}); run the pipeline (make run) here, or pass "
                "--tracking-uri / set MLFLOW_TRACKING_URI to the store that holds the model"
            )
    from electra_model.config import TrackingParams
    from electra_model.tracking import check_reachable

    check_reachable(tracking_uri, TrackingParams().connect_timeout_s)


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, alias, version)`` of a registry URI; exactly one of alias and version is set."""
    match = MODEL_URI.fullmatch(uri)
    if match is None:
        raise ElectraError(f"{uri}: not a registered model URI; use models:/NAME@ALIAS or models:/NAME/VERSION")
    return match["name"], match["alias"], match["version"]


def registered_version(uri: str, tracking_uri: str) -> tuple[str, str]:
    """Name and version a registry URI points to, with a message that says what to do when there is none."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name, alias, version = parse_model_uri(uri)
    hint = f"run the pipeline (make run) or pass --model PATH|models:/{name}/VERSION"
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        model = client.get_registered_model(name)
    except MlflowException as error:
        _reraise_unless_missing(error)
        raise ElectraError(f"registered model {name!r} does not exist in {tracking_uri}; {hint}") from None
    if alias is not None:
        if alias not in model.aliases:
            raise ElectraError(f"no version of registered model {name!r} has alias {alias!r} in {tracking_uri}; {hint}")
        return name, str(model.aliases[alias])
    try:
        client.get_model_version(name, version)
    except MlflowException as error:
        _reraise_unless_missing(error)
        raise ElectraError(f"registered model {name!r} has no version {version} in {tracking_uri}; {hint}") from None
    return name, str(version)


def _reraise_unless_missing(error: Exception) -> None:
    """Only "does not exist" is the user's to fix; any other registry failure keeps its own message and traceback."""
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    if getattr(error, "error_code", None) != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
        raise error


def download_registered_model(uri: str, tracking_uri: str, destination: Path) -> Path:
    """Download the registered MLflow model ``uri`` points to and return the exported directory inside it."""
    import mlflow

    check_store(tracking_uri)
    name, version = registered_version(uri, tracking_uri)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}/{version}",
        dst_path=str(destination),
        tracking_uri=tracking_uri,
        registry_uri=tracking_uri,
    )
    return find_onnx_dir(Path(local))
