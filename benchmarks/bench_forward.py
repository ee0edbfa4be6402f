"""`rezgen forward`: 100 agents at 1 s into one forwarder writing to a real VictoriaMetrics, on this machine.

The agents are one process serving 100 ports (benchmarks/fleet_agents.py): each serves c16's agent rows (~1,900
series, 33 histograms: the size of a c24 host), a new row every second of wall time. One `rezgen forward --live`
of all 100 with `--remote-write` to a `victoria-metrics` on a free port. After a warm-up (phase learning) the
forwarder's CPU time and RSS (psutil) are read over the measured span.

Each run is repeated with `forward --workers 1` and one worker per core (`--workers 1 2`), on fresh agents and a
fresh victoria-metrics; CPU and RSS are those of all the forwarder's processes.

- CPU per snapshot: forwarder CPU seconds / snapshots fetched (fresh rows the agents served), against the floor
  `msgpack.unpackb` of one of those bodies in this process (goal <= 2x).
- Poll lateness: per agent and row, the first fetch's arrival at the agent - the row's start; p99 goal <= one
  interval; rows no poll fetched are counted (a poll more than an interval late skips a row).
- RSS of the forwarder (goal <= 1 GB).
- Bytes per sample on the wire: rezgen's remote-write chunk of one row after snappy / its samples, beside the
  agent's msgpack (raw and gzip) / the values it holds (counters + gauges + histogram buckets).

    .venv/bin/python benchmarks/bench_forward.py [--agents 100] [--seconds 60] [--warmup 20] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass
class Outcome:
    workers: int
    seconds: float
    fetched: int
    skipped: int
    missing_agents: int
    cpu_s: float  # the forwarder's processes over the measured span
    rss_mb: float  # the largest sum of the forwarder's processes' RSS seen
    lateness_ms: list[float]
    vm_cpu_s: float
    summary: str


def tree(process: psutil.Process) -> list[psutil.Process]:
    """`process` and its children (the workers of `forward --workers`)."""
    return [process, *process.children(recursive=True)]


def cpu_of(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += sum(process.cpu_times()[:2])
    return total


def rss_of(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss / 2**20
    return total


def measure(path: Path, args: argparse.Namespace, workers: int) -> Outcome:
    """One run: fresh agents and a fresh victoria-metrics, `rezgen forward --workers` of all agents into it."""
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
                                        "--remote-write", f"http://127.0.0.1:{port}/api/v1/write",
                                        "--workers", str(workers)],
                                       stdout=subprocess.PIPE, stderr=log, text=True)
        process = psutil.Process(forward.pid)
        time.sleep(args.warmup)
        processes = tree(process)
        cpu0, t0 = cpu_of(processes), time.time()
        rss = 0.0
        while time.time() - t0 < args.seconds:
            time.sleep(1)
            rss = max(rss, rss_of(processes))
        cpu1, t1 = cpu_of(processes), time.time()
        vm_cpu = sum(psutil.Process(vm.pid).cpu_times()[:2])
        forward.send_signal(signal.SIGINT)
        summary = forward.communicate(timeout=90)[0].strip().splitlines()[-1]
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
    shutil.rmtree(work, ignore_errors=True)
    return Outcome(workers, t1 - t0, fetched, skipped, args.agents - len(stats["first_fetch"]), cpu1 - cpu0, rss,
                   lateness, vm_cpu, summary)


def report(out: Outcome, args: argparse.Namespace, floor: float) -> None:
    tag = f"[forward --workers {out.workers}]"
    per_snapshot = out.cpu_s / max(out.fetched, 1)
    p50, p99 = percentile(out.lateness_ms, 50), percentile(out.lateness_ms, 99)
    rows = out.fetched + out.skipped
    print(f"{tag} {args.agents} agents ({out.missing_agents} never polled) at 1 s for {out.seconds:.0f} s after "
          f"{args.warmup:g} s warm-up: {out.fetched} of {rows} rows fetched ({out.skipped} skipped); forwarder CPU "
          f"{out.cpu_s / out.seconds * 100:.0f} % of a core (all its processes); victoria-metrics CPU so far "
          f"{out.vm_cpu_s:.0f} s")
    print(f"{tag} {out.summary}")
    print(f"{tag} GOAL CPU per snapshot incl. remote write {per_snapshot * 1000:.2f} ms vs msgpack.unpackb "
          f"{floor * 1000:.2f} ms: {per_snapshot / floor:.2f}x (goal <= 2x) -> {verdict(per_snapshot <= 2 * floor)}")
    # A row no poll fetched is a poll more than an interval late: p99 within an interval needs < 1 % of them.
    on_time = p99 <= 1000 and out.skipped <= 0.01 * rows
    print(f"{tag} GOAL poll lateness p50 {p50:.0f} ms, p99 {p99:.0f} ms of the rows fetched; {out.skipped} of "
          f"{rows} rows skipped (goal: p99 <= 1000 ms over every row) -> {verdict(on_time)}")
    print(f"{tag} GOAL forwarder RSS {out.rss_mb:.0f} MB, all its processes (goal <= 1024 MB) -> "
          f"{verdict(out.rss_mb <= 1024)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recording", default="c16.parquet")
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1],
                        help="`forward --workers` of each run (default: 1, then one per core)")
    args = parser.parse_args()
    if not shutil.which("victoria-metrics"):
        sys.exit("needs victoria-metrics (apt-get install victoria-metrics)")
    path = recording(args.recording)
    from rezgen.synthetic.encode import encode
    from rezgen.synthetic.recorded import RecordedAgent

    floor = unpack_floor(encode(RecordedAgent(path).snapshot(1), 2))
    for workers in dict.fromkeys(args.workers):
        report(measure(path, args, workers), args, floor)
        print(f"[forward] load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work shares them)")
    snappy, raw, gz = wire_sizes(path)
    print(f"[forward] bytes per sample: remote write after snappy {snappy:.2f} B; the agent's msgpack {raw:.2f} B "
          f"raw, {gz:.2f} B gzip (per value)")


if __name__ == "__main__":
    main()
