"""`rezgen forward`: 100 agents at 1 s into one forwarder writing to a real VictoriaMetrics, on this machine.

The agents are one process serving 100 ports (benchmarks/fleet_agents.py): each serves c16's agent rows (~1,900
series, 33 histograms: the size of a c24 host), a new row every second of wall time. One `rezgen forward --live`
of all 100 with `--remote-write` to a `victoria-metrics` on a free port. After a warm-up (phase learning) the
forwarder's CPU time and RSS (psutil) are read over the measured span.

- CPU per snapshot: forwarder CPU seconds / snapshots fetched (fresh rows the agents served), against the floor
  `msgpack.unpackb` of one of those bodies in this process (goal <= 2x).
- Poll lateness: per agent and row, the first fetch's arrival at the agent - the row's start; p99 goal <= one
  interval; rows no poll fetched are counted (a poll more than an interval late skips a row).
- RSS of the forwarder (goal <= 1 GB).
- Bytes per sample on the wire: rezgen's remote-write chunk of one row after snappy / its samples, beside the
  agent's msgpack (raw and gzip) / the values it holds (counters + gauges + histogram buckets).

    .venv/bin/python benchmarks/bench_forward.py [--agents 100] [--seconds 60] [--warmup 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cramjam
import msgpack
import psutil
from bench_live import percentile, verdict
from common import recording

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unpack_floor(body: bytes, reps: int = 200) -> float:
    started = time.process_time()
    for _ in range(reps):
        msgpack.unpackb(body, strict_map_key=False)
    return (time.process_time() - started) / reps


def wire_sizes(path: Path) -> tuple[float, float, float]:
    """(remote-write bytes per sample after snappy, msgpack bytes per value raw, gzip) for one row of `path`."""
    import gzip

    from rezgen.agent.snapshot import SchemaCache, decode
    from rezgen.remote.samples import Translator
    from rezgen.synthetic.encode import encode
    from rezgen.synthetic.recorded import RecordedAgent

    agent, schemas, translator = RecordedAgent(path), SchemaCache(), Translator("host:4241")
    chunk = None
    for row in range(3):  # the third has quantiles (two intervals of increase)
        raw = encode(agent.snapshot(row), 2)
        snapshot = decode(raw, schemas)
        chunk = translator.translate(snapshot)
    assert chunk is not None
    values = len(snapshot.scalars(0)) + len(snapshot.scalars(1)) + sum(len(h.value) for h in snapshot.histograms)
    snappy = len(bytes(cramjam.snappy.compress_raw(chunk.data)))
    return snappy / chunk.samples, len(raw) / values, len(gzip.compress(raw, 6)) / values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recording", default="c16.parquet")
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    args = parser.parse_args()
    if not shutil.which("victoria-metrics"):
        sys.exit("needs victoria-metrics (apt-get install victoria-metrics)")
    path = recording(args.recording)
    work = Path(tempfile.mkdtemp(prefix="rezgen-bench-forward-"))
    rows = int(args.warmup + args.seconds + 30)
    port = free_port()
    vm = subprocess.Popen(["victoria-metrics", f"-storageDataPath={work / 'vm'}", f"-httpListenAddr=127.0.0.1:{port}",
                           "-loggerLevel=ERROR"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agents = subprocess.Popen([sys.executable, str(HERE / "fleet_agents.py"), str(path), "--agents", str(args.agents),
                               "--rows", str(rows), "--stats", str(work / "agents.json")],
                              stdout=subprocess.PIPE, text=True)
    forward = None
    try:
        assert agents.stdout is not None
        ports = agents.stdout.readline().split()[1:]
        urls = [f"127.0.0.1:{p}" for p in ports]
        live = [arg for url in urls for arg in ("--live", url)]
        with open(work / "forward.log", "w") as log:
            forward = subprocess.Popen([sys.executable, "-m", "rezgen", "forward", *live, "--interval", "1s",
                                        "--remote-write", f"http://127.0.0.1:{port}/api/v1/write"],
                                       stdout=subprocess.PIPE, stderr=log, text=True)
        process = psutil.Process(forward.pid)
        time.sleep(args.warmup)
        cpu0, t0 = sum(process.cpu_times()[:2]), time.time()
        rss = 0.0
        while time.time() - t0 < args.seconds:
            time.sleep(1)
            rss = max(rss, process.memory_info().rss / 2**20)
        cpu1, t1 = sum(process.cpu_times()[:2]), time.time()
        vm_cpu = psutil.Process(vm.pid).cpu_times()
        forward.terminate()
        summary = forward.communicate(timeout=60)[0].strip().splitlines()[-1]
    finally:
        for proc in (forward, agents, vm):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(60)
    stats = json.loads((work / "agents.json").read_text())
    start = stats["start"]
    lateness, fetched, skipped = [], 0, 0
    for per_agent in stats["first_fetch"].values():
        got = {int(k): v for k, v in per_agent.items()}
        for k in range(int(t0 - start), int(t1 - start)):
            if k in got:
                fetched += 1
                lateness.append((got[k] - (start + k)) * 1000)
            else:
                skipped += 1
    missing_agents = args.agents - len(stats["first_fetch"])
    per_snapshot = (cpu1 - cpu0) / max(fetched, 1)
    from rezgen.synthetic.encode import encode
    from rezgen.synthetic.recorded import RecordedAgent

    floor = unpack_floor(encode(RecordedAgent(path).snapshot(1), 2))
    snappy, raw, gz = wire_sizes(path)
    p50, p99 = percentile(lateness, 50), percentile(lateness, 99)
    print(f"[forward] {args.agents} agents ({missing_agents} never polled) at 1 s for {t1 - t0:.0f} s after "
          f"{args.warmup:g} s warm-up: {fetched} snapshots fetched, {skipped} rows skipped; forwarder CPU "
          f"{(cpu1 - cpu0) / (t1 - t0) * 100:.0f} % of a core; victoria-metrics CPU so far {sum(vm_cpu[:2]):.0f} s")
    print(f"[forward] {summary}")
    print(f"GOAL CPU per snapshot incl. remote write {per_snapshot * 1000:.2f} ms vs msgpack.unpackb "
          f"{floor * 1000:.2f} ms: {per_snapshot / floor:.2f}x (goal <= 2x) -> {verdict(per_snapshot <= 2 * floor)}")
    # A row no poll fetched is a poll more than an interval late: p99 within an interval needs < 1 % of them.
    on_time = p99 <= 1000 and skipped <= 0.01 * (fetched + skipped)
    print(f"GOAL poll lateness p50 {p50:.0f} ms, p99 {p99:.0f} ms of the rows fetched; {skipped} of "
          f"{fetched + skipped} rows skipped (goal: p99 <= 1000 ms over every row) -> {verdict(on_time)}")
    print(f"[forward] load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work shares them)")
    print(f"GOAL forwarder RSS {rss:.0f} MB (goal <= 1024 MB) -> {verdict(rss <= 1024)}")
    print(f"[forward] bytes per sample: remote write after snappy {snappy:.2f} B; the agent's msgpack {raw:.2f} B "
          f"raw, {gz:.2f} B gzip (per value)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
