"""Text in, named entities out: the NER client that runs the exported model on onnxruntime, without torch.

It loads the directory :func:`electra_model.export.build.export_onnx` writes, from disk or from the MLflow registry,
and returns entities with character offsets into the text it was given::

    from electra_model.serving.predictor import NerPredictor, predict
    predictor = NerPredictor.from_uri("models:/electra-ner@champion")   # or models:/electra-ner/3, or models/onnx
    predictor.predict(["Angela Merkel visited Paris.", "..."])          # a batch of texts
    predictor.predict_words([["Angela", "Merkel", "visited", "Paris", "."]])   # pre-tokenized input
    predict(["Angela Merkel visited Paris."], model="models/onnx")

The directory holds several variants of one model (fp32, graph-optimized fp32, int8, fp16); ``model_meta.json``
names the one to run on CPU (chosen by the export stage) and the one to run on GPU, and ``variant=`` overrides it.
A model with a CRF head also has ``crf_chain.json``, its learned transition, start and end scores (the graph outputs
the emissions only); a softmax-head model has none.
Texts longer than the model's ``max_len`` sub-tokens are cut into windows; windows of all texts share batches.

Text is cut into words by CoNLL-2003's rules (:mod:`electra_model.tasks.ner.text_words`), the words the model was
trained on,
and each sentence's tags are decoded as evaluation decodes them: the best valid IOB2 sequence, with the CRF's
learned chain when the model has one (:mod:`electra_model.tasks.ner.tag_decoding`).
Only onnxruntime (or onnxruntime-gpu), tokenizers and numpy are needed (mlflow only when a ``models:/`` URI is
resolved), so this module and the torch-free modules it imports are also packaged on
their own as the light client ``electra-ner-client`` (``pip install ./client[cpu]``, see client/pyproject.toml).
From a terminal in the project: ``electra predict "Angela Merkel visited Paris."``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
from tokenizers import Tokenizer

from electra_model.errors import ElectraError
from electra_model.tasks.ner.encoding import (
    EncodedSentence,
    Example,
    encode_examples,
    merge_word_scores,
    pad_batch,
    word_log_probs,
)
from electra_model.tasks.ner.tag_decoding import Chain, TagScheme, viterbi
from electra_model.tasks.ner.text_words import WordSpan, split_words
from electra_model.serving.registry_client import download_registered_model, resolve_tracking_uri

MODEL_FILE = "model.onnx"  # the plain fp32 variant; the other variants' files are listed in META_FILE
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
META_FILE = "model_meta.json"
CHAIN_FILE = "crf_chain.json"  # a CRF head's transition/start/end scores; absent for a softmax head
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)  # see session_options
DEFAULT_MODEL = "models:/electra-ner@champion"
NER_TASK = "ner"


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


def check_texts(texts: Sequence[Any]) -> list[str]:
    """Refuse what cannot be tagged with a message naming the item: a REST client can send numbers, nulls or
    lone UTF-16 surrogates (valid JSON, not text), which would otherwise fail deep inside the tokenizer."""
    if isinstance(texts, str):
        raise TypeError("predict takes a list of texts; wrap a single text in a list")
    checked = []
    for number, text in enumerate(texts):
        if not isinstance(text, str):
            raise ElectraError(f"text {number} is {type(text).__name__} {text!r}, not a string; send strings only")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ElectraError(
                f"text {number} is not valid Unicode (a lone surrogate at character {error.start}); send UTF-8 text"
            ) from None
        checked.append(text)
    return checked


def default_providers() -> list[str]:
    """CUDA when this onnxruntime build has it, else CPU (onnxruntime wants the choice made explicitly)."""
    available = ort.get_available_providers()
    return [provider for provider in (CUDA, CPU) if provider in available]


def find_onnx_dir(root: Path) -> Path:
    """The exported directory itself, or the one inside a downloaded MLflow model (under ``artifacts/``)."""
    if (root / META_FILE).is_file():
        return root
    found = sorted(root.rglob(META_FILE))
    if not found:
        raise ElectraError(
            f"{root}: no {META_FILE} here or below, so this is not an exported model; pass the directory the "
            "export stage wrote (models/onnx) or a models:/NAME@ALIAS URI"
        )
    return found[0].parent


def read_meta(onnx_dir: Path) -> dict[str, Any]:
    """``model_meta.json``, checked for the keys the client needs, so a foreign or truncated file fails here."""
    path = onnx_dir / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ElectraError(
            f"{path}: not the JSON the export stage writes ({error}); re-run `dvc repro export`"
        ) from None
    missing = sorted({"labels", "max_len", "variants", "cpu_variant", "gpu_variant"} - set(meta))
    if missing:
        raise ElectraError(f"{path}: lacks {missing}; re-export the model with `dvc repro export`")
    return meta


def task_of(meta: dict[str, Any]) -> str:
    """The task an exported directory serves: ``ner`` or ``classification`` (``model_meta.json``'s ``task``; a
    directory exported before classifiers existed has none and is NER)."""
    return str(meta.get("task", NER_TASK))


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


def pick_variant(meta: dict[str, Any], providers: Sequence[str], variant: str | None, where: Path) -> str:
    """The requested variant, else the GPU one when CUDA runs the session, else the one chosen for CPU."""
    chosen = variant or (meta["gpu_variant"] if providers[0] == CUDA else meta["cpu_variant"])
    if chosen not in meta["variants"]:
        raise ElectraError(f"{where}: no model variant {chosen!r}; it has {sorted(meta['variants'])}")
    return chosen


def check_model_matches(
    session: ort.InferenceSession, tokenizer: Tokenizer, labels: Sequence[str], where: Path, inputs: Sequence[str]
) -> None:
    """Refuse, at load, a model that was not exported with this tokenizer, these labels and these ``inputs``: a
    vocabulary mismatch would otherwise give out-of-range ids or silently wrong predictions on the first request."""
    names = [node.name for node in session.get_inputs()]
    if names != list(inputs):
        raise ElectraError(
            f"{where}: the model takes inputs {names}, but the client feeds {list(inputs)}; "
            "this is not a model the export stage wrote, re-export it with `dvc repro export`"
        )
    declared = session.get_modelmeta().custom_metadata_map.get("vocab_size")
    vocab = tokenizer.get_vocab_size()
    if declared is None or int(declared) != vocab:
        raise ElectraError(
            f"{where}: the model's vocabulary size is {declared or 'not recorded'} but {TOKENIZER_FILE} has {vocab} "
            "tokens, so they do not belong together; re-export the model and its tokenizer with `dvc repro export`"
        )
    width = session.get_outputs()[0].shape[-1]
    if width != len(labels):
        raise ElectraError(
            f"{where}: the model scores {width} labels but {META_FILE} lists {len(labels)}; re-export it"
        )


def session_options(threads: int | None, spinning: bool = True, cpu: bool = True) -> ort.SessionOptions:
    """Full graph optimization; ``threads`` caps onnxruntime's intra-op pool (e.g. one per server worker).

    ``spinning`` is onnxruntime's default: idle pool threads spin for the next run's work instead of sleeping,
    which saves a wake-up per parallel operator but keeps the cores busy after a run; ``spinning=False`` suits
    processes that share their cores with other work. ``cpu`` leaves out onnxruntime's session-level
    ``SkipLayerNormFusion``, slower on CPU than the two operators it replaces (the export stage leaves it out of the
    CPU graphs too, :func:`electra_model.export.optimize.fusion_options`). The measurements: benchmarks/RESULTS.md,
    "Why the serving and export settings are what they are".
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if cpu:
        options.add_session_config_entry("optimization.disable_specified_optimizers", ";".join(CPU_DISABLED_OPTIMIZERS))
    return options


def open_session(
    model_file: Path, providers: Sequence[str], threads: int | None = None, spinning: bool = True
) -> ort.InferenceSession:
    """An onnxruntime session for one exported variant, with the settings of :func:`session_options` that suit
    the first of ``providers``."""
    options = session_options(threads, spinning, cpu=bool(providers) and providers[0] == CPU)
    return ort.InferenceSession(str(model_file), options, providers=list(providers))


REEXPORT = "re-run `dvc repro export`"
CORRUPT_MODEL = (
    ort_state.InvalidProtobuf, ort_state.InvalidGraph, ort_state.InvalidArgument, ort_state.Fail, ort_state.NoSuchFile
)
"""What onnxruntime raises for a truncated, corrupt or incomplete model file (not for a missing provider)."""


def first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def read_tokenizer_file(path: Path) -> Tokenizer:
    """``tokenizer.json`` of an exported model; a truncated or corrupt one is named, with what to do."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for any file it cannot read
        raise ElectraError(f"{path}: not a readable tokenizer ({first_line(error)}); {REEXPORT}") from None


def open_model_file(model_file: Path, providers: Sequence[str], threads: int | None) -> ort.InferenceSession:
    """:func:`open_session`, naming a truncated or corrupt ``.onnx`` file instead of raising onnxruntime's error."""
    try:
        return open_session(model_file, providers, threads)
    except CORRUPT_MODEL as error:
        raise ElectraError(f"{model_file}: not a loadable ONNX model ({first_line(error)}); {REEXPORT}") from None


@contextmanager
def local_model(uri_or_path: str | Path, tracking_uri: str | None = None) -> Iterator[Path]:
    """The model as a local directory for the length of a ``with`` block: a registry URI (``models:/NAME@ALIAS``,
    ``models:/NAME/VERSION``) is downloaded to a scratch directory removed afterwards (a loaded session no longer
    needs its files), so repeated CLI calls leave nothing behind; a directory is used in place."""
    uri = str(uri_or_path)
    if uri.startswith("models:/"):
        with tempfile.TemporaryDirectory(prefix="electra-model-", ignore_cleanup_errors=True) as scratch:
            yield download_registered_model(uri, resolve_tracking_uri(tracking_uri), Path(scratch))
        return
    path = Path(uri)
    if not path.is_dir():
        raise ElectraError(
            f"{path}: no such model directory; pass the ONNX directory the export stage wrote (models/onnx) "
            "or a registry URI models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    yield path


def check_files(onnx_dir: Path, model_file: Path) -> None:
    """The variant's graph and the tokenizer must both be there: a partial copy is named, not half-loaded."""
    for path in (model_file, onnx_dir / TOKENIZER_FILE):
        if not path.is_file():
            raise ElectraError(f"{onnx_dir}: {path.name} is missing from the exported model; {REEXPORT}")


def open_exported(
    onnx_dir: Path, meta: dict[str, Any], providers: Sequence[str] | None, variant: str | None, threads: int | None,
    input_names: Sequence[str],
) -> tuple[ort.InferenceSession, Tokenizer, str]:
    """The chosen variant's session and the tokenizer, checked against each other, and the variant's name. The
    tokenizer neither truncates nor pads: the predictors window (NER) or truncate pairs (classifier) themselves."""
    providers = list(providers or default_providers())
    chosen = pick_variant(meta, providers, variant, onnx_dir)
    model_file = onnx_dir / meta["variants"][chosen]["file"]
    check_files(onnx_dir, model_file)
    tokenizer = read_tokenizer_file(onnx_dir / TOKENIZER_FILE)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    session = open_model_file(model_file, providers, threads)
    check_model_matches(session, tokenizer, meta["labels"], model_file, input_names)
    return session, tokenizer, chosen


class NerPredictor:
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
        onnx_dir = find_onnx_dir(Path(onnx_dir))
        meta = read_meta(onnx_dir)
        session, tokenizer, chosen = open_exported(onnx_dir, meta, providers, variant, threads, INPUT_NAMES)
        chain = read_chain(onnx_dir, meta["labels"])
        return cls(session, tokenizer, meta["labels"], int(meta["max_len"]), batch_size, chosen, chain)

    @classmethod
    def from_uri(cls, uri_or_path: str | Path, tracking_uri: str | None = None, **options: Any) -> NerPredictor:
        """Load from a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` URI, or from a local directory;
        ``options`` go to :meth:`from_dir`."""
        with local_model(uri_or_path, tracking_uri) as local:
            return cls.from_dir(local, **options)

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
        windows = self.windows(sentences)
        window_scores: list[np.ndarray] = []
        for first in range(0, len(windows), self.batch_size):
            encoded = [window.encoded for window in windows[first : first + self.batch_size]]
            window_scores += word_log_probs(self.logits(encoded), encoded)
        return self.decode(windows, window_scores, [len(words) for words in sentences])

    def decode(
        self, windows: Sequence[Example], window_scores: Sequence[np.ndarray], lengths: Sequence[int]
    ) -> list[tuple[list[str], list[float]]]:
        """Each sentence's tags, the best valid IOB2 sequence under the model's chain if it has one
        (:func:`electra_model.tasks.ner.tag_decoding.viterbi`, as evaluation decodes), and each word's probability
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
