"""Where a team keeps its state, for real on loopback: DVC remotes (a local directory, and S3 on moto's
S3-compatible server) from which a fresh clone gets the pipeline's outputs without re-running a stage, and the
MLflow server of docker/docker-compose.yml, run from its own start script outside Docker, on PostgreSQL (Debian's
package) with its artifacts in that S3 store, behind basic-auth.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from electra_model.tasks.registry import registered_name
from tests.integration.ops_servers import (
    LOOPBACK_ENV,
    OPS_PARAMS,
    REPO,
    S3,
    Account,
    compose_mlflow_server,
    new_account,
    postgres,
    s3_server,
)
from tests.integration.project import GIT_IDENTITY, Project, copy_project
from tests.params import section

pytestmark = pytest.mark.e2e

OUTPUTS = ("data/corpus", "data/task")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def s3(workdir: Path) -> Iterator[S3]:
    with s3_server(workdir, "electra-team") as store:
        yield store


@pytest.fixture(scope="module")
def project(workdir: Path) -> Project:
    """A copy whose download stage has run, with dvc.lock and the uncached metrics committed to git (the cached
    outputs go to a DVC remote), as a team member shares a run."""
    root = workdir / "project"
    root.mkdir()
    project = copy_project(root, OPS_PARAMS)
    project.env.update(LOOPBACK_ENV)
    project.run("dvc", "repro", "download")
    commit(project, "dvc.lock", "metrics/download.json", message="download outputs")
    return project


def commit(project: Project, *paths: str, message: str) -> None:
    project.run("git", "add", *paths)
    project.run("git", *GIT_IDENTITY, "commit", "-qm", message)


def fresh_clone(project: Project, root: Path, env: dict[str, str] | None = None) -> Project:
    project.run("git", "clone", "-q", str(project.root), str(root))
    clone = Project(root)
    clone.env.update(LOOPBACK_ENV, **(env or {}))
    return clone


def assert_same_outputs(original: Project, clone: Project) -> None:
    for out in OUTPUTS:
        files = sorted(p.relative_to(original.root / out) for p in (original.root / out).rglob("*") if p.is_file())
        assert files, f"{out} is empty in the original"
        _, mismatch, errors = filecmp.cmpfiles(original.root / out, clone.root / out, [str(f) for f in files], shallow=False)
        assert not mismatch and not errors, f"{out}: differing {mismatch}, missing {errors}"


def assert_nothing_to_run(clone: Project) -> None:
    assert "up to date" in clone.run("dvc", "status", "download").stdout
    assert "Running stage" not in clone.run("dvc", "repro", "download").stdout


def test_a_local_remote_gives_a_fresh_clone_the_outputs(project: Project, workdir: Path) -> None:
    remote = workdir / "dvc-remote"
    project.run("dvc", "remote", "add", "--default", "team", str(remote))
    commit(project, ".dvc/config", message="team remote")
    project.run("dvc", "push")
    assert any((remote / "files/md5").rglob("*")), "dvc push stored nothing"

    clone = fresh_clone(project, workdir / "clone-local")
    assert not (clone.root / "data").exists()
    clone.run("dvc", "pull", "download")  # only the stage this test ran; a full run pulls everything
    assert_same_outputs(project, clone)
    assert_nothing_to_run(clone)


def test_an_s3_remote_gives_a_fresh_clone_the_outputs(project: Project, s3: S3, workdir: Path) -> None:
    project.run("dvc", "remote", "add", "s3team", f"s3://{s3.bucket}/dvc")
    project.run("dvc", "remote", "modify", "s3team", "endpointurl", s3.endpoint)
    # Credentials go to the git-ignored .dvc/config.local (or the AWS_* variables), never to the committed config.
    project.run("dvc", "remote", "modify", "--local", "s3team", "access_key_id", s3.key_id)
    project.run("dvc", "remote", "modify", "--local", "s3team", "secret_access_key", s3.secret)
    commit(project, ".dvc/config", message="s3 remote")
    assert s3.secret not in (project.root / ".dvc/config").read_text(encoding="utf-8")
    project.run("dvc", "push", "--remote", "s3team")
    assert any(key.startswith("dvc/files/md5/") for key in s3.keys("dvc/"))

    clone = fresh_clone(project, workdir / "clone-s3", env=s3.env())
    clone.run("dvc", "pull", "--remote", "s3team", "download")
    assert_same_outputs(project, clone)
    assert_nothing_to_run(clone)


def test_mlflow_on_postgres_with_artifacts_in_s3(
    workdir: Path, s3: S3, pattern_onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compose stack's MLflow service (docker/mlflow/start.sh, then create_user.py for the pipeline's account)
    on PostgreSQL and S3. The server holds the S3 credentials and proxies artifacts: the pipeline needs only its
    MLflow account."""
    import psycopg

    from electra_model.tracking.registry import register
    from electra_model.tracking.runs import stage_run
    from tests.fixtures_models import quality

    admin, pipeline = new_account("admin"), new_account("pipeline")
    export = section("export", min_f1=0.3)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with postgres(["mlflow", "mlflow_auth"]) as address:
        server_dir = workdir / "mlflow-pg"
        server_dir.mkdir()
        settings = {
            "MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg://postgres@{address}/mlflow",
            "MLFLOW_AUTH_DATABASE_URI": f"postgresql+psycopg://postgres@{address}/mlflow_auth",
            "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{s3.bucket}/mlflow",
            "MLFLOW_AUTH_ADMIN_PASSWORD": admin.password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": new_account("key").password,
            **s3.env(),
        }
        with compose_mlflow_server(server_dir, settings) as server:
            for attempt in ("created", "exists already"):
                created = create_user_job(server.url, admin, pipeline)
                assert created.returncode == 0 and attempt in created.stdout, created.stderr
            monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
            for name, value in pipeline.env().items():
                monkeypatch.setenv(name, value)
            try:
                with stage_run("export", section("tracking"), {"export": export.model_dump()}):
                    registration = register(pattern_onnx_dir, export, quality(0.9))
                uri = f"models:/{registered_name(export, 'ner')}@{export.alias}"
                pulled = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path)))
            finally:
                mlflow.set_tracking_uri(None)
        with psycopg.connect(f"postgresql://postgres@{address}/mlflow") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT name, version FROM model_versions")
            versions = cursor.fetchall()
            cursor.execute("SELECT count(*) FROM runs")
            (runs,) = cursor.fetchone()
    assert registration["alias_moved"] and versions == [(registered_name(export, "ner"), int(registration["version"]))]
    assert runs == 2  # the stage's run and the parent it opened outside a flow
    assert any(key.endswith("model.onnx") for key in s3.keys("mlflow/")), "the model's files are not in S3"
    assert list(pulled.rglob("model.onnx"))
    assert admin.password not in (server_dir / "mlflow-server.log").read_text(encoding="utf-8")


def create_user_job(url: str, admin: Account, account: Account) -> subprocess.CompletedProcess:
    """Compose's one-shot ``mlflow-users`` job: docker/mlflow/create_user.py with its environment."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_ADMIN_PASSWORD": admin.password,
           "NEW_USERNAME": account.username, "NEW_PASSWORD": account.password, **LOOPBACK_ENV}
    return subprocess.run([sys.executable, str(REPO / "docker/mlflow/create_user.py")], env=env, capture_output=True,
                          text=True, timeout=120)
