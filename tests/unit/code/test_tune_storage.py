"""The study's storage for workers on several machines (issue 31): PostgreSQL through the installed driver, a URL
that never shows a password, one creator among workers that start together, and heartbeat settings that can work."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from electra_model.errors import ElectraError
from electra_model.search.storage import join_study, open_storage, shared_attr, storage_url
from electra_model.serving.model_server import free_port
from tests.params import params


def test_postgresql_gets_the_installed_driver_and_sqlite_its_folder(tmp_path: Path) -> None:
    assert storage_url("postgresql://optuna@db.example:5432/studies") == "postgresql+psycopg://optuna@db.example:5432/studies"
    url = storage_url(f"sqlite:///{tmp_path}/new/study.db")
    assert url.endswith("new/study.db") and (tmp_path / "new").is_dir()


@pytest.mark.parametrize(("storage", "expected"), [
    ("postgresql://optuna:s3cret@db.example/studies", "postgresql://***@db.example/studies carries credentials"),
    ("mysql://optuna:s3cret@db.example/studies", "mysql://***@db.example/studies carries credentials"),
    ("mysql://db.example/studies", "not a storage electra tune supports"),
])
def test_a_bad_storage_is_refused_without_echoing_a_password(storage: str, expected: str) -> None:
    with pytest.raises(ElectraError) as error:
        params({"tune.storage": storage})
    assert "tune.storage" in str(error.value) and expected in str(error.value)
    assert "s3cret" not in str(error.value)


def test_a_grace_period_within_one_heartbeat_is_refused() -> None:
    with pytest.raises(ElectraError, match="grace_s .* must exceed heartbeat_s"):
        params({"tune.heartbeat_s": 30, "tune.grace_s": 30})


def test_an_unreachable_database_is_one_line_naming_the_setting() -> None:
    tune = params({"tune.storage": f"postgresql://optuna@127.0.0.1:{free_port()}/studies"}).tune
    with pytest.raises(ElectraError) as error:
        open_storage(tune)
    message = str(error.value)
    assert "\n" not in message and "cannot be opened" in message and "tune.storage" in message


def test_workers_starting_together_create_the_study_once(tmp_path: Path) -> None:
    tune = params({"tune.storage": f"sqlite:///{tmp_path}/study.db", "tune.heartbeat_s": 1, "tune.grace_s": 2}).tune
    storage = open_storage(tune)

    def create() -> optuna.Study:
        return optuna.create_study(study_name="shared", storage=storage)

    def load() -> optuna.Study:
        return optuna.load_study(study_name="shared", storage=storage)

    first, created = join_study(create, load)
    first.set_user_attr("mlflow_run_id", "abc")
    second, joined_created = join_study(create, load)
    assert (created, joined_created) == (True, False)
    assert [summary.study_name for summary in optuna.get_all_study_summaries(storage)] == ["shared"]
    assert shared_attr(second, "mlflow_run_id", 0.1) == "abc"
    assert shared_attr(second, "absent", 0.1) is None
    assert storage.get_heartbeat_interval() == 1
