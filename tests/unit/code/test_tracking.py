"""The tracking-server check fails within its timeout, for a refused port and for a server that never answers; and
two processes creating the experiment at once both end in the one experiment."""

from __future__ import annotations

import socket
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from electra_model.errors import ElectraError
from electra_model.tracking.runs import check_reachable, configure
from tests.params import section

pytestmark = pytest.mark.timeout(60)  # these tests exist to show that nothing hangs: a hang fails in a minute


def test_refused_port_is_reported_at_once():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(ElectraError, match="unreachable .*MLFLOW_TRACKING_URI"):
        check_reachable(f"http://127.0.0.1:{port}", timeout_s=2.0)


def test_silent_server_times_out_instead_of_hanging():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections into the backlog but never answers a request
        started = time.monotonic()
        with pytest.raises(ElectraError, match="unreachable"):
            check_reachable(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=1.0)
        assert time.monotonic() - started < 10


def test_local_stores_need_no_check():
    check_reachable("sqlite:///does/not/matter.db", timeout_s=0.1)


def test_an_experiment_created_by_another_process_after_the_look_up_is_used_not_an_error(tmp_path, monkeypatch):
    """Two search workers start at once on one tracking server: both look the experiment up, find none, and both
    create it; the second create is refused (RESOURCE_ALREADY_EXISTS) and must take the first one's experiment.
    The race is replayed on a real sqlite store by creating the experiment between the look-up and the create."""
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = section("tracking", uri="sqlite:///mlflow.db", artifact_location="mlartifacts")
    real_look_up = mlflow.get_experiment_by_name
    looked_up = []

    def look_up_then_lose_the_race(name: str):
        if not looked_up:  # the first look-up finds nothing, and meanwhile the other worker creates it
            looked_up.append(name)
            MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment(name)
            return None
        return real_look_up(name)

    monkeypatch.setattr(mlflow, "get_experiment_by_name", look_up_then_lose_the_race)
    try:
        experiment_id = configure(params)
    finally:
        mlflow.set_tracking_uri(None)
    theirs = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_experiment_by_name(params.experiment)
    assert looked_up == [params.experiment] and experiment_id == theirs.experiment_id
