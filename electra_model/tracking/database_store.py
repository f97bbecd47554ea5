"""Checking a database-backed MLflow store (``sqlite:///``, ``postgresql://``, ...) before MLflow opens it.

MLflow retries a store it cannot open ten times with backoff (about 100 s) and then ends in a SQLAlchemy traceback,
so a corrupt ``mlflow.db`` or a stopped PostgreSQL looks like a crash, and a Prefect flow retries it as if it were
transient. Both are the user's to fix, so they are found here first, within the configured timeout, and named::

    from electra_model.tracking.database_store import database_problem
    problem = database_problem("sqlite:////srv/mlflow.db", timeout_s=5)   # None, or why it cannot be used

Independent of MLflow: sqlite through the standard library, a server database through SQLAlchemy (which
MLflow brings), imported only for such a URI. The SQLite file is opened read-only, so the check never changes it.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

SERVER_DATABASES = ("postgresql", "mysql", "mssql")


def sqlite_problem(path: Path) -> str | None:
    """Why the SQLite file at ``path`` is not a usable database (a missing file is fine: MLflow creates it)."""
    if not path.exists():
        return None
    if not path.is_file():
        return f"{path} is not a file"
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return f"{path}: {error}"
    try:
        connection.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as error:
        return f"{path}: {error}"
    finally:
        connection.close()
    return None


def server_problem(uri: str, timeout_s: float) -> str | None:
    """Why a server database does not accept a connection within ``timeout_s`` (its driver's own first line)."""
    import sqlalchemy

    connect_args = {"connect_timeout": max(1, round(timeout_s))} if uri.startswith(("postgresql", "mysql")) else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=connect_args)
    except (ImportError, sqlalchemy.exc.ArgumentError) as error:
        return f"cannot use this database URI ({error}); install its driver or fix the URI"
    try:
        with engine.connect():
            return None
    except sqlalchemy.exc.SQLAlchemyError as error:
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        return detail[0] if detail else type(error).__name__
    finally:
        engine.dispose()


def database_problem(uri: str, timeout_s: float) -> str | None:
    """Why the database store ``uri`` cannot be used, or None (also for any URI that is not a database's)."""
    scheme = urllib.parse.urlsplit(uri).scheme.split("+")[0]
    if scheme == "sqlite":
        location = uri.split(":///", 1)[1] if ":///" in uri else ""
        return sqlite_problem(Path(location)) if location and location != ":memory:" else None
    if scheme in SERVER_DATABASES:
        return server_problem(uri, timeout_s)
    return None
