"""The tracking-server check fails within its timeout, for a refused port and for a server that never answers."""

from __future__ import annotations

import socket
import time

import pytest

from electra_model.errors import ElectraError
from electra_model.tracking.runs import check_reachable

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
