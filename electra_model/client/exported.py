"""The exported model directory, opened without torch: the files the export stage writes, the variant to run, an
onnxruntime session with the settings the client serves with, and a ``models:/`` URI as a local directory.

Every predictor (:mod:`electra_model.client.ner`, :mod:`electra_model.client.classifier`, a registered task's own)
opens its directory through :func:`open_exported`, so each refuses the same broken or mismatched files with the same
messages, and every variant runs with the same session settings::

    onnx_dir = find_onnx_dir(Path("models/onnx"))
    meta = read_meta(onnx_dir)
    session, tokenizer, variant = open_exported(onnx_dir, meta, None, None, None, meta["inputs"])
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
from tokenizers import Tokenizer

from electra_model.client.store import download_registered_model, resolve_tracking_uri
from electra_model.errors import ElectraError

MODEL_FILE = "model.onnx"  # the plain fp32 variant; the other variants' files are listed in META_FILE
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
META_FILE = "model_meta.json"
OUTPUT_NAME = "logits"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)  # see session_options


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
    missing = sorted({"task", "predictor", "labels", "max_len", "variants", "cpu_variant", "gpu_variant"} - set(meta))
    if missing:
        raise ElectraError(f"{path}: lacks {missing}; re-export the model with `dvc repro export`")
    return meta


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


@dataclass(frozen=True)
class OpenedModel:
    """An exported directory, opened: its ``model_meta.json``, the chosen variant's session and name, and the
    tokenizer, checked against each other (what every predictor's ``from_dir`` starts from)."""

    directory: Path
    meta: dict[str, Any]
    session: ort.InferenceSession
    tokenizer: Tokenizer
    variant: str

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def max_len(self) -> int:
        return int(self.meta["max_len"])


def open_model_dir(
    onnx_dir: Path | str, kind: str, input_names: Sequence[str], providers: Sequence[str] | None,
    variant: str | None, threads: int | None,
) -> OpenedModel:
    """The exported directory ``onnx_dir`` (or the one inside a downloaded MLflow model) opened for a predictor of
    ``kind``; a model of another kind is refused by name, since its graph would be read wrongly."""
    directory = find_onnx_dir(Path(onnx_dir))
    meta = read_meta(directory)
    if meta["predictor"] != kind:
        raise ElectraError(
            f"{directory}: this model is served by a {meta['predictor']} predictor, not {kind}; load it with "
            "electra_model.client.loader.load_predictor, which picks the predictor for the model"
        )
    session, tokenizer, chosen = open_exported(directory, meta, providers, variant, threads, input_names)
    return OpenedModel(directory, meta, session, tokenizer, chosen)


class FromUri:
    """``from_uri`` for a predictor class with a ``from_dir``: the same for every predictor."""

    @classmethod
    def from_uri(cls, uri_or_path: str | Path, tracking_uri: str | None = None, **options: Any) -> Any:
        """Load from a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` URI, or from a local directory;
        ``options`` go to the class's ``from_dir``."""
        with local_model(uri_or_path, tracking_uri) as local:
            return cls.from_dir(local, **options)  # type: ignore[attr-defined]


def inside_model_dir(onnx_dir: Path, name: str) -> Path:
    """The file ``model_meta.json`` names, refused unless it lies inside the model folder: a downloaded or shared
    model is untrusted input, and ``../../x.onnx`` or ``/etc/passwd`` must not make the client open a file elsewhere."""
    root = onnx_dir.resolve()
    path = (root / name).resolve() if isinstance(name, str) else root
    if not path.is_relative_to(root) or path == root:
        raise ElectraError(
            f"{onnx_dir / META_FILE}: variant file {name!r} lies outside the model folder; refusing to open it; "
            f"{REEXPORT}"
        )
    return path


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
    model_file = inside_model_dir(onnx_dir, meta["variants"][chosen]["file"])
    check_files(onnx_dir, model_file)
    tokenizer = read_tokenizer_file(onnx_dir / TOKENIZER_FILE)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    session = open_model_file(model_file, providers, threads)
    check_model_matches(session, tokenizer, meta["labels"], model_file, input_names)
    return session, tokenizer, chosen
