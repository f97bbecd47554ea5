"""Where a study lives: Optuna's relational storage (``tune.storage``), opened with a heartbeat so that workers on
several machines can share one study.

A study on PostgreSQL is shared by every ``electra tune --worker`` that names it. Each running trial records a
heartbeat every ``tune.heartbeat_s``; a trial silent for ``tune.grace_s`` lost its worker (a killed process, a lost
machine): whichever worker notices first fails it and queues a copy with the same params (Optuna's
``RetryHeartbeatStaleTrialCallback``, up to ``tune.retries`` times), which the next free worker runs. The study is
created by exactly one worker: the database refuses a second study of the same name, and the losers load the
winner's (:func:`join_study`). A URL is only ever shown through :func:`~electra_model.client.store.redact`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from electra_model.client.store import anchor_uri, redact
from electra_model.config import TuneParams
from electra_model.errors import ElectraError

CREATE_ATTEMPTS = 3  # workers starting together on an empty database race to create Optuna's tables
ATTR_POLL_S = 0.5


def storage_url(storage: str) -> str:
    """SQLAlchemy's URL for ``tune.storage``: a relative sqlite path anchored at the project root (its folder
    created), and ``postgresql://`` given the psycopg 3 driver the project installs (SQLAlchemy's default for that
    scheme is psycopg2)."""
    url = anchor_uri(storage)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///").split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def open_storage(tune: TuneParams) -> optuna.storages.RDBStorage:
    """The study's storage with heartbeats on; a one-line error naming the (masked) URL when it cannot be opened."""
    attempt = 1
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=tune.retries)
                return optuna.storages.RDBStorage(storage_url(tune.storage), heartbeat_interval=tune.heartbeat_s,
                                                  grace_period=tune.grace_s, heartbeat_stale_trial_callback=retry)
        except sqlalchemy.exc.OperationalError as error:
            reason = (str(error.orig or error).strip().splitlines() or ["no reason given"])[0]
            raise ElectraError(f"Optuna storage {redact(tune.storage)} cannot be opened ({reason}); start the database "
                               "or fix tune.storage in params.yaml") from None
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == CREATE_ATTEMPTS:
                raise
            time.sleep(attempt)  # another worker was creating the tables at the same moment: they exist now
            attempt += 1


def join_study(create: Callable[[], optuna.Study], load: Callable[[], optuna.Study]) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it: exactly one of the workers that start together does, since the
    database refuses a second study of the same name."""
    try:
        return create(), True
    except optuna.exceptions.DuplicatedStudyError:
        return load(), False


def shared_attr(study: optuna.Study, key: str, wait_s: float) -> Any:
    """The study's user attribute ``key``, waiting up to ``wait_s`` for the worker that created the study to set
    it; None if it never does (that worker stopped in between)."""
    deadline = time.monotonic() + wait_s
    while (value := study.user_attrs.get(key)) is None and time.monotonic() < deadline:
        time.sleep(ATTR_POLL_S)
    return value
