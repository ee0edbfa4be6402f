"""`Poller`: many agents polled from a few threads, each agent one request at a time, every snapshot delivered."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import start, stop, wait_for
from shared import shared_recording

from rezgen.agent.client import AgentClient, Status
from rezgen.agent.poller import Poller

pytestmark = pytest.mark.live


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[str]]:
    procs = [start(["replay", str(shared_recording("demo.parquet")), "--port", "0"], tmp_path / f"replay{i}.log")
             for i in range(3)]
    yield [url for _, url in procs]
    for proc, _ in procs:
        stop(proc)


def test_a_few_threads_poll_many_agents_and_deliver_every_row(agents: list[str]) -> None:
    got: dict[str, list[int]] = {url: [] for url in agents}
    clients = [AgentClient(url, 0.5, on_snapshot=lambda s, url=url: got[url].append(s.timestamp_ns),
                           offset_s=i / 3 * 0.5) for i, url in enumerate(agents)]
    before = threading.active_count()
    poller = Poller(clients, workers=2)
    poller.start()
    try:
        wait_for(lambda: all(len(stamps) >= 5 for stamps in got.values()), timeout=60, what="five rows per agent")
        threads = threading.active_count() - before
    finally:
        poller.stop()
    assert threads <= 3  # the scheduler and two workers, not one per agent
    for stamps in got.values():
        steps = [b - a for a, b in itertools.pairwise(stamps)]
        assert all(abs(step - 1_000_000_000) < 1_000_000 for step in steps), steps  # every 1 s row, once
    assert all(c.state().status is Status.DISCONNECTED for c in clients)  # stopped
