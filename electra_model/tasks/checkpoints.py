"""Where ``finetune.init`` takes the starting weights from, resolved to a local checkpoint directory.

Four forms, for every task: ``pretrained`` (our pretrain stage's output), ``random`` (no weights: our pretrained
shape, initialised at random), the path of a directory saved with ``save_pretrained``, or a Hugging Face model id
such as ``google/electra-small-discriminator``. A hub model is downloaded once into the Hugging Face cache (only the
files a checkpoint and its tokenizer need) and read from there, so the rest of fine-tuning sees a directory either
way. :func:`load_model` loads the weights under a task's head, :func:`load_tokenizer` the tokenizer that goes with
them::

    source = model_source("google/electra-small-discriminator", Path("models/pretrained"))  # the cached snapshot
    model = load_model(init, Path("models/pretrained"), labels, ElectraForSequenceClassification)

Reaching the hub is checked first with a short timeout: the hub client waits without limit on a network that drops
packets, and a pipeline stage should fail in seconds with what to do, not hang. ``HF_HUB_OFFLINE=1`` (the hub
library's own switch) skips the network and uses the cache alone.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import httpx
from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from tokenizers import Tokenizer
import transformers
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES,
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
)

from electra_model.data.tokenizer import load_backend_tokenizer, special_token_ids
from electra_model.errors import ElectraError

ModelWithHead = TypeVar("ModelWithHead", bound=PreTrainedModel)

PRETRAINED, RANDOM = "pretrained", "random"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
"""``name`` or ``owner/name`` as the hub spells them; anything else (``./x``, ``/x``, ``a/b/c``) is only a path."""
CHECKPOINT_FILES = [
    "config.json", "*.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
]
"""What a checkpoint and its tokenizer need: weights (safetensors, else a ``.bin`` that transformers reads with
``weights_only``), config, and the tokenizer files; not the TensorFlow, Flax or ONNX copies many repos also hold."""
PROBE_TIMEOUT_S = 5.0
HEAD_PREFIX = "classifier."
"""The task head's tensors: the only ones fine-tuning may initialise anew."""


def model_source(init: str, pretrained_dir: Path) -> Path | None:
    """The checkpoint directory weights come from (``None`` for random init), checked to hold a config."""
    if init == RANDOM:
        return None
    if init == PRETRAINED:
        return checked_directory(pretrained_dir, init)
    path = Path(init).expanduser()
    if path.exists() or not HUB_ID.match(init):
        return checked_directory(path, init)
    return checked_directory(hub_checkpoint(init), init)


def checked_directory(source: Path, init: str) -> Path:
    if not (source / "config.json").is_file():
        raise ElectraError(
            f"finetune.init: {source} is not a transformers checkpoint directory (no config.json); "
            "use 'pretrained', 'random', the path of a model saved with save_pretrained, or a Hugging Face model id"
            + (f" (no directory {init} exists)" if not source.exists() else "")
        )
    return source


@lru_cache(maxsize=8)
def hub_checkpoint(model_id: str) -> Path:
    """The cached snapshot of a hub model, downloaded if the hub is reachable; once per process per model."""
    endpoint = constants.ENDPOINT
    offline_reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else unreachable(endpoint)
    try:
        return Path(snapshot_download(model_id, allow_patterns=CHECKPOINT_FILES, local_files_only=bool(offline_reason)))
    except LocalEntryNotFoundError:
        why = offline_reason or f"the hub at {endpoint} did not answer"
        raise ElectraError(
            f"finetune.init: {model_id!r} is no directory here, so it was read as a Hugging Face model id, but {why} "
            f"and the model is not in the "
            f"local Hugging Face cache ({constants.HF_HUB_CACHE}). Where the hub is reachable, run "
            f"`hf download {model_id}` (or fine-tune once there) to cache it, or download it to a directory and set "
            "finetune.init to that directory's path"
        ) from None
    except (HfHubHTTPError, ValueError) as error:
        raise ElectraError(
            f"finetune.init: {model_id!r} could not be fetched from the Hugging Face hub ({error}); check the model "
            "id (owner/name as on huggingface.co), and for a gated or private model log in with `hf auth login`"
        ) from None


def unreachable(endpoint: str) -> str:
    """Why the hub cannot be used now ('' when it answers): one HEAD request with a short timeout, through the
    same proxy settings the hub client would use."""
    try:
        httpx.head(endpoint, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as error:
        return f"the hub at {endpoint} is not reachable ({type(error).__name__}: {error or 'no answer'})"
    return ""


def load_model(init: str, pretrained_dir: Path, labels: list[str], model_class: type[ModelWithHead]) -> ModelWithHead:
    """Weights per ``finetune.init``: our pretrained discriminator, random of the same shape, or a checkpoint dir,
    under the task's head ``model_class`` (NER's :data:`electra_model.tasks.ner.heads.HEADS`, or sequence
    classification's), on the same body either way.

    Only the classification head may be newly initialised: a checkpoint of another shape or kind would otherwise
    be loaded with its mismatched tensors silently re-initialised, and a "pretrained" model would be partly random.
    """
    label_maps = dict(id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    source = model_source(init, pretrained_dir)
    if source is None:
        config = AutoConfig.from_pretrained(pretrained_dir, num_labels=len(labels), **label_maps)
        return for_body(model_class, config, pretrained_dir)(config)
    model_class = for_body(model_class, AutoConfig.from_pretrained(source), source)
    model, info = model_class.from_pretrained(
        source, num_labels=len(labels), ignore_mismatched_sizes=True, output_loading_info=True, **label_maps
    )
    check_only_head_is_new(source, info)
    return model


TASK_HEADS = (
    MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES,
)
"""transformers' own tables of each body's task-head class (what the Auto classes load), by model type."""


def for_body(model_class: type[ModelWithHead], config: PretrainedConfig, where: Path) -> type[ModelWithHead]:
    """``model_class``'s task head on the body ``config`` describes: the tasks name ELECTRA's head classes, and a
    checkpoint of another pretraining backbone (``pretrain.backbone``, e.g. RoBERTa-PreLayerNorm) gets that body's
    class for the same task, as ``AutoModelFor*`` would load it. A head of ours that only exists on ELECTRA (NER's
    CRF) on another body is an error naming the head to use instead."""
    if isinstance(config, model_class.config_class):
        return model_class
    for table in TASK_HEADS:
        if model_class.__name__ in table.values() and config.model_type in table:
            return getattr(transformers, table[config.model_type])
    raise ElectraError(
        f"{where}: the {model_class.__name__} head is built on ELECTRA, but this checkpoint's body is "
        f"{config.model_type!r}; use a head transformers ships for it (finetune.head: softmax for NER) or pretrain "
        "with pretrain.backbone: electra"
    )


def check_only_head_is_new(source: Path, loading_info: dict[str, Any]) -> None:
    """Refuse a load that left any tensor but the classifier head missing or re-initialised, naming the tensors."""
    mismatched = [entry[0] if isinstance(entry, tuple) else entry for entry in loading_info.get("mismatched_keys", [])]
    missing = list(loading_info.get("missing_keys", []))
    body = sorted(name for name in {*missing, *mismatched} if not name.startswith(HEAD_PREFIX))
    if body:
        raise ElectraError(
            f"finetune.init: {source} does not hold the whole model body; {len(body)} tensors would be initialised "
            f"at random: {', '.join(body[:8])}{' ...' if len(body) > 8 else ''}. Point finetune.init at an ELECTRA "
            "discriminator checkpoint of this shape, or use 'random' to train from scratch on purpose"
        )


def load_tokenizer(init: str, pretrained_dir: Path) -> Tokenizer:
    """The tokenizer that goes with the weights: a foreign checkpoint's own (``tokenizer.json``, or converted from
    its ``vocab.txt`` by transformers), else ours; never truncating or padding, since each task builds its model inputs itself."""
    source = model_source(init, pretrained_dir) or pretrained_dir
    if (source / "tokenizer.json").is_file():
        tokenizer = load_backend_tokenizer(source)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source).backend_tokenizer
        except (OSError, ValueError) as error:
            raise ElectraError(f"finetune.init: {source} has no usable tokenizer ({error})") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    special_token_ids(tokenizer)
    return tokenizer
