"""Registration of the exported ONNX model in the MLflow model registry, behind a quality gate.

``register`` logs the exported directory as an MLflow pyfunc (``electra_model/serving/pyfunc.py``, a model from code) in
the active run, registers it as ``export.model_name`` (by default the task's name: ``electra-ner`` for NER,
``electra-classifier`` for a sequence classifier), and moves ``export.alias`` (``champion``) to the new version
only when parity passed and the task's quality score of the variant it serves on CPU (entity F1 for NER, accuracy
for a classifier; :attr:`electra_model.tasks.spec.TaskSpec.quality_metric`) reaches both ``export.min_f1`` and the
current champion's. Every version carries its task, decision, the reason, the served variant and every variant's
scores and latency as tags, so the registry itself answers "why is this the champion, and how fast is it?".
Called by the export stage (``dvc repro export``) inside its MLflow run.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from electra_model.config import ExportParams
from electra_model.errors import ElectraError
from electra_model.export.result import ExportQuality
from electra_model.client.store import is_missing
from electra_model.tasks.registry import registered_name
from electra_model.tracking.runs import client as tracking_client

PACKAGE_DIR = Path(__file__).resolve().parents[1]
SERVING_CODE = PACKAGE_DIR / "serving" / "pyfunc.py"
SERVING_REQUIREMENTS = ["onnxruntime", "tokenizers", "numpy"]
READY_TIMEOUT_S = 300
VARIANT_TAG_KEYS = ("f1", "accuracy", "macro_f1", "max_abs_logit_diff", "labels_identical", "latency_ms_b1", "latency_ms_b1_p95")
DIGEST_TAG = "onnx_digest"


def directory_digest(directory: Path | str) -> str:
    """A content hash of the exported directory (file names and bytes): the tag that ties a registered version to
    the ``models/onnx`` DVC recorded, so a registry that lost it can be found out (``registry_sync``)."""
    directory = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def version_of(client: MlflowClient, name: str, digest: str) -> ModelVersion | None:
    """The newest version of ``name`` registered from a directory with this :func:`directory_digest`, or None."""
    versions = client.search_model_versions(f"name = '{name}' and tags.{DIGEST_TAG} = '{digest}'")
    return max(versions, key=lambda version: int(version.version), default=None)


def alias_holder(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding ``alias``, or None when the model or the alias does not exist yet (the first run)."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as error:
        if is_missing(error):
            return None
        raise
    if alias not in model.aliases:
        return None
    return client.get_model_version_by_alias(name, alias)


def tagged_score(version: ModelVersion, metric: str) -> float | None:
    """The score a version was registered with (its ``metric`` tag, e.g. ``f1``); None for a version registered by
    other means."""
    try:
        value = float(version.tags[metric])
    except (KeyError, ValueError):
        return None
    return None if math.isnan(value) else value


def parity_clause(quality: ExportQuality, atol: float) -> str:
    diff = quality.max_abs_logit_diff
    clause = f"parity max diff {diff:.1e} {'<=' if diff <= atol else '>'} {atol:.0e}"
    return clause if quality.labels_identical else f"{clause} but argmax labels differ"


def variant_tags(variants: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``variant.<name>.<measure>`` tags: every variant's F1, latency and distance from torch stays readable on the
    version, whichever variant the alias serves, so switching ``export.serve_variant`` is an informed choice."""
    return {
        f"variant.{name}.{key}": str(measures[key])
        for name, measures in variants.items()
        for key in VARIANT_TAG_KEYS
        if key in measures
    }


def decide(quality: ExportQuality, export: ExportParams, champion: ModelVersion | None) -> tuple[bool, str]:
    """Whether the new version takes the alias, and a sentence saying why (it becomes a tag on the version).
    ``export.min_f1`` is the bar for the task's quality score (``quality.metric``), whatever its name, in its
    direction: the score must reach it from above when lower is better (an error), as it must match or beat the
    champion's."""
    metric, score = quality.metric, quality.score
    reached, missed = (">=", "<") if quality.higher_is_better else ("<=", ">")
    parity = parity_clause(quality, export.parity_atol)
    if not quality.parity_passed:
        return False, f"parity failed: {parity}"
    if not quality.reaches(export.min_f1):
        return False, f"{metric} {score:.4f} {missed} min_f1 {export.min_f1:.2f}; {parity}"
    passed_min = f"{metric} {score:.4f} {reached} min_f1 {export.min_f1:.2f}"
    if champion is None:
        return True, f"{passed_min} and no version held alias '{export.alias}'; {parity}"
    champion_score = tagged_score(champion, metric)
    if champion_score is None:
        return True, f"{passed_min} and champion v{champion.version} has no {metric} tag; {parity}"
    if not quality.reaches(champion_score):
        return False, (
            f"{metric} {score:.4f} {missed} champion v{champion.version} {metric} {champion_score:.4f}; {parity}"
        )
    return True, f"{passed_min} and {reached} champion v{champion.version} {metric} {champion_score:.4f}; {parity}"


def log_pyfunc(onnx_dir: Path | str, model_name: str) -> str:
    """Log and register the serving pyfunc in the active run; return the new version once it is READY."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(SERVING_CODE),
        artifacts={"onnx_dir": str(Path(onnx_dir).resolve())},
        code_paths=[str(PACKAGE_DIR)],
        pip_requirements=SERVING_REQUIREMENTS,
        registered_model_name=model_name,
        await_registration_for=READY_TIMEOUT_S,
    )
    version = str(info.registered_model_version)
    status = tracking_client().get_model_version(model_name, version).status
    if status != "READY":
        raise ElectraError(
            f"registered model {model_name!r} version {version} is {status} after {READY_TIMEOUT_S} s; "
            f"check the registry at {mlflow.get_tracking_uri()}"
        )
    return version


def register(onnx_dir: Path | str, export: ExportParams, quality: ExportQuality) -> dict[str, Any]:
    """Register the exported model and move the alias if it passes the gate.

    ``quality`` is what :func:`electra_model.export.choose.check_and_choose` measured on the selection split
    (validation: the gate never reads test). The champion is looked up before the new version exists, so it is
    never compared with itself.
    """
    if mlflow.active_run() is None:
        raise RuntimeError("register() logs the model into the active MLflow run; open one first (tracking.stage_run)")
    client = tracking_client()
    name = registered_name(export, quality.task)
    champion = alias_holder(client, name, export.alias)
    version = log_pyfunc(onnx_dir, name)
    promote, reason = decide(quality, export, champion)
    tags = {
        DIGEST_TAG: directory_digest(onnx_dir),
        "task": quality.task,
        quality.metric: str(float(quality.score)),
        f"{quality.metric}_split": quality.selection_split,
        "parity_max_abs_diff": str(float(quality.max_abs_logit_diff)),
        "serve_variant": quality.serve_variant,
        "serve_reason": quality.serve_reason,
        "champion_decision": "promoted" if promote else "rejected",
        "champion_reason": reason,
        **variant_tags(quality.variants),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if promote:
        client.set_registered_model_alias(name, export.alias, version)
    return {
        "name": name,
        "version": version,
        "alias_moved": promote,
        "reason": reason,
        "model_uri": f"models:/{name}/{version}",
    }
