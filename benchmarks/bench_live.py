"""Live-mode benchmark: ingest CPU, memory over a sliding window, SSE fan-out and agent-to-browser latency.

One command runs every part (a few minutes); `--only PART[,PART]` runs some of them. Each figure is printed
against its goal (issue text: "for a snapshot the size of c16.parquet's agent part (~2,000 series, 33
histograms)").

- ingest: c16's agent snapshots (node `rezolus`, consecutive rows, counters advancing) encoded as V2 bytes with
  rezgen.synthetic.encode. In this process, per snapshot: the floor `msgpack.unpackb(bytes)` against rezgen's
  `decode` + `Ingest.append` into a window that is already full (so every append also evicts). CPU time of this
  thread (`time.thread_time`), measured chunk by chunk with floor and rezgen interleaved, so load from other
  processes falls on both. Goal: ratio <= 2.
- soak: a real `rezgen replay c16.parquet --speed S` and `rezgen serve --live URL --interval 50ms --retention 5m`
  (fresh processes); the server's RSS (psutil) when its window has been full for 1x, 2x and 3x the retention
  (agent time). Goal: growth from 1x to 3x <= 10 %.
- hour: the same with `--retention 1h`; RSS once an hour of agent time is in the window. Goal <= 300 MB. The
  replay loops c16's 6 minutes with counters continuing; at speed 15 (4 min) a server polling every 50 ms can
  fetch every row, so the window holds ~3,600 one-second rows, as a real 1 h window at the default interval does
  (at a higher speed it skips rows and holds fewer: the rows in the window are printed).
- stream: `rezgen replay --speed 1` and `rezgen serve --live URL --interval 1s`; 100 SSE clients on
  `/api/stream?section=overview&since=<last>` for >= 30 s. Fan-out: receipt time - the event's `at` (when the hub
  computed it), p50/p99, once every client is connected and caught up (the burst of 100 pages connecting at once
  is printed apart); every client must get every step (events contiguous on the grid). Goal: p99 <= 250 ms.
  Latency: the replay serves row k with systemtime = its recorded time + (wall time at start - first row's
  time), and row k is served from that wall time on (speed 1), so systemtime is when the snapshot became
  available. Latency = receipt of the first `points` event whose last step is >= systemtime - systemtime.
  Goal: <= interval + 250 ms. Split into: agent -> server (the `status` event after each update tells the
  newest snapshot; its systemtime to the update's `at`), grid wait (covered snapshot -> the snapshot that made its
  step computable) and fan-out.

    .venv/bin/python benchmarks/bench_live.py [--only ingest,soak,hour,stream] [--recording c16.parquet]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import recording

PARTS = ("ingest", "soak", "hour", "stream")
S = 1_000_000_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


# --- 1. ingest CPU ------------------------------------------------------------------------------------------------

def bench_ingest(path: Path, snapshots: int, window_rows: int, chunk: int) -> None:
    import gc

    import msgpack

    from rezgen.agent.schema import SchemaCache
    from rezgen.agent.snapshot import decode
    from rezgen.live.ingest import EVICT_LATE, Ingest
    from rezgen.store.store import Store
    from rezgen.synthetic.encode import encode
    from rezgen.synthetic.recorded import RecordedAgent

    agent = RecordedAgent(path, node="rezolus")
    interval = agent.interval_ns
    first = agent.snapshot(0)
    print(f"[ingest] {path.name} node {agent.node}: {len(first.counters)} counters, {len(first.gauges)} gauges, "
          f"{len(first.histograms)} histograms; V2 snapshot {len(encode(first, 2)) / 1e3:.0f} KB; window "
          f"{window_rows} rows (retention {window_rows * interval / S:g} s), then {snapshots} measured")
    position = 0

    def payloads(count: int) -> list[bytes]:
        nonlocal position
        out = []
        for _ in range(count):
            lap, row = divmod(position, agent.rows)
            out.append(encode(agent.snapshot(row, lap), 2))
            position += 1
        return out

    schemas = SchemaCache()
    ingest = Ingest(Store(interval), window_rows * interval - 1)  # keeps `window_rows` rows (+ a batch to evict)
    ingest.add_agent("agent", None)
    table = ingest.agents()["agent"].table
    filled = 0
    while filled < window_rows + 64:  # full, plus one series sweep
        for body in payloads(min(chunk, window_rows + 64 - filled)):
            ingest.append("agent", decode(body, schemas))
            filled += 1
    full = range(window_rows, window_rows + window_rows // EVICT_LATE + 2)
    assert len(table.timestamps) in full, len(table.timestamps)

    floor_cpu = decode_cpu = rezgen_cpu = 0.0
    ratios = []
    clock = time.thread_time
    done = 0
    gc.collect()
    while done < snapshots:
        batch = payloads(min(chunk, snapshots - done))
        start = clock()
        for body in batch:
            msgpack.unpackb(body)
        floor = clock() - start
        start = clock()
        for body in batch:
            decode(body, schemas)
        decoded = clock() - start
        start = clock()
        for body in batch:  # as AgentClient._tick and the server's on_snapshot do it
            if not ingest.append("agent", decode(body, schemas)):
                sys.exit("ingest refused a snapshot: the benchmark's timestamps do not advance")
        both = clock() - start
        floor_cpu, decode_cpu, rezgen_cpu = floor_cpu + floor, decode_cpu + decoded, rezgen_cpu + both
        ratios.append(both / floor)
        done += len(batch)
    assert len(table.timestamps) in full
    per = 1e3 / done
    ratio = rezgen_cpu / floor_cpu
    print(f"[ingest] msgpack.unpackb      {floor_cpu * per:6.2f} ms CPU per snapshot (floor)")
    print(f"[ingest] rezgen decode        {decode_cpu * per:6.2f} ms  ({decode_cpu / floor_cpu:.2f}x floor)")
    print(f"[ingest] decode + append      {rezgen_cpu * per:6.2f} ms  ({ratio:.2f}x floor; per chunk of {chunk}: "
          f"median {statistics.median(ratios):.2f}x, min {min(ratios):.2f}x, max {max(ratios):.2f}x; append "
          f"~{(rezgen_cpu - decode_cpu) * per:.2f} ms)")
    print(f"[ingest] {len(table.series)} series in the window")
    print(f"GOAL ingest CPU per snapshot: {ratio:.2f}x msgpack decode (goal <= 2x) -> {verdict(ratio <= 2)}")


# --- child processes ----------------------------------------------------------------------------------------------

@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    url: str
    log: Path


def package_root() -> Path:
    """Where the imported rezgen lives (this checkout, or another one on PYTHONPATH to compare versions)."""
    import rezgen

    return Path(rezgen.__file__).resolve().parents[1]


def start_child(name: str, args: list[str], logdir: Path) -> Child:
    log = logdir / f"{name}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    handle = open(log, "w")  # noqa: SIM115 - written to below for as long as the child starts up
    proc = subprocess.Popen([sys.executable, "-m", "rezgen", *args], cwd=package_root(), stdout=subprocess.PIPE,
                            stderr=handle, text=True, env=env)
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        handle.write(line)
        handle.flush()
        found = re.findall(r"(http://127\.0\.0\.1:\d+/)", line)
        if found:  # the last address on the line is where it listens
            return Child(name, proc, found[-1], log)
    proc.kill()
    sys.exit(f"{name} did not start: see {log}")


def stop_child(child: Child) -> None:
    if child.proc.poll() is None:
        child.proc.terminate()
        try:
            child.proc.wait(10)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


def get_json(url: str) -> dict:
    import httpx

    return httpx.get(url, timeout=10).json()


def wait_for_status(server: Child, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = get_json(server.url + "api/status")
            if status.get("newest_ms"):
                return status
        except Exception:
            pass
        if server.proc.poll() is not None:
            sys.exit(f"{server.name} exited: see {server.log}")
        time.sleep(0.2)
    sys.exit(f"{server.name} got no snapshot within {timeout:g} s: see {server.log}")


# --- 2. soak and 3. a full hour -----------------------------------------------------------------------------------

def soak(path: Path, logdir: Path, *, speed: float, retention_s: int, marks: tuple[int, ...], label: str
         ) -> tuple[dict[int, float], list[str]]:
    """RSS (MB) of a live server when (agent time since its first snapshot) = mark x retention."""
    import psutil

    replay = start_child(f"replay-{label}", ["replay", str(path), "--port", "0", "--speed", f"{speed:g}"], logdir)
    server = start_child(f"serve-{label}", ["serve", "--live", replay.url, "--interval", "50ms", "--retention",
                                            f"{retention_s}s", "--port", "0"], logdir)
    notes = []
    try:
        process = psutil.Process(server.proc.pid)
        status = wait_for_status(server)
        first_ms, first_seq = status["newest_ms"], status["seq"]
        started = time.monotonic()
        cpu_started = sum(process.cpu_times()[:2])
        history: list[tuple[int, int]] = [(first_ms, first_seq)]  # (newest_ms, seq): rows in the window
        rss: dict[int, float] = {}
        for mark in marks:
            target = first_ms + mark * retention_s * 1000
            while True:
                status = get_json(server.url + "api/status")
                history.append((status["newest_ms"], status["seq"]))
                if status["newest_ms"] >= target:
                    break
                if server.proc.poll() is not None:
                    sys.exit(f"server exited: see {server.log}")
                time.sleep(0.25)
            rss[mark] = process.memory_info().rss / 2**20
            newest, seq = history[-1]
            oldest_kept = newest - retention_s * 1000
            before = max((s for t, s in history if t <= oldest_kept), default=first_seq)
            elapsed = time.monotonic() - started
            cpu = sum(process.cpu_times()[:2]) - cpu_started
            ingested = max(seq - first_seq, 1)
            notes.append(f"{mark}x window after {elapsed:.0f} s wall: RSS {rss[mark]:.0f} MB, ~{seq - before} rows "
                         f"in the window, {seq - first_seq} snapshots ingested ({ingested / elapsed:.1f}/s); server "
                         f"CPU {cpu / elapsed * 100:.0f} % of a core, {cpu / ingested * 1e3:.1f} ms per snapshot "
                         f"(poll, gunzip, decode, ingest, HTTP)")
            print(f"[{label}] {notes[-1]}", flush=True)
        return rss, notes
    finally:
        stop_child(server)
        stop_child(replay)


def bench_soak(path: Path, logdir: Path, speed: float) -> None:
    rss, _ = soak(path, logdir, speed=speed, retention_s=300, marks=(1, 2, 3), label="soak")
    growth = (rss[3] - rss[1]) / rss[1] * 100
    print(f"[soak] replay --speed {speed:g}, serve --interval 50ms --retention 5m: RSS 1x {rss[1]:.0f} MB, "
          f"2x {rss[2]:.0f} MB, 3x {rss[3]:.0f} MB")
    print(f"GOAL soak RSS growth 1x -> 3x window: {growth:+.1f} % (goal <= 10 %) -> {verdict(growth <= 10)}")


def bench_hour(path: Path, logdir: Path, speed: float) -> None:
    rss, _ = soak(path, logdir, speed=speed, retention_s=3600, marks=(1,), label="hour")
    print(f"GOAL RSS with a full 1 h window: {rss[1]:.0f} MB (goal <= 300 MB) -> {verdict(rss[1] <= 300)}")


# --- 4. SSE fan-out and agent-to-browser latency -----------------------------------------------------------------

POINTS_HEAD = re.compile(r'\{"first": (\d+), "last": (\d+), "at": (\d+)')
NEWEST = re.compile(r'"newest_ms": (\d+)')


@dataclass
class Received:
    first: int
    last: int
    at: int
    receipt_ms: float
    newest_ms: int | None = None  # from the status event that follows


@dataclass
class Client:
    events: list[Received] = field(default_factory=list)
    resets: int = 0
    error: str | None = None


async def sse_client(http, client: Client, url: str, stop_at: float) -> None:
    try:
        async with http.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
            event, data = "message", []
            async for line in response.aiter_lines():
                if time.monotonic() > stop_at:
                    return
                if line:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
                    continue
                if data:
                    receipt = time.time() * 1000
                    # Only the head of the JSON is read when the server writes these keys first: parsing 100
                    # payloads would delay this process's reading of the next clients' events.
                    if event == "points":
                        head = POINTS_HEAD.match(data[0])
                        if head:
                            first, last, at = map(int, head.groups())
                        else:
                            body = json.loads("\n".join(data))
                            first, last, at = body["first"], body["last"], body["at"]
                        client.events.append(Received(first, last, at, receipt))
                    elif event == "status" and client.events and client.events[-1].newest_ms is None:
                        newest = NEWEST.search(data[0])
                        client.events[-1].newest_ms = int(newest.group(1)) if newest else None
                    elif event == "reset":
                        client.resets += 1
                event, data = "message", []
    except Exception as exc:  # reported, not fatal
        client.error = f"{type(exc).__name__}: {exc}"


async def run_clients(base: str, count: int, seconds: float) -> tuple[list[Client], int, float]:
    import httpx

    async with httpx.AsyncClient(timeout=10) as http:
        script = (await http.get(base + "data/_/overview.js?range=5m")).text
    found = re.search(r'"live":\{"last":(\d+),"step":(\d+)', script)
    if not found:
        sys.exit("no live.last in the overview's data script")
    since, step = int(found.group(1)), int(found.group(2))
    stop_at = time.monotonic() + seconds
    clients = [Client() for _ in range(count)]
    url = f"{base}api/stream?section=overview&since={since}"
    # One connection pool, one connection per stream (an httpx client per stream would build 100 SSL contexts).
    limits = httpx.Limits(max_connections=count + 1, max_keepalive_connections=count + 1)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=30), limits=limits) as http:
        await asyncio.gather(*(sse_client(http, c, url, stop_at) for c in clients))
    return clients, since, step


def bench_stream(path: Path, logdir: Path, clients: int, seconds: float, warmup: float = 10) -> None:
    import psutil

    replay = start_child("replay-stream", ["replay", str(path), "--port", "0", "--speed", "1"], logdir)
    server = start_child("serve-stream", ["serve", "--live", replay.url, "--interval", "1s", "--retention", "1h",
                                          "--port", "0"], logdir)
    try:
        wait_for_status(server)
        time.sleep(3)  # a few snapshots in the window
        offset_ns = get_json(replay.url + "_replay/stats")["offset_ns"]
        process = psutil.Process(server.proc.pid)
        process.cpu_percent(None)
        connected_ms = time.time() * 1000
        got, since, step = asyncio.run(run_clients(server.url, clients, seconds + warmup))
        cpu = process.cpu_percent(None)
    finally:
        stop_child(server)
        stop_child(replay)
    # Connecting: 100 pages arrive at once, each catching up from `since`. Measured from two steps after the
    # last client got its first event.
    firsts = [c.events[0].receipt_ms for c in got if c.events]
    settled_ms = max(firsts, default=connected_ms) + 2 * step if len(firsts) == len(got) else connected_ms

    from rezgen.synthetic.recorded import RecordedAgent

    agent = RecordedAgent(path)
    errors = [c.error for c in got if c.error]
    # Fan-out: receipt - at, over every event of every client once all are connected and caught up.
    delays = [e.receipt_ms - e.at for c in got for e in c.events if e.at >= settled_ms]
    first_delays = [e.receipt_ms - e.at for c in got for e in c.events if e.at < settled_ms]
    # Every step after `since`, in order, no gap: each event starts one step after the previous one ended.
    end = min((c.events[-1].last for c in got if c.events), default=since)
    complete = gaps = coalesced = 0
    for c in got:
        cursor, ok = since, True
        for e in c.events:
            if e.last > end:
                break
            if e.first != cursor + step:
                ok = False
                gaps += 1
            coalesced += e.last > e.first
            cursor = e.last
        complete += ok and cursor == end
    steps = (end - since) // step
    print(f"[stream] {clients} clients for {seconds + warmup:g} s on section overview (interval 1 s): {steps} steps "
          f"each from {since} to {end}; server CPU {cpu:.0f} %; {len(errors)} client errors"
          + (f" (first: {errors[0]})" if errors else ""))
    print(f"[stream] connecting ({clients} pages at once, each catching up from `since`): the last client's first "
          f"event came {(settled_ms - 2 * step - connected_ms) / 1000:.1f} s after connecting; {len(first_delays)} "
          f"events until 2 steps later, receipt - at p50 {percentile(first_delays, 50):.0f} ms, max "
          f"{max(first_delays, default=0):.0f} ms (not in the figures below)")
    print(f"[stream] fan-out (receipt - at) over {len(delays)} events: p50 {percentile(delays, 50):.0f} ms, "
          f"p99 {percentile(delays, 99):.0f} ms, max {max(delays, default=float('nan')):.0f} ms; "
          f"{complete}/{clients} clients got every step ({gaps} gaps, {coalesced} coalesced events, "
          f"{sum(c.resets for c in got)} resets)")
    p99 = percentile(delays, 99)
    ok = p99 <= 250 and complete == clients and steps > 0
    print(f"GOAL SSE fan-out p99 {p99:.0f} ms (goal <= 250 ms), every client every update: "
          f"{complete}/{clients} -> {verdict(ok)}")

    # Latency: served systemtimes in the measured span.
    period = agent.period_ns
    base = [int(t) for t in agent.timestamps]

    def served(lo_ms: int, hi_ms: int) -> list[int]:
        out = []
        lap = max(0, (lo_ms * 1_000_000 - offset_ns - base[0]) // period - 1)
        while True:
            for t in base:
                ts = t + lap * period + offset_ns
                if ts > hi_ms * 1_000_000:
                    return out
                if ts > lo_ms * 1_000_000:
                    out.append(ts)
            lap += 1

    stamps = [ts for ts in served(since, end) if ts >= settled_ms * 1e6]
    totals, waits, agent_server = [], [], []
    for c in got:
        events = c.events
        i = 0
        for ts in stamps:
            while i < len(events) and events[i].last * 1_000_000 < ts:
                i += 1
            if i == len(events):
                break
            e = events[i]
            totals.append(e.receipt_ms - ts / 1e6)
            if e.newest_ms is not None:
                waits.append(e.newest_ms - ts / 1e6)
                agent_server.append(e.at - e.newest_ms)
    goal = 1000 + 250
    p50, p99 = percentile(totals, 50), percentile(totals, 99)
    print(f"[stream] agent-to-browser over {len(stamps)} snapshots x {clients} clients: p50 {p50:.0f} ms, "
          f"p99 {p99:.0f} ms, max {max(totals, default=float('nan')):.0f} ms")
    print(f"[stream]   of which grid wait (covered snapshot -> the newest one when its step was computed): "
          f"p50 {percentile(waits, 50):.0f} ms, p99 {percentile(waits, 99):.0f} ms; agent systemtime of that "
          f"newest snapshot -> computed (`at`): p50 {percentile(agent_server, 50):.0f} ms, "
          f"p99 {percentile(agent_server, 99):.0f} ms; fan-out p50 {percentile(delays, 50):.0f} ms")
    print(f"GOAL agent-to-browser latency p99 {p99:.0f} ms (goal <= interval + 250 = {goal} ms) -> "
          f"{verdict(p99 <= goal)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    parser.add_argument("--recording", default="c16.parquet")
    parser.add_argument("--snapshots", type=int, default=600, help="ingest: snapshots measured")
    parser.add_argument("--window", type=int, default=300, help="ingest: rows in the (full) window")
    parser.add_argument("--chunk", type=int, default=30, help="ingest: snapshots per interleaved measurement")
    parser.add_argument("--soak-speed", type=float, default=20.0)
    parser.add_argument("--hour-speed", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=40.0, help="stream: how long the clients listen")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}")
    path = recording(args.recording)
    logdir = Path(os.environ.get("TMPDIR", "/tmp")) / "rezgen-bench-live"
    logdir.mkdir(exist_ok=True)
    started = time.monotonic()
    if "ingest" in parts:
        bench_ingest(path, args.snapshots, args.window, args.chunk)
    if "soak" in parts:
        bench_soak(path, logdir, args.soak_speed)
    if "hour" in parts:
        bench_hour(path, logdir, args.hour_speed)
    if "stream" in parts:
        bench_stream(path, logdir, args.clients, args.seconds)
    print(f"(done in {time.monotonic() - started:.0f} s; child logs in {logdir})")


if __name__ == "__main__":
    main()
