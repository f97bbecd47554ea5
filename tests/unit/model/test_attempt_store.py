"""Each torchrun restart attempt meets in its own prefix of the agent's store: a restarted rank must not read the
killed attempt's process-group keys (rank 0's old gloo address), which left the restarted job unable to connect."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import torch.distributed as torch_dist

from electra_model.training import Distributed, attempt_store


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_outside_torchrun_there_is_no_store_of_our_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    assert attempt_store(Distributed(0, 2, 0)) is None


def test_each_restart_attempt_reads_only_its_own_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    agent = torch_dist.TCPStore("127.0.0.1", port, 1, is_master=True, timeout=timedelta(seconds=10))
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    attempt_store(Distributed(0, 2, 0)).set("rank_0", "old address")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    restarted = attempt_store(Distributed(1, 2, 1))
    assert not restarted.check(["rank_0"])  # the killed attempt's key is not seen: the new rank 0 is waited for
    restarted.set("rank_0", "new address")
    assert restarted.get("rank_0") == b"new address" and agent.get("/electra/attempt_0/rank_0") == b"old address"


def test_across_nodes_the_restart_counts_differ_so_torchrun_must_give_each_attempt_a_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("GROUP_WORLD_SIZE", "2")
    with pytest.warns(UserWarning, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"):
        assert attempt_store(Distributed(0, 2, 0)) is None
