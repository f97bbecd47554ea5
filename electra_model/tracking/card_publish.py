"""Where a model card goes: the README of the hub-ready checkpoint folder, and the registered model version
(its description, and ``README.md`` among its artifacts).

The folder is the fine-tuned checkpoint with the card beside it, replaced atomically (:func:`electra_model.io.
atomic_dir`); its files are hard links where the file system allows, so the weights are not stored twice. The
registry side is idempotent: publishing the same card again rewrites the same description and file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from electra_model.errors import ElectraError
from electra_model.io import atomic_dir
from electra_model.tracking.card_render import card_body

README = "README.md"


def write_hub_folder(checkpoint: Path, card: str, out: Path) -> None:
    """``out`` = the checkpoint's files and the card as ``README.md``, all or nothing."""
    if not (checkpoint / "config.json").is_file():
        raise ElectraError(f"{checkpoint} holds no config.json; point --checkpoint at the folder the finetune stage "
                           "wrote (models/finetuned)")
    with atomic_dir(out) as staging:
        for path in sorted(checkpoint.iterdir()):
            if path.is_file() and path.name != README:
                try:
                    os.link(path, staging / path.name)
                except OSError:  # another file system, or no hard links
                    shutil.copy2(path, staging / path.name)
        (staging / README).write_text(card, encoding="utf-8")


def model_id(version: ModelVersion) -> str:
    """The logged model behind a registered version (MLflow 3: its source is ``models:/<model id>``)."""
    found = getattr(version, "model_id", None)
    if found:
        return found
    if version.source.startswith("models:/"):
        return version.source.removeprefix("models:/").split("/")[0]
    raise ElectraError(f"registered model {version.name!r} version {version.version} has source {version.source!r}, "
                       "not a logged model; register it again with the export stage (`dvc repro -f export`)")


def publish_card(client: MlflowClient, version: ModelVersion, card: str) -> None:
    """The card becomes the version's description and ``README.md`` among its model's artifacts."""
    client.update_model_version(version.name, version.version, description=card_body(card))
    with tempfile.TemporaryDirectory() as folder:
        readme = Path(folder) / README
        readme.write_text(card, encoding="utf-8")
        client.log_model_artifact(model_id(version), str(readme))
