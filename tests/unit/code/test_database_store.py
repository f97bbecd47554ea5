"""A database-backed MLflow store is checked before MLflow opens it: a corrupt sqlite file or a database that does not
answer is named at once, instead of ten backed-off retries and a SQLAlchemy traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from electra_model.tracking.database_store import database_problem


def test_a_corrupt_sqlite_file_is_named_and_left_as_it_was(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"not a database " * 100)
    before = store.read_bytes()
    assert database_problem(f"sqlite:///{store}", 5) == f"{store}: file is not a database"
    assert store.read_bytes() == before


def test_a_good_or_absent_sqlite_store_passes(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "good.db") as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    assert database_problem(f"sqlite:///{tmp_path / 'good.db'}", 5) is None
    assert database_problem(f"sqlite:///{tmp_path / 'new.db'}", 5) is None
    assert not (tmp_path / "new.db").exists()  # the check creates nothing; MLflow will
    assert database_problem("http://127.0.0.1:9", 5) is None  # not a database: the http check's business


def test_a_folder_named_as_the_store_is_named(tmp_path: Path) -> None:
    assert database_problem(f"sqlite:///{tmp_path}", 5) == f"{tmp_path} is not a file"


def test_a_postgres_store_that_does_not_answer_is_named() -> None:
    problem = database_problem("postgresql://127.0.0.1:9/mlflow", 2)
    assert problem is not None and "127.0.0.1" in problem and "refused" in problem
