"""Where the MLflow store is: one rule for the pipeline, the CLI and the light client.

The URI is the first of: an explicit one (``--tracking-uri``), ``MLFLOW_TRACKING_URI`` in the environment,
``tracking.uri`` of params.yaml, the project default ``sqlite:///mlflow.db``. A relative local store (a relative
sqlite path, or a plain relative directory) is then anchored at the project root, not at the working directory:
``dvc exp run --temp`` and ``--queue`` run the stages in a copy under ``.dvc/tmp/exps/``, which DVC deletes
afterwards, and a store resolved there would vanish with it. DVC tells every stage command the user's repository
root in ``DVC_ROOT`` (for experiments it points at the parent repository, not the temporary copy); outside DVC
(the CLI, a stage script run by hand, the Prefect flow's own process, which changes into the project first) the
root is the working directory. Imports nothing beyond the standard library, so the torch-free client ships it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # the project's tracking.uri default
ROOT_ENV = "DVC_ROOT"  # set by DVC (>= 3.19) for every stage command it runs
SQLITE = "sqlite:///"


def project_root() -> Path:
    """The user's repository root: DVC's ``DVC_ROOT`` inside a stage, else the working directory."""
    return Path(os.environ.get(ROOT_ENV) or ".").resolve()


def anchored(path: str) -> Path:
    """``path`` as an absolute path, a relative one taken from the project root."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else project_root() / candidate


def anchor_uri(uri: str) -> str:
    """A relative local store URI made absolute against the project root; any other URI unchanged.

    ``sqlite:///mlflow.db`` (three slashes) is relative, ``sqlite:////abs/mlflow.db`` absolute; a URI without a
    scheme is a local directory (MLflow's file store), except the profile names ``databricks``/``databricks-uc``."""
    if uri.startswith(SQLITE):
        path, _, query = uri.removeprefix(SQLITE).partition("?")
        if path and path != ":memory:" and not Path(path).is_absolute():
            return f"{SQLITE}{anchored(path)}" + (f"?{query}" if query else "")
        return uri
    if ":" not in uri and uri not in ("databricks", "databricks-uc"):
        return str(anchored(uri))
    return uri


def resolve_tracking_uri(explicit: str | None = None, configured: str | None = None) -> str:
    """The store to read or write: ``explicit``, else ``MLFLOW_TRACKING_URI``, else ``configured`` (params.yaml's
    ``tracking.uri``), else the project default; relative local stores anchored at :func:`project_root`."""
    return anchor_uri(explicit or os.environ.get("MLFLOW_TRACKING_URI") or configured or DEFAULT_TRACKING_URI)
