"""Where the MLflow store is and how to read its registry: one module for the pipeline, the CLI and the light client.

The tracking URI is the first of: an explicit one (``--tracking-uri``), ``MLFLOW_TRACKING_URI`` in the environment,
``tracking.uri`` of params.yaml, the project default ``sqlite:///mlflow.db``. A relative local store (a relative
sqlite path, or a plain relative directory) is then anchored at the project root, not at the working directory:
``dvc exp run --temp`` and ``--queue`` run the stages in a copy under ``.dvc/tmp/exps/``, which DVC deletes
afterwards, and a store resolved there would vanish with it. DVC tells every stage command the user's repository
root in ``DVC_ROOT`` (for experiments it points at the parent repository, not the temporary copy); outside DVC
(the CLI, a stage script run by hand, the Prefect flow's own process, which changes into the project first) the
root is the working directory.

It also resolves ``models:/NAME@ALIAS`` and ``models:/NAME/VERSION`` URIs, probes a tracking server with a short
timeout (MLflow's own client retries for minutes), and tells MLflow's "does not exist" (the user's to fix) from
other registry failures. It imports nothing beyond the standard library at module level (mlflow only inside the
functions that read a registry), so the torch-free client ships it.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from electra_model.errors import ElectraError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # the project's tracking.uri default
ROOT_ENV = "DVC_ROOT"  # set by DVC (>= 3.19) for every stage command it runs
SQLITE = "sqlite:///"
SERVER_TIMEOUT_S = 5.0
MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))/?")


# ------------------------------------------------------------------------------------------ the tracking store
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


def redact(uri: str) -> str:
    """The URI without a ``user:password@`` part, for messages: a credential in a URI must not reach a log."""
    parts = urllib.parse.urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def refuse_credentials(uri: str) -> str:
    """``uri`` unchanged, unless it is an http(s) URI carrying ``user:password@``: MLflow takes those from
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, and in the URI they would leak into logs and end in a
    misleading "Name or service not known". The message shows the URI masked."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        masked = urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
        raise ElectraError(
            f"tracking URI {masked} carries credentials; remove the 'user:password@' part and set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment"
        )
    return uri


def unreachable_reason(uri: str, timeout_s: float) -> str | None:
    """Why an http(s) tracking server does not answer within ``timeout_s``, or None when it answers (or is local)."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return None
    except urllib.error.HTTPError:
        return None  # the server answered (auth or routing differ); MLflow's own calls will report what is wrong
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        return str(getattr(error, "reason", error))


def check_store(tracking_uri: str) -> None:
    """Refuse a sqlite store that does not exist (MLflow would create an empty one), and a server that does not
    answer within seconds (MLflow's own client would retry for minutes before saying so)."""
    if tracking_uri.startswith(SQLITE):
        path = Path(tracking_uri.removeprefix(SQLITE).split("?", 1)[0])
        if not path.is_file():
            raise ElectraError(
                f"no MLflow store at {path} ({tracking_uri}); run the pipeline (make run) here, or pass "
                "--tracking-uri / set MLFLOW_TRACKING_URI to the store that holds the model"
            )
    reason = unreachable_reason(tracking_uri, SERVER_TIMEOUT_S)
    if reason is not None:
        raise ElectraError(
            f"MLflow tracking server {redact(tracking_uri)} is unreachable ({reason}); start it or fix "
            "--tracking-uri / MLFLOW_TRACKING_URI"
        )


# ------------------------------------------------------------------------------------------ the model registry
def is_missing(error: Exception) -> bool:
    """Whether an MLflow error says the registered model, version or alias does not exist: only that is the user's
    to fix; any other registry failure keeps its own message and traceback."""
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    return getattr(error, "error_code", None) == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


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
        if not is_missing(error):
            raise
        raise ElectraError(f"registered model {name!r} does not exist in {tracking_uri}; {hint}") from None
    if alias is not None:
        if alias not in model.aliases:
            raise ElectraError(f"no version of registered model {name!r} has alias {alias!r} in {tracking_uri}; {hint}")
        return name, str(model.aliases[alias])
    try:
        client.get_model_version(name, version)
    except MlflowException as error:
        if not is_missing(error):
            raise
        raise ElectraError(f"registered model {name!r} has no version {version} in {tracking_uri}; {hint}") from None
    return name, str(version)


def download_registered_model(uri: str, tracking_uri: str, destination: Path) -> Path:
    """Download the registered MLflow model ``uri`` points to into ``destination``; return where it landed."""
    try:
        import mlflow
    except ImportError:
        raise ElectraError(
            f"{uri}: reading the MLflow registry needs mlflow; pip install 'electra-ner-client[registry]', "
            "or pass a local model directory"
        ) from None

    from mlflow.tracking import MlflowClient

    check_store(tracking_uri)
    name, version = registered_version(uri, tracking_uri)
    # The version's own storage location, not models:/NAME/VERSION: MLflow resolves a models:/ URI against the
    # process-wide registry (ignoring registry_uri) and writes a registered_model_meta file into what it returns,
    # which for a local store is the store's artifact folder itself.
    location = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).get_model_version_download_uri(
        name, version
    )
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=files_beside_store(location, tracking_uri, f"{name} version {version}"),
        dst_path=str(destination),
        tracking_uri=tracking_uri,
    )
    return Path(local)


def files_beside_store(location: str, tracking_uri: str, what: str) -> str:
    """Where a local sqlite store's recorded artifact ``location`` lies in the store's own folder.

    The store records absolute locations, so in a copied project (``cp -a``) they name the original's files and in
    a moved one files that are gone. Reading must not wait for a stage to rewrite the store
    (:mod:`electra_model.tracking.relocate`): the longest tail of the recorded path (at least
    ``models/<id>/artifacts``) that exists under the store's folder is taken instead, without writing anything.
    A location already inside that folder, another store's, or a remote one is returned as it is; a local one
    found nowhere is refused with what to do."""
    parts = urllib.parse.urlsplit(location)
    if not tracking_uri.startswith(SQLITE) or parts.scheme not in ("", "file"):
        return location
    recorded = Path(urllib.request.url2pathname(parts.path))
    folder = Path(tracking_uri.removeprefix(SQLITE).split("?", 1)[0]).parent
    if recorded.is_relative_to(folder):
        return location
    for start in range(1, len(recorded.parts) - 2):
        candidate = folder.joinpath(*recorded.parts[start:])
        if candidate.is_dir():
            return candidate.as_uri()
    if not recorded.exists():
        raise ElectraError(
            f"registered model {what}: the store {tracking_uri} records its files at {recorded}, which does not "
            f"exist, and they are not under {folder} either; copy the project with its mlartifacts/ folder, or "
            "re-run the export stage (dvc repro -f export) to register it again"
        )
    return location
