"""Phase-locked polling, end to end: `rezgen replay` (sampling on its own 1 s grid), `rezgen serve --live
--interval 1s` and an SSE client. Once the poller has learned the agent's phase, a sample reaches the page about a
round trip plus compute after the agent took it, not up to an interval later. The bound here is generous (a
shared, loaded machine); benchmarks/bench_latency.py measures the figures."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from processes import start, stop, wait_for
from shared import shared_recording

pytestmark = [pytest.mark.live, pytest.mark.slow]


def test_new_samples_reach_the_page_well_within_an_interval(tmp_path: Path) -> None:
    recording = shared_recording("demo.parquet")
    replay, agent = start(["replay", str(recording), "--port", "0"], tmp_path / "replay.log")
    server = None
    try:
        server, url = start(["serve", "--live", agent, "--port", "0", "--interval", "1s"], tmp_path / "serve.log")
        wait_for(lambda: httpx.get(url + "api/status").json()["agents"][0]["snapshots"] >= 20, timeout=60, every=0.5,
                 what="the poller's phase learned (20 snapshots)")
        offset = httpx.get(agent + "_replay/stats").json()["offset_ns"]
        received: list[tuple[float, int]] = []  # (receipt wall ms, last step ms)
        event = None
        with httpx.stream("GET", url + "api/stream", params={"section": "overview"}, timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "points":
                    received.append((time.time() * 1000, json.loads(line.split(":", 1)[1])["last"]))
                    if len(received) == 9:
                        break
    finally:
        if server is not None:
            stop(server)
        stop(replay)
    stamps = [(int(t) + offset) / 1e6 for t in pq.read_table(recording, columns=["timestamp"]).column(0).to_pylist()]
    # Each event after the first (a catch-up) covers one new sample: the newest served at or before its last step.
    latencies = [receipt - max(s for s in stamps if s <= last) for receipt, last in received[1:]]
    assert all(latency >= 0 for latency in latencies)
    assert statistics.median(latencies) <= 400, latencies  # unlocked: uniform over the 1 s interval
