"""Agent-to-browser latency at `--interval 1s`: from the agent's sample timestamp to an SSE page receiving it.

A real `rezgen replay RECORDING --speed 1` (it samples on its own 1 s grid, like an exporter: row k is served from
its systemtime on) and a real `rezgen serve --live URL --interval 1s`; one SSE client on the overview section.
After a warm-up (the poller learns the agent's phase, see rezgen/agent/phase.py) every served snapshot's
systemtime is matched with the first `points` event covering it. Split into: systemtime -> the hub computed the
step (`at`: poll wait + fetch + decode + ingest + the section's plots) and `at` -> receipt (fan-out). The floor
is an ideal poller in this process asking every 5 ms (systemtime -> the new body received), measured in this
run; without phase locking the poll wait alone is uniform over the interval (p50 ~500 ms).
Goals (issue 10): p50 <= 150 ms, p99 <= 300 ms.

    .venv/bin/python benchmarks/bench_latency.py [--recording c16.parquet] [--seconds 60] [--warmup 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

import httpx
import msgpack
from bench_live import get_json, percentile, run_clients, start_child, stop_child, verdict, wait_for_status
from common import recording


def ideal_poller(agent: str, samples: int = 8) -> list[float]:
    """The floor: ms from a sample's systemtime to its body received by a client that asks every 5 ms (so it
    gets each sample as soon as it exists: what a perfectly phase-locked poller would)."""
    out: list[float] = []
    last = None
    with httpx.Client(timeout=5, headers={"Accept-Encoding": "gzip"}) as http:
        while len(out) < samples:
            body = http.get(agent + "metrics/binary").content
            secs, nanos = msgpack.unpackb(body, strict_map_key=False)[0]
            stamp = secs + nanos / 1e9
            if last is not None and stamp != last:
                out.append((time.time() - stamp) * 1000)
            last = stamp
            time.sleep(0.005)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recording", default="c16.parquet")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    args = parser.parse_args()
    path = recording(args.recording)
    logdir = Path(os.environ.get("TMPDIR", "/tmp")) / "rezgen-bench-latency"
    logdir.mkdir(exist_ok=True)
    replay = start_child("replay", ["replay", str(path), "--port", "0", "--speed", "1"], logdir)
    server = start_child("serve", ["serve", "--live", replay.url, "--interval", "1s", "--port", "0"], logdir)
    try:
        wait_for_status(server)
        floor = ideal_poller(replay.url)
        time.sleep(args.warmup)
        offset_ns = get_json(replay.url + "_replay/stats")["offset_ns"]
        clients, since, _step = asyncio.run(run_clients(server.url, 1, args.seconds))
    finally:
        stop_child(server)
        stop_child(replay)
    from rezgen.synthetic.recorded import RecordedAgent

    agent = RecordedAgent(path)
    events = clients[0].events
    if not events:
        raise SystemExit(f"no points received: see {logdir}")
    stamps = [int(t) + offset_ns for t in agent.timestamps]
    totals, computed = [], []
    i = 0
    for ts in (t for t in stamps if since * 1_000_000 < t <= events[-1].last * 1_000_000):
        while i < len(events) and events[i].last * 1_000_000 < ts:
            i += 1
        e = events[i]
        totals.append(e.receipt_ms - ts / 1e6)
        computed.append(e.at - ts / 1e6)
    fan_out = [e.receipt_ms - e.at for e in events]
    p50, p99 = percentile(totals, 50), percentile(totals, 99)
    rtt = statistics.median(floor)
    print(f"[latency] {len(totals)} snapshots over {args.seconds:g} s after {args.warmup:g} s warm-up; floor (an "
          f"ideal poller asking every 5 ms: systemtime -> body received, median) {rtt:.1f} ms")
    print(f"[latency] agent systemtime -> computed (`at`): p50 {percentile(computed, 50):.0f} ms, p99 "
          f"{percentile(computed, 99):.0f} ms; fan-out p50 {percentile(fan_out, 50):.0f} ms, p99 "
          f"{percentile(fan_out, 99):.0f} ms")
    print(f"[latency] agent-to-browser p50 {p50:.0f} ms ({p50 / rtt:.0f}x the floor), p99 {p99:.0f} ms, max "
          f"{max(totals):.0f} ms")
    print(f"GOAL agent-to-browser p50 {p50:.0f} ms (goal <= 150), p99 {p99:.0f} ms (goal <= 300) -> "
          f"{verdict(p50 <= 150 and p99 <= 300)}")


if __name__ == "__main__":
    main()
