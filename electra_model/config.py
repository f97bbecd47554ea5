"""Typed pipeline parameters, loaded from ``params.yaml`` (the one source of truth for every knob).

Every section is a pydantic model that forbids unknown keys, so a typo or a wrong type stops the run before any
work, with a message naming the key, the bad value and what is allowed. The models declare types and constraints,
never values: every field is required, so a value can only come from the file (or an override of it) and no second
default in code can disagree with it (tests/unit/code/test_defaults.py)::

    from electra_model.config import load_params
    params = load_params("params.yaml")
    params.finetune.learning_rate
    trial = load_params("params.yaml", overrides={"finetune.learning_rate": 1e-4})   # as `dvc exp run -S`
"""

from __future__ import annotations

import copy
import unicodedata
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from electra_model.errors import ElectraError

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
Device = Literal["auto", "cpu", "cuda"]
STUDY_STORAGES = ("sqlite:///", "postgresql://", "postgresql+psycopg://")  # Optuna RDB URLs with a driver installed
CREDENTIALS_ERROR = "credentials_in_uri"  # its message masks the URI; the raw value is never echoed
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # numpy's seeds are 32-bit: a larger one fails deep in a stage


def without_credentials(uri: str, instead: str, user_allowed: bool = False) -> str:
    """``uri`` unchanged, unless it carries ``user:password@`` (or, unless ``user_allowed``, any ``user@``):
    params.yaml is committed and logged, so a password in it would leak. The error shows the URI masked
    (``***@host``) and says where the secret goes ``instead``."""
    parts = urllib.parse.urlsplit(uri)
    if "@" in parts.netloc and not (user_allowed and parts.password is None):
        masked = urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
        raise PydanticCustomError(
            CREDENTIALS_ERROR,
            f"{masked} carries credentials, which must not be in params.yaml; remove the 'user:password@' part "
            f"and {instead}",
        )
    return uri


def leaf_types(annotation: Any) -> set[Any]:
    """The plain types a field accepts, looking through ``Annotated``, ``Optional`` and unions."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return leaf_types(get_args(annotation)[0])
    if origin is Union or isinstance(annotation, UnionType):
        return set().union(*(leaf_types(arg) for arg in get_args(annotation)))
    return {annotation}


class Section(BaseModel):
    """Base for every params section: unknown keys are errors, values are immutable once loaded.

    Numbers must be finite (``.inf`` or ``nan`` trains a NaN model that fails minutes later, far from the key that
    caused it), and a boolean is not a number: pydantic's lax mode would read ``epochs: true`` as 1.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name:
            types = leaf_types(cls.model_fields[info.field_name].annotation)
            if bool not in types and types & {int, float}:
                raise ValueError("true/false is not a number here; give a number")
        return value


# --------------------------------------------------------------------------------------------- data sources
class DemoSource(Section):
    """Sizes of the generated demo corpus and task splits, NER sentences or classification texts as ``task`` says
    (deterministic given ``seed``)."""

    corpus_documents: PositiveInt
    train_sentences: PositiveInt
    valid_sentences: PositiveInt
    test_sentences: PositiveInt


class RemoteFile(Section):
    """A file to download over http(s); the download is refused unless its sha256 matches."""

    url: Annotated[str, Field(pattern=r"^https?://")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class SplitFiles(Section):
    """A task's ``local`` source: one file per split, read in place (the task says which formats it reads)."""

    train: str | None
    valid: str | None
    test: str | None


class SplitUrls(Section):
    """A task's ``url`` source: one remote file per split, downloaded (sha256-checked), then read like a local one."""

    train: RemoteFile | None
    valid: RemoteFile | None
    test: RemoteFile | None


class LocalCorpus(Section):
    """The user's own corpus text (``.txt`` or ``.txt.gz``, globs allowed), read in place."""

    corpus: list[str]


class HfCorpus(Section):
    """A text dataset for ``datasets.load_dataset`` (a hub name, or a local directory of data files)."""

    path: str
    name: str | None
    split: str
    text_column: str


class HfSource(Section):
    corpus: HfCorpus
    max_corpus_lines: PositiveInt | None


class UrlCorpus(Section):
    corpus: list[RemoteFile]


class DataParams(Section):
    """Where the pretraining corpus comes from; ``source`` also chooses where the task's data comes from (the
    ``ner`` or ``classification`` section's ``local``, ``hf`` or ``url``; ``demo`` generates both)."""

    source: Literal["demo", "local", "hf", "url"]
    demo: DemoSource
    local: LocalCorpus
    hf: HfSource
    url: UrlCorpus


# ------------------------------------------------------------------------------------------------ tokenizer
class TokenizerParams(Section):
    """Cased WordPiece vocabulary trained on the corpus."""

    vocab_size: Annotated[int, Field(ge=100, le=65535)]
    min_frequency: PositiveInt
    lowercase: bool


# ------------------------------------------------------------------------------------------------- pretrain
Backbone = Literal["electra", "roberta_prelayernorm"]
"""The encoder family (:data:`electra_model.pretraining.backbones.BACKBONES`): post-LN ELECTRA or pre-LN
RoBERTa-PreLayerNorm, both shipped by transformers."""

class ArchitectureParams(Section):
    """A preset: the discriminator's shape (the generator has the same depth and ``generator_fraction`` of the
    width) and the training recipe published with it, which top-level ``pretrain`` keys override."""

    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    intermediate_size: PositiveInt
    embedding_size: PositiveInt
    generator_fraction: Annotated[float, Field(gt=0.0, le=1.0)]
    learning_rate: PositiveFloat
    batch_size: PositiveInt
    warmup_steps: NonNegativeInt
    max_steps: PositiveInt
    sampling_temperature: PositiveFloat
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
    init_scale: Literal["hf", "width"]
    short_seq_len: PositiveInt
    short_seq_fraction: Annotated[float, Field(ge=0.0, lt=1.0)]
    backbone: Backbone

    @model_validator(mode="after")
    def _heads_divide_widths(self) -> ArchitectureParams:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}")
        generator_hidden = self.generator_hidden_size
        if generator_hidden % self.generator_heads:
            raise ValueError(
                f"generator width {generator_hidden} (hidden_size x generator_fraction) must be a multiple of "
                f"its head count {self.generator_heads}; choose another generator_fraction"
            )
        return self

    @property
    def generator_hidden_size(self) -> int:
        return max(1, round(self.hidden_size * self.generator_fraction))

    @property
    def generator_heads(self) -> int:
        """Head size stays the discriminator's (64 in the paper); the generator just has fewer heads."""
        return max(1, round(self.num_heads * self.generator_fraction))


RECIPE_KEYS = (
    "learning_rate", "batch_size", "warmup_steps", "max_steps", "sampling_temperature",
    "dropout", "init_scale", "short_seq_len", "short_seq_fraction", "backbone",
)


class PretrainParams(Section):
    """ELECTRA generator + discriminator pretraining (Clark et al., 2020).

    ``batch_size`` is the global batch of one optimizer step (the paper's 128 for Small): it is split over the
    ranks of a torchrun job and then into ``grad_accum_steps`` micro-batches, so the recipe does not change with
    the hardware. The recipe keys (:data:`RECIPE_KEYS`) left null take the preset's (every preset in params.yaml names
    all of them, so the fallback is a value there too).

    ``init_scale`` sets the standard deviation of the weights' normal initialisation: ``hf``, HF ELECTRA's fixed
    ``initializer_range`` (0.02), or ``width``, 1/sqrt(hidden size) of each half (compared in benchmarks/RESULTS.md, "A pretraining recipe that
    leaves the plateau"). The sequence-length curriculum trains
    the first ``short_seq_fraction`` of the steps on each block cut into pieces of ``short_seq_len`` tokens (the
    same tokens per step, shorter attention spans); 0 turns it off.

    ``budget_minutes`` trains for a wall-clock budget instead of ``max_steps``: the step time is measured, then
    ``max_steps`` is fitted to the budget and ``warmup_steps`` keeps its share of the schedule
    (:func:`electra_model.pretraining.loop.fit_to_budget`).

    ``backbone`` is the encoder class both halves are built from (:mod:`electra_model.pretraining.backbones`):
    post-LN ``electra`` or pre-LN ``roberta_prelayernorm``, which has no embedding projection, so it needs a preset
    whose ``embedding_size`` equals ``hidden_size``.

    ``objective`` ``mlm`` trains the discriminator's shape by masked-language-modelling alone, the paper's
    comparison arm; ``sampling_temperature`` divides the generator's logits before sampling (the reference's
    ``temperature``).

    Every ``eval_every`` steps (and at the last) the run scores its masked-LM on ``eval_blocks`` held-out blocks, the
    corpus's tail, which it never trains on (:mod:`electra_model.pretraining.heldout`). Every ``snapshot_every``
    steps (null: never) it keeps the discriminator for the downstream probe (:class:`ProbeParams`).

    ``parallel`` is how a torchrun job of several ranks splits the model: ``ddp`` replicates it on every rank,
    ``fsdp`` shards parameters, gradients and optimizer state over the ranks (:mod:`electra_model.pretraining.sharding`),
    for base and larger; a single process ignores it.
    """

    objective: Literal["electra", "mlm"]
    preset: str
    presets: dict[str, ArchitectureParams]
    max_seq_len: Annotated[int, Field(ge=8, le=4096)]
    batch_size: PositiveInt
    grad_accum_steps: PositiveInt
    max_steps: PositiveInt
    budget_minutes: PositiveFloat | None
    learning_rate: PositiveFloat
    warmup_steps: NonNegativeInt
    weight_decay: Annotated[float, Field(ge=0.0)]
    adam_epsilon: PositiveFloat
    adam_bias_correction: bool
    max_grad_norm: PositiveFloat
    mask_prob: Annotated[float, Field(gt=0.0, lt=1.0)]
    mask_token_prob: Probability
    disc_weight: PositiveFloat
    sampling_temperature: PositiveFloat
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
    init_scale: Literal["hf", "width"]
    short_seq_len: PositiveInt
    short_seq_fraction: Annotated[float, Field(ge=0.0, lt=1.0)]
    backbone: Backbone
    log_every: PositiveInt
    eval_every: PositiveInt
    eval_blocks: PositiveInt
    checkpoint_every: PositiveInt
    keep_checkpoints: PositiveInt
    snapshot_every: PositiveInt | None
    compile: bool
    parallel: Literal["ddp", "fsdp"]
    peak_tflops: PositiveFloat | None
    device: Device

    @model_validator(mode="before")
    @classmethod
    def _recipe_from_preset(cls, data: Any) -> Any:
        """A recipe key that is absent or null takes the chosen preset's value."""
        if not isinstance(data, dict):
            return data
        name, presets = data.get("preset"), data.get("presets")
        if isinstance(presets, dict) and isinstance(name, str) and name not in presets:
            # said here, before the recipe keys it would have given are reported missing one by one
            raise ValueError(f"preset {name!r} is not one of pretrain.presets: {sorted(presets)}")
        preset = presets.get(name) if isinstance(presets, dict) and isinstance(name, str) else None
        if isinstance(preset, ArchitectureParams):
            preset = preset.model_dump()
        filled = {key: value for key, value in data.items() if not (key in RECIPE_KEYS and value is None)}
        for key in RECIPE_KEYS:
            if key not in filled and isinstance(preset, dict) and preset.get(key) is not None:
                filled[key] = preset[key]
        return filled

    @model_validator(mode="after")
    def _consistent(self) -> PretrainParams:
        if self.warmup_steps > self.max_steps:
            raise ValueError(f"warmup_steps {self.warmup_steps} exceeds max_steps {self.max_steps}")
        if self.batch_size % self.grad_accum_steps:
            raise ValueError(f"batch_size {self.batch_size} is not a multiple of grad_accum_steps {self.grad_accum_steps}")
        if self.short_seq_fraction > 0 and self.max_seq_len % self.short_seq_len:
            raise ValueError(
                f"short_seq_len {self.short_seq_len} must divide max_seq_len {self.max_seq_len} (each block is cut "
                "into equal pieces while the sequence-length curriculum lasts), or set short_seq_fraction to 0"
            )
        arch = self.architecture
        if self.backbone == "roberta_prelayernorm" and arch.embedding_size != arch.hidden_size:
            raise ValueError(
                f"backbone roberta_prelayernorm has no embedding projection, so preset {self.preset!r} needs "
                f"embedding_size equal to hidden_size ({arch.embedding_size} != {arch.hidden_size}); choose backbone "
                "electra or a preset whose two widths agree"
            )
        if self.checkpoint_every % self.log_every:
            raise ValueError(
                f"checkpoint_every {self.checkpoint_every} must be a multiple of log_every {self.log_every} "
                "(a checkpoint closes a logging window, so a resumed run logs exactly what an uninterrupted one does)"
            )
        if self.eval_every % self.log_every:
            raise ValueError(
                f"eval_every {self.eval_every} must be a multiple of log_every {self.log_every} (a held-out "
                "evaluation is reported with its logging window)"
            )
        if self.snapshot_every is not None and self.snapshot_every % self.log_every:
            raise ValueError(
                f"snapshot_every {self.snapshot_every} must be a multiple of log_every {self.log_every} (a snapshot "
                "is taken when a logging window closes)"
            )
        return self

    @property
    def architecture(self) -> ArchitectureParams:
        return self.presets[self.preset]


class ProbeParams(Section):
    """The downstream probe (stage ``probe``, :mod:`electra_model.tasks.probe`): how good for the task was the
    discriminator at each ``pretrain.snapshot_every`` snapshot? Each is fine-tuned with the ``finetune`` recipe, but
    ``learning_rate`` and ``epochs`` of its own, on the first ``train_examples`` of the task's train split and scored on the first ``valid_examples``
    of valid (test is never read). Probes take at most ``max_share`` (<= 10%) of the pretraining time; when they
    cannot all fit, evenly spaced ones do, always with the last."""

    train_examples: PositiveInt
    valid_examples: PositiveInt
    epochs: PositiveInt
    learning_rate: PositiveFloat
    max_share: Annotated[float, Field(gt=0.0, le=0.1)]


# ------------------------------------------------------------------------------------------------- finetune
MixedPrecision = Literal["fp32", "auto", "fp16", "bf16"]


class FinetuneRecipe(Section):
    """A named fine-tuning recipe (``finetune.presets``): the keys it gives replace the top-level ``finetune`` ones
    when ``finetune.preset`` names it; keys it leaves out keep theirs. It is a partial override, so a key may be
    absent: its ``None`` means "not given", never a value (one of the two models, with :class:`SearchDimension`,
    whose fields may be left out)."""

    learning_rate: PositiveFloat | None = None
    epochs: PositiveInt | None = None
    batch_size: PositiveInt | None = None
    weight_decay: Annotated[float, Field(ge=0.0)] | None = None
    layer_lr_decay: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    warmup_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    adam_epsilon: PositiveFloat | None = None
    max_grad_norm: PositiveFloat | None = None
    mixed_precision: MixedPrecision | None = None


FINETUNE_RECIPE_KEYS = tuple(FinetuneRecipe.model_fields)


class FinetuneParams(Section):
    """Fine-tuning for the task (ELECTRA's recipe: AdamW, layer-wise LR decay, warmup + linear decay, early
    stopping on the validation score).

    ``init`` is where the weights start: 'pretrained', 'random', a ``save_pretrained`` directory or a Hugging Face
    model id (:mod:`electra_model.tasks.checkpoints`); a checkpoint's own tokenizer comes with it.

    ``preset`` names an entry of ``presets`` whose keys replace the top-level ones listed there (``seed``: the
    recipe of the tutorial this project grew from). The preset wins over those top-level keys; to vary one of them
    under a preset, set it inside the preset (``-S finetune.presets.seed.learning_rate=1e-4``).

    ``mixed_precision`` autocasts the training forward pass on CUDA (fp16 with a gradient scaler, or bf16;
    ``auto``: bf16 where the GPU has it, else fp16; ``fp32``: none); on CPU every value trains in fp32.

    ``head`` is the NER head: ``crf`` (a linear-chain CRF, the default since it beat softmax + constrained decoding
    on validation, benchmarks/RESULTS.md) or ``softmax``. The saved model records it; later stages read it there.

    ``max_seq_len`` bounds one model input; longer sentences are processed in overlapping windows, never cut.
    ``document_context`` fills the rest of each input with the neighbouring sentences of the same document.
    """

    init: str = Field(
        description="'pretrained' (our pretrain stage), 'random', a save_pretrained directory or a Hugging Face id",
    )
    preset: str | None
    presets: dict[str, FinetuneRecipe]
    head: Literal["crf", "softmax"]
    max_seq_len: Annotated[int, Field(ge=8, le=4096)]
    batch_size: PositiveInt
    epochs: PositiveInt
    learning_rate: PositiveFloat
    layer_lr_decay: Annotated[float, Field(gt=0.0, le=1.0)]
    warmup_ratio: Annotated[float, Field(ge=0.0, lt=1.0)]
    weight_decay: Annotated[float, Field(ge=0.0)]
    adam_epsilon: PositiveFloat
    max_grad_norm: PositiveFloat
    mixed_precision: MixedPrecision
    patience: PositiveInt
    document_context: bool
    device: Device

    @model_validator(mode="before")
    @classmethod
    def _recipe_from_preset(cls, data: Any) -> Any:
        """The chosen preset's keys replace the top-level ones (an unknown preset is reported after validation)."""
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        presets = data.get("presets")
        recipe = presets.get(data["preset"]) if isinstance(presets, dict) and isinstance(data["preset"], str) else None
        if isinstance(recipe, FinetuneRecipe):
            recipe = recipe.model_dump()
        if not isinstance(recipe, dict):
            return data
        given = {key: value for key, value in recipe.items() if key in FINETUNE_RECIPE_KEYS and value is not None}
        return {**data, **given}

    @model_validator(mode="after")
    def _preset_known(self) -> FinetuneParams:
        if self.preset is not None and self.preset not in self.presets:
            raise ValueError(f"preset {self.preset!r} is not one of finetune.presets: {sorted(self.presets)} (or null)")
        return self


class NerHf(Section):
    """A token-classification dataset for ``datasets.load_dataset`` whose tag column is a ClassLabel sequence."""

    path: str
    name: str | None
    tokens_column: str
    tags_column: str
    splits: dict[Literal["train", "valid", "test"], str]


class NerParams(Section):
    """Named-entity recognition on CoNLL-style data: where the data is and its tag ``scheme`` (``auto`` detects
    IOB1 or IOB2; the download stage writes IOB2 either way)."""

    scheme: Literal["auto", "iob1", "iob2"]
    local: SplitFiles
    hf: NerHf
    url: SplitUrls


class ClassificationHf(Section):
    """A text-classification dataset for ``datasets.load_dataset`` (a hub name or a local folder of data files)."""

    path: str
    name: str | None
    splits: dict[Literal["train", "valid", "test"], str]


class ClassificationParams(Section):
    """Sequence classification of single texts or text pairs: where the data is, which columns hold what, and how
    the best epoch is chosen.

    ``labels`` fixes the label list (and so the ids); left null it is the sorted set of train labels, so ids are
    stable for a given dataset. ``text_pair_column`` set makes it a pair task, encoded ``[CLS] a [SEP] b [SEP]``.
    """

    text_column: Annotated[str, Field(min_length=1)]
    text_pair_column: str | None
    label_column: Annotated[str, Field(min_length=1)]
    labels: list[str] | None
    selection_metric: Literal["accuracy", "macro_f1"]
    top_mistakes: PositiveInt
    local: SplitFiles
    hf: ClassificationHf
    url: SplitUrls

    @field_validator("labels")
    @classmethod
    def _labels_distinct(cls, labels: list[str] | None) -> list[str] | None:
        if labels is not None and (len(labels) < 2 or len(set(labels)) != len(labels)):
            raise ValueError("give at least two distinct labels, or null to take them from the train split")
        return labels


class EvaluateParams(Section):
    """Scoring of the fine-tuned model on a held-out split; ``top_confusions`` bounds the error analysis lists."""

    split: Literal["valid", "test"]
    batch_size: PositiveInt
    top_confusions: PositiveInt


class RequestLimitParams(Section):
    """What one request to the served model may cost (:mod:`electra_model.client.limits`); recorded in the exported
    ``model_meta.json`` so that every server of the registered model enforces them."""

    max_request_bytes: PositiveInt
    max_texts: PositiveInt
    max_text_chars: PositiveInt


class ExportParams(Section):
    """ONNX export variants, their checks, the variant served on CPU, and registry promotion.

    The gate and the variant choice read the task's quality score on validation: entity F1 for an NER model,
    accuracy for a sequence classifier (the task is the exported model's own, from its ``config.json``).
    ``min_f1`` and ``max_f1_drop`` keep their NER-era names but bound that score, whichever it is, in its
    direction (``min_f1`` is a ceiling for a lower-is-better score such as an error).
    ``serve_variant: auto`` serves the fastest CPU variant (batch-1 latency over ``latency_runs`` runs) whose score
    is within ``max_f1_drop`` of the fp32 export's; scores are fractions, so 0.005 is half a point.
    ``model_name`` null registers under the task's own name (its spec's ``model_name``: ``electra-ner``, ...).
    """

    opset: Annotated[int, Field(ge=14, le=20)]  # above 20 the optimizer no longer fuses the attention graph
    parity_atol: PositiveFloat
    min_f1: Probability
    serve_variant: Literal["auto", "fp32", "optimized", "int8"]
    max_f1_drop: Probability
    latency_runs: PositiveInt
    model_name: Annotated[str, Field(min_length=1)] | None
    alias: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")]
    limits: RequestLimitParams


class CardParams(Section):
    """The two facts of a model card that no stage records (:mod:`electra_model.tracking.card_render`): the
    language of the data (an ISO 639 code, as the Hugging Face hub's ``language``) and the license the model is
    published under (a hub license id)."""

    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")]
    license: Annotated[str, Field(min_length=1)]


class TrackingParams(Section):
    """Where MLflow logs go. ``MLFLOW_TRACKING_URI`` in the environment overrides ``uri``.

    ``uri`` carries no credentials: params.yaml is committed and logged, so a password in it would leak; MLflow reads
    them from the environment (``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, a database's own variables
    such as ``PGPASSWORD``)."""

    uri: str
    artifact_location: str
    experiment: Annotated[str, Field(min_length=1)]
    connect_timeout_s: PositiveFloat

    @field_validator("uri")
    @classmethod
    def _no_credentials(cls, uri: str) -> str:
        return without_credentials(uri, "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (a database: "
                                        "PGPASSWORD or its own variables) in the environment")


# ---------------------------------------------------------------------------------------------- annotate
class AnnotateParams(Section):
    """Where ``electra annotate`` finds Label Studio and puts what it pulls (README, "Labelling your own data").

    ``url`` is the server's address (``make label-studio`` serves it; its API token is read from
    ``LABEL_STUDIO_API_KEY`` or the ``api-token`` file in ``data_dir``, never from here: params.yaml is committed);
    ``project`` the Label Studio project's title (null: the task's registered model name, e.g. ``electra-ner``);
    ``out`` the folder ``pull`` writes as a DVC-tracked dataset; ``data_dir`` the server's own database and uploads
    (inside the project, ignored by git)."""

    url: Annotated[str, Field(pattern=r"^https?://[^/@\s]+/?$")]
    project: Annotated[str, Field(min_length=1)] | None
    out: Annotated[str, Field(min_length=1)]
    data_dir: Annotated[str, Field(min_length=1)]
    timeout_s: PositiveFloat


class LabellingParams(Section):
    """One round of the labelling loop (``flows/labelling.py``, the ``labelling`` deployment): pull the finished
    annotations, train on them as a DVC experiment, let the gate decide, push the next batch.

    ``pool`` is the file of unlabelled texts the next batch is chosen from (one per line, or JSONL with ``"text"``;
    texts already in the Label Studio project are never chosen again); ``k`` how many texts each round pushes;
    ``diversity`` spreads them (null, or ``kcenter`` as ``electra select --diversity``); ``experiment`` the MLflow
    experiment that holds one run per round, apart from the pipeline's own runs."""

    pool: Annotated[str, Field(min_length=1)]
    k: PositiveInt
    diversity: Literal["kcenter"] | None
    experiment: Annotated[str, Field(min_length=1)]


# -------------------------------------------------------------------------------------------------- tune
class SearchDimension(Section):
    """One searched params.yaml key: a range (``low``..``high``, ``log`` spacing, an optional ``step``) or a list of
    ``choices``. Whether the values suit the key (type, bounds) is checked against the key's own model, before any
    trial, by :mod:`electra_model.search.space`. The keys of the form not used are left out, so they may be absent:
    ``None`` means "not given" (``log`` absent: linear spacing)."""

    low: float | None = None
    high: float | None = None
    log: bool | None = None
    step: PositiveFloat | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchDimension:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("give either choices or low/high (with log, step), not both")
            if not self.choices:
                raise ValueError("choices is empty; list at least one value")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (a range) or choices (a list)")
        if self.low >= self.high:
            raise ValueError(f"empty range: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("log scale and step do not combine; drop one")
        return self


class PruningParams(Section):
    """Stop a trial whose per-epoch ``curve`` (an MLflow metric the stage logs each epoch, e.g. ``valid_f1``) is below
    the median of the finished trials at the same epoch (Optuna's median rule)."""

    curve: str | None  # null: no pruning
    startup_trials: NonNegativeInt  # finished trials needed before any trial is pruned
    warmup_epochs: NonNegativeInt  # epochs a trial always runs before it can be pruned


class TuneParams(Section):
    """``electra tune``: an Optuna study (TPE, seeded) whose trials are DVC experiments of the stages up to ``stage``
    and MLflow runs nested under one study run. ``metric`` is ``<metrics file>:<key>`` of that stage, read on
    validation (a search never reads test). ``storage`` is Optuna's (a relative sqlite path sits at the project
    root; a PostgreSQL database for workers on several machines); ``--resume`` continues the study of that name
    there. A running trial records a heartbeat every ``heartbeat_s``; one silent for ``grace_s`` (its worker died)
    is failed and queued again, up to ``retries`` times, for any worker to run. ``git_remote`` is where each finished
    trial's experiment is pushed (`dvc exp push`), so that the workers' experiments meet in one place."""

    study: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
    storage: str
    heartbeat_s: PositiveInt
    grace_s: PositiveInt
    retries: NonNegativeInt
    git_remote: Annotated[str, Field(min_length=1)] | None
    stage: Annotated[str, Field(min_length=1)]
    metric: Annotated[str, Field(pattern=r"^[^:]+:.+$")]
    direction: Literal["maximize", "minimize"]
    n_trials: PositiveInt
    parallel: PositiveInt
    timeout_minutes: PositiveFloat | None
    seed: Seed
    pruning: PruningParams
    space: dict[str, SearchDimension]  # required: a search names what it searches

    @field_validator("storage")
    @classmethod
    def _a_database_optuna_can_share(cls, storage: str) -> str:
        # credentials first: the next error echoes the value
        without_credentials(storage, "set PGPASSWORD in the environment (or use ~/.pgpass)", user_allowed=True)
        if not storage.startswith(STUDY_STORAGES):
            raise ValueError("not a storage electra tune supports; give sqlite:///<file> (one machine) or "
                             "postgresql://[user@]<host>[:port]/<database> (workers on several machines)")
        return storage

    @model_validator(mode="after")
    def _grace_outlasts_heartbeat(self) -> TuneParams:
        if self.grace_s <= self.heartbeat_s:
            raise ValueError(f"grace_s ({self.grace_s}) must exceed heartbeat_s ({self.heartbeat_s}): a live trial "
                             "would be taken for a dead one between two heartbeats")
        return self


TaskName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
PluginRef = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]


class Params(Section):
    """The whole of ``params.yaml``. ``task`` chooses what the download, finetune, evaluate and export stages do
    (:func:`electra_model.tasks.catalog.task_for`); each task's own section is read only when ``task`` names it.

    ``task`` is checked against the registered tasks when a stage starts (:func:`electra_model.tasks.plugins.
    task_spec`), not here: the registry imports this module, so this module cannot know it. For the same reason a
    plug-in task's own section (``task: my_task`` with a ``my_task:`` section) passes through here as a mapping and
    is validated against the plug-in's params model at stage start; any other unknown top-level key is refused
    here. ``plugins`` lists ``module:ATTRIBUTE`` references to plug-in :class:`~electra_model.tasks.spec.TaskSpec`
    objects, beside those installed under the ``electra_model.tasks`` entry points."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    task: TaskName
    plugins: list[PluginRef]
    seed: Seed
    data: DataParams
    tokenizer: TokenizerParams
    pretrain: PretrainParams
    probe: ProbeParams
    finetune: FinetuneParams
    evaluate: EvaluateParams
    export: ExportParams
    card: CardParams
    tracking: TrackingParams
    annotate: AnnotateParams
    labelling: LabellingParams
    tune: TuneParams
    ner: NerParams
    classification: ClassificationParams

    @model_validator(mode="after")
    def _only_the_task_section_is_extra(self) -> Params:
        """The one top-level key the models do not declare may be the chosen plug-in task's own section."""
        for key, value in (self.model_extra or {}).items():
            if key != self.task:
                raise ValueError(f"{key}: unknown key (value {value!r}); remove it or fix its spelling")
            if not isinstance(value, dict):
                raise ValueError(f"{key}: the task's own section must be a mapping, got {type(value).__name__}")
        return self

    @model_validator(mode="after")
    def _chosen_source_is_complete(self) -> Params:
        """A ``local`` or ``url`` source needs the corpus and, when the task's section has one, a file per split
        of the task's data (``<task>.<source>.train`` ...)."""
        source = self.data.source
        if source not in ("local", "url"):
            return self
        section = self.model_dump().get(self.task)
        files = section.get(source) if isinstance(section, dict) else None
        missing = [f"data.{source}.corpus"] * (not getattr(self.data, source).corpus)
        if isinstance(files, dict):
            missing += [f"{self.task}.{source}.{split}" for split in ("train", "valid", "test") if not files.get(split)]
        if missing:
            what = "a path" if source == "local" else "url and sha256"
            raise ValueError(f"data.source is {source!r} but {', '.join(missing)} is not set; give {what} for each")
        return self

    @model_validator(mode="after")
    def _sequence_lengths_fit(self) -> Params:
        if self.finetune.max_seq_len > self.pretrain.max_seq_len and self.finetune.init == "pretrained":
            raise ValueError(
                f"finetune.max_seq_len {self.finetune.max_seq_len} exceeds pretrain.max_seq_len "
                f"{self.pretrain.max_seq_len}, the longest position the pretrained model knows"
            )
        return self


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (value {error['input']!r}); remove it or fix its spelling"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    value = error.get("input")
    shown = "" if isinstance(value, dict) or error["type"] == CREDENTIALS_ERROR else f" = {value!r}"
    return f"{key}{shown}: {error['msg']}"


def validate_section(model: type[BaseModel], raw: Any, source: str) -> Any:
    """Validate ``raw`` as ``model``; raise :class:`ElectraError` listing every bad key at once."""
    if not isinstance(raw, dict):
        raise ElectraError(f"{source}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [_describe(item) for item in error.errors()]
        if len(problems) == 1:  # the common case reads as one line: file, key, value, what to do
            raise ElectraError(f"{source}: invalid param {problems[0]}") from None
        listed = "\n  ".join(problems)
        raise ElectraError(f"{source} has {len(problems)} invalid params:\n  {listed}") from None


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a params mapping; raise :class:`ElectraError` listing every bad key at once."""
    return validate_section(Params, raw, source)


def read_params_file(path: Path | str) -> Any:
    """The parsed YAML of a params file, unvalidated; a missing file or a YAML syntax error names the file (and
    line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ElectraError(f"{path}: params file not found; run from the project root or pass its path") from None
    check_spaces(text.removeprefix("\ufeff"), path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ElectraError(f"{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    if raw is None:  # said here: `dvc repro` would only report the first key its dvc.yaml interpolates
        raise ElectraError(
            f"{path}: the file is empty (or only comments), but every section is required; restore it, e.g. "
            f"`git checkout {path.name}`"
        )
    return raw


def check_spaces(text: str, path: Path) -> None:
    """Refuse a no-break, zero-width or other unusual space outside a comment line, naming its line and column.

    Pasted from a web page or a word processor, such a space looks like a plain one but is not YAML
    whitespace: as indentation it silently makes a key of another section, and elsewhere the parser reports the
    line after it, so neither message points at the character."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip(" ").startswith("#"):
            continue
        for column, character in enumerate(line, start=1):
            if character in "\u200b\ufeff" or (character != " " and unicodedata.category(character) == "Zs"):
                raise ElectraError(
                    f"{path}:{number}:{column}: a {unicodedata.name(character, 'special space').lower()} "
                    f"(U+{ord(character):04X}) where YAML needs a plain space; retype it as a plain space"
                )


def with_overrides(raw: Any, overrides: Mapping[str, Any]) -> Any:
    """``raw`` with each dotted key (``finetune.learning_rate``) set to its value, as ``dvc exp run -S`` sets it:
    a benchmark or a test changes a knob this way, so every value it does not name still comes from params.yaml."""
    changed = copy.deepcopy(raw)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        section = changed
        for part in parents:
            if not isinstance(section.get(part), dict):
                raise ElectraError(f"override {key}: {part!r} is not a section of the params; check the key")
            section = section[part]
        section[leaf] = value
    return changed


def load_params(path: Path | str = "params.yaml", overrides: Mapping[str, Any] | None = None) -> Params:
    """Load and validate ``params.yaml``, with ``overrides`` (dotted keys, as ``-S``) applied first; a YAML syntax
    error names the line."""
    raw = read_params_file(path)
    return parse_params(with_overrides(raw, overrides) if overrides else raw, str(path))


def load_section(name: str, path: Path | str = "params.yaml", overrides: Mapping[str, Any] | None = None) -> Any:
    """One section of a params file, with ``overrides`` (keys inside the section, dotted for nested ones), validated
    on its own: for a benchmark that runs one stage's library code outside the pipeline, where the checks across
    sections (a fine-tuning length the pretrain stage's model must know) do not apply."""
    raw = read_params_file(path)
    if not isinstance(raw, dict) or not isinstance(raw.get(name), dict) or name not in Params.model_fields:
        raise ElectraError(f"{path}: no params section {name!r}; check the file and the name")
    return validate_section(Params.model_fields[name].annotation, with_overrides(raw[name], overrides or {}), f"{path} ({name})")


class TrackingOnly(Section):
    """The ``tracking`` section alone, so that its errors carry the same ``tracking.`` keys as a full load."""

    tracking: TrackingParams


class AnnotateOnly(Section):
    """The ``annotate`` section alone, so that its errors carry the same ``annotate.`` keys as a full load."""

    annotate: AnnotateParams


def load_annotate_params(path: Path | str = "params.yaml") -> AnnotateParams:
    """Only the ``annotate`` section: talking to Label Studio needs nothing else, as reading the registry needs only
    ``tracking`` (:func:`load_tracking_params`)."""
    raw = read_params_file(path)
    only = {key: value for key, value in raw.items() if key == "annotate"} if isinstance(raw, dict) else raw
    return validate_section(AnnotateOnly, only, str(path)).annotate


def load_tracking_params(path: Path | str = "params.yaml") -> TrackingParams:
    """Only the ``tracking`` section of a params file, validated: a client that reads the registry needs nothing
    else, so a bad key elsewhere (a half-edited experiment, say) must not stop it."""
    raw = read_params_file(path)
    only = {key: value for key, value in raw.items() if key == "tracking"} if isinstance(raw, dict) else raw
    return validate_section(TrackingOnly, only, str(path)).tracking


def stage_params(params: Params, stage: str, dvc_file: Path | str = "dvc.yaml") -> dict[str, Any]:
    """The params dvc.yaml gives ``stage`` (its ``params:`` list, keys like ``finetune`` or ``evaluate.split``) with
    their values, so that a stage logs exactly what DVC tracks for it: dvc.yaml is the map, nothing restates it."""
    if not Path(dvc_file).is_file():
        raise ElectraError(f"{dvc_file} not found; run stages from the project root, e.g. `dvc repro {stage}`")
    stages = yaml.safe_load(Path(dvc_file).read_text(encoding="utf-8")).get("stages", {})
    if stage not in stages:
        raise ElectraError(f"{dvc_file}: no stage {stage!r}; run the stage with `dvc repro {stage}` in the project")
    values = params.model_dump()
    logged = {}
    for key in stages[stage].get("params", []):
        value: Any = values
        for part in str(key).split("."):
            value = value[part]
        logged[str(key)] = value
    return logged
