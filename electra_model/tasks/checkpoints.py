"""Where ``finetune.init`` takes the starting weights from, resolved to a local checkpoint directory.

Four forms, for every task: ``pretrained`` (our pretrain stage's output), ``random`` (no weights: our pretrained
shape, initialised at random), the path of a directory saved with ``save_pretrained``, or a Hugging Face model id
such as ``google/electra-small-discriminator``. A hub model is downloaded once into the Hugging Face cache (only the
files a checkpoint and its tokenizer need) and read from there, so the rest of fine-tuning sees a directory either
way::

    source = model_source("google/electra-small-discriminator", Path("models/pretrained"))  # the cached snapshot

Reaching the hub is checked first with a short timeout: the hub client waits without limit on a network that drops
packets, and a pipeline stage should fail in seconds with what to do, not hang. ``HF_HUB_OFFLINE=1`` (the hub
library's own switch) skips the network and uses the cache alone.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import httpx
from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from electra_model.errors import ElectraError

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
