"""Reconcile the MLflow registry with what DVC says is exported, and report what the registry holds.

DVC decides that the export stage is up to date from ``dvc.lock``, but the registry lives elsewhere: after
``mlflow.db`` is lost, on a fresh clone after ``dvc pull``, or with ``MLFLOW_TRACKING_URI`` pointing at a new
server, it no longer holds the version that export registered, and a no-op ``dvc repro`` would not register it
again. :func:`reconcile` finds the version registered from the very bytes of ``models/onnx`` (its
``onnx_digest`` tag) and registers the cached directory again when there is none, letting the gate decide the alias
on the quality the export stage recorded in ``metrics/export.json``, with the card stage's model card. Called by the Prefect flow inside its
MLflow parent run; the flow's summary reports what this returns, never the version number in the metrics file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow

from electra_model.config import ExportParams
from electra_model.errors import ElectraError
from electra_model.export.result import ExportQuality
from electra_model.io import read_json
from electra_model.tasks.registry import registered_name
from electra_model.tracking.card_publish import publish_card
from electra_model.tracking.registry import alias_holder, directory_digest, register, version_of
from electra_model.tracking.runs import client as tracking_client


def reconcile(
    onnx_dir: Path | str, export_metrics: Path | str, export: ExportParams, card: Path | str | None = None
) -> dict[str, Any]:
    """The registry's version of ``onnx_dir``, registered now if the registry lacks it; the alias's holder.
    A version registered now also gets the model card the card stage wrote (``card``, its README.md), when there is
    one: the card stage found no version to publish it to."""
    onnx_dir, export_metrics = Path(onnx_dir), Path(export_metrics)
    if not onnx_dir.is_dir() or not export_metrics.is_file():
        raise ElectraError(
            f"{onnx_dir} or {export_metrics} is missing, so there is nothing to register; run `dvc repro export` "
            "(or `dvc pull export` on a clone)"
        )
    client = tracking_client()
    quality = ExportQuality.from_dict(read_json(export_metrics), str(export_metrics))
    name = registered_name(export, quality.task)
    version = version_of(client, name, directory_digest(onnx_dir))
    registered_now = version is None
    if registered_now:
        tags = {"registration": "reconciled: the registry lacked the exported model in models/onnx"}
        with mlflow.start_run(run_name="register", nested=mlflow.active_run() is not None, tags=tags):
            registration = register(onnx_dir, export, quality)
        version = client.get_model_version(name, registration["version"])
        if card is not None and Path(card).is_file():
            publish_card(client, version, Path(card).read_text(encoding="utf-8"))
            version = client.get_model_version(name, version.version)
    holder = alias_holder(client, name, export.alias)
    return {
        "name": name,
        "version": int(version.version),
        "registered_now": registered_now,
        "card": bool(version.description),
        "decision": version.tags.get("champion_decision", "unknown"),
        "reason": version.tags.get("champion_reason", ""),
        "alias": export.alias,
        "alias_version": int(holder.version) if holder is not None else None,
    }
