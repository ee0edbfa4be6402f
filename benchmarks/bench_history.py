"""Live history benchmark (`serve --live --data-dir`): ingest CPU with segment writing, disk per day, restart, a day.

One command runs every part; `--only PART[,PART]` runs some. Snapshots are c16's agent part (node `rezolus`: ~2,000
series, the size of the issue's c24 host), encoded as V2 bytes (rezgen.synthetic.encode) and decoded as the client
does. Each figure is printed against its goal.

- ingest: per snapshot, the floor `msgpack.unpackb(bytes)` against `decode` + `Ingest.append` into a full window +
  the data dir writer's `add`, with its journal appended after every snapshot (the default: every second, at 1 s)
  and a segment closed (encoded from its journal) every 600, all in this thread (CPU time: `time.thread_time`, floor
  and rezgen interleaved chunk by chunk). Goal: <= 2x. Then disk: the closed segments' bytes per row x 86,400.
  Goal: <= 250 MB per day.
- restart: a data dir holding the last hour (3,600 rows at 1 s, written by the project's writer), a real
  `rezgen replay c16.parquet --node rezolus` and `rezgen serve --live URL --data-dir DIR`: seconds from the
  process start to the page's data holding the hour before it (and the server's CPU seconds by then, which the
  machine's other work does not move). Goal: <= 3 s. Then the same server, left running with the default journal
  appends (every second), is killed with SIGKILL at a random moment: rows lost = the snapshots it had ingested
  (`/api/status`) - the rows on disk (closed segments and the open one's journal). Goal: <= 60 s worth.
- day: a data dir holding 24 h (86,400 rows; ten-minute segments) and the same server, once its background builder
  has rolled up every segment (as a server that ran for a day has them; its CPU per segment is printed): RSS with
  the hour in memory, after the overview's "Last 1h" (the window's page) and after its "Last 24h" data (each read a
  second after the answer, with the peak), how long that data takes, and seconds from navigation to the first
  chart drawn by a real headless Chromium with the range picker at 24h. Goals: RSS <= 300 MB, first chart <= 1 s.

    .venv/bin/python benchmarks/bench_history.py [--only ingest,restart,day]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_live import Child, get_json, start_child, stop_child, verdict, wait_for_status
from common import recording

PARTS = ("ingest", "restart", "day")
S = 1_000_000_000
SEGMENT_ROWS = 600


def snapshots(path: Path, count: int, start_ns: int | None = None) -> list:
    """`count` decoded V2 snapshots of c16's agent (counters continuing across laps), at 1 s from `start_ns`."""
    from rezgen.agent.schema import SchemaCache
    from rezgen.agent.snapshot import decode
    from rezgen.synthetic.encode import encode
    from rezgen.synthetic.recorded import RecordedAgent

    agent = RecordedAgent(path, node="rezolus")
    schemas = SchemaCache()
    offset = 0 if start_ns is None else start_ns - int(agent.timestamps[0])
    out = []
    for k in range(count):
        lap, row = divmod(k, agent.rows)
        out.append(decode(encode(agent.snapshot(row, lap, offset), 2), schemas))
    return out


def bench_ingest(path: Path, chunk: int, measured: int, window: int) -> None:
    import msgpack

    from rezgen.agent.schema import SchemaCache
    from rezgen.agent.snapshot import decode
    from rezgen.live.datadir import HistoryWriter
    from rezgen.live.ingest import Ingest
    from rezgen.store.store import Store
    from rezgen.synthetic.encode import encode
    from rezgen.synthetic.recorded import RecordedAgent

    agent = RecordedAgent(path, node="rezolus")
    interval = agent.interval_ns
    bodies = [encode(agent.snapshot(k % agent.rows, k // agent.rows), 2) for k in range(window + measured)]
    first = decode(bodies[0], SchemaCache())
    print(f"[ingest] {path.name} node rezolus: {len(first.counters) + len(first.gauges) + len(first.histograms)} "
          f"series; V2 snapshot {len(bodies[0]) / 1e3:.0f} KB; window {window} rows, then {measured} measured")
    root = Path(tempfile.mkdtemp(prefix="rezgen-bench-history-"))
    try:
        schemas = SchemaCache()
        ingest = Ingest(Store(interval), window * interval - 1)
        ingest.add_agent("agent", None)
        writer = HistoryWriter(root, interval // 1_000_000, {}, {"agent": "rezolus"},
                               segment_ns=(SEGMENT_ROWS - 1) * interval, keep_ns=2**62, keep_bytes=10**12,
                               flush_s=10**6)
        for body in bodies[:window]:
            ingest.append("agent", decode(body, schemas))
        floor = ours = 0.0
        ratios = []
        clock = time.thread_time
        gc.collect()
        for first_row in range(window, window + measured, chunk):
            batch = bodies[first_row : first_row + chunk]
            start = clock()
            for body in batch:
                msgpack.unpackb(body)
            a = clock() - start
            start = clock()
            for body in batch:
                snapshot = decode(body, schemas)
                if ingest.append("agent", snapshot):
                    writer.add("agent", snapshot)
                writer.tick()  # what its thread does every second: append the journal, close a full segment
            b = clock() - start
            floor, ours = floor + a, ours + b
            ratios.append(b / a)
        writer.close()
        per = 1e3 / measured
        ratio = ours / floor
        print(f"[ingest] msgpack.unpackb {floor * per:6.2f} ms CPU per snapshot (floor)")
        print(f"[ingest] decode + append + segment writing {ours * per:6.2f} ms ({ratio:.2f}x floor; per minute: "
              f"median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x: the minutes that close a segment)")
        print(f"GOAL ingest CPU per snapshot incl. segment writing: {ratio:.2f}x msgpack.unpackb (goal <= 2x) -> "
              f"{verdict(ratio <= 2)}")
        segments = sorted((root / "rezolus").glob("*.parquet"))
        rows = sum(_rows(p) for p in segments)
        size = sum(p.stat().st_size for p in segments)
        per_day = size / rows * 86_400 / 1e6
        print(f"[disk] {len(segments)} closed segments, {rows} rows, {size / 1e6:.1f} MB: {size / rows / 1e3:.1f} KB "
              "per row")
        print(f"GOAL disk per day per host at 1 s: {per_day:.0f} MB (goal <= 250 MB) -> {verdict(per_day <= 250)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def fill(path: Path, root: Path, node: str, rows: int) -> None:
    """`rows` rows at 1 s ending now, written as ten-minute segments by the data dir's writer. The first ten
    minutes are decoded from c16 once; later segments repeat them with their times moved on (so each segment's
    start is a counter reset: a restarted agent, which costs the reader nothing more)."""
    from rezgen.live.datadir import segment_file_name
    from rezgen.live.segment_writer import Row, write_part

    start = (time.time_ns() // S - rows) * S
    base = snapshots(path, SEGMENT_ROWS, start)
    folder = root / node
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(0, rows, SEGMENT_ROWS):
        count = min(SEGMENT_ROWS, rows - k)
        shift = k * S
        out = [Row(snap.timestamp_ns + shift, snap.duration_ns, [snap.scalars(0), snap.scalars(1)],
                   [h for h in snap.histograms if h.layout is not None]) for snap in base[:count]]
        write_part(folder / segment_file_name(out[0].t_ns, out[-1].t_ns), out, None, 1000, {"rezgen_segment": "1"})
    print(f"[fill] {rows} rows in {len(list(folder.glob('*.parquet')))} segments, "
          f"{sum(p.stat().st_size for p in folder.glob('*.parquet')) / 1e6:.0f} MB")


def _node(url: str) -> str:
    from rezgen.commands.live import node_name
    from rezgen.live.datadir import node_dir_name

    return node_dir_name(node_name(url.rstrip("/")))


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process used so far: what a restart costs whatever else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_restart(path: Path, logdir: Path) -> None:
    import httpx

    replay = start_child("replay", ["replay", str(path), "--node", "rezolus", "--port", "0"], logdir)
    root = Path(tempfile.mkdtemp(prefix="rezgen-bench-history-"))
    server: Child | None = None
    try:
        fill(path, root, _node(replay.url), 3600)
        started = time.monotonic()
        server = start_child("serve-restart", ["serve", "--live", replay.url, "--port", "0", "--data-dir", str(root)],
                             logdir)
        ready = time.monotonic() - started
        hour_ago = time.time() * 1000 - 3_540_000
        while True:
            text = httpx.get(server.url + "data/_/overview.js?range=1h", timeout=60).text
            if '"start":' in text and int(text.split('"start":')[1].split(",")[0]) <= hour_ago:
                break
        shown = time.monotonic() - started
        cpu = _cpu_s(server.proc.pid)
        print(f"[restart] listening {ready:.2f} s after start; the page's data holds the previous hour {shown:.2f} s "
              f"after start, the server having used {cpu:.2f} s of CPU by then (load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print(f"GOAL previous hour shown after a restart: {shown:.2f} s (goal <= 3 s) -> {verdict(shown <= 3)}")
        # Kill -9 at a random moment: what is lost is what was not appended to the journal yet.
        time.sleep(60 + random.uniform(5, 55))
        status = get_json(server.url + "api/status")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        import pyarrow.parquet as pq

        from rezgen.live import journal

        node = root / _node(replay.url)
        on_disk = max([int(pq.read_table(p, columns=["timestamp"]).column(0).to_numpy().max())
                       for p in node.rglob("*.parquet")]
                      + [max(journal.read(p).stamps, default=0) for p in node.rglob(f"*{journal.SUFFIX}")])
        lost = (status["newest_ms"] * 1_000_000 - on_disk) / S
        print(f"[kill -9] newest ingested {status['newest_ms']}, newest on disk {on_disk // 1_000_000}: "
              f"{lost:.0f} s of rows lost (at 1 s: {lost:.0f} rows)")
        print(f"GOAL rows lost after kill -9: {lost:.0f} s worth (goal <= 60 s) -> {verdict(lost <= 60)}")
    finally:
        if server is not None:
            stop_child(server)
        stop_child(replay)
        shutil.rmtree(root, ignore_errors=True)


def bench_day(path: Path, logdir: Path) -> None:
    import httpx

    replay = start_child("replay", ["replay", str(path), "--node", "rezolus", "--port", "0"], logdir)
    root = Path(os.environ.get("REZGEN_BENCH_DAY_DIR") or tempfile.mkdtemp(prefix="rezgen-bench-history-"))
    server: Child | None = None
    try:
        fill(path, root, _node(replay.url), 86_400)
        server = start_child("serve-day", ["serve", "--live", replay.url, "--port", "0", "--data-dir", str(root)],
                             logdir)
        wait_for_status(server)
        print(f"[day] RSS with the last hour in memory: {_rss_mb(server.proc.pid):.0f} MB")
        rollups = _wait_for_rollups(server)
        per_day = rollups["bytes"] / 1e6 * 86_400 / max(1, rollups["rows"])
        print(f"[day] rollups: {rollups['built']} segments rolled up in {rollups['wall']:.0f} s by the server's "
              f"builder, {rollups['cpu_s'] / max(1, rollups['built']):.2f} s CPU per segment; "
              f"{rollups['bytes'] / 1e6:.1f} MB on disk ({per_day:.0f} MB per day)")
        httpx.get(server.url + "data/_/overview.js?range=1h", timeout=600)
        time.sleep(1)  # what follows an answer (a trim) is done
        print(f"[day] RSS after the overview's Last 1h (the window's own page): {_rss_mb(server.proc.pid):.0f} MB")
        times = []
        for _ in range(2):
            started = time.monotonic()
            text = httpx.get(server.url + "data/_/overview.js?range=24h", timeout=600).text
            times.append(time.monotonic() - started)
            assert text.startswith("REZGEN.register"), text[:200]
        time.sleep(1)
        rss = _rss_mb(server.proc.pid)
        first = _first_chart(server.url, "24h")
        started = time.monotonic()
        httpx.get(server.url + "data/_/metrics/cpu_usage.js?range=24h", timeout=600)
        one = time.monotonic() - started
        print(f"[day] the overview's Last 24h data: {times[0]:.2f} s, again {times[1]:.2f} s; one metric's chart "
              f"(metric browser, raw segments) {one:.1f} s; RSS after the overview {rss:.0f} MB (peak "
              f"{_rss_mb(server.proc.pid, 'VmHWM'):.0f} MB)")
        for k, (drawn, data) in enumerate(first):
            print(f"[day] Chromium, overview with Last 24h, {'a fresh browser' if k == 0 else f'navigation {k + 1}'}: "
                  f"first chart drawn {drawn:.2f} s after navigation ({data})")
        warm = statistics.median(drawn for drawn, _ in first[1:])
        print(f"[day] load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"GOAL serve RSS with 24 h on disk: {rss:.0f} MB (goal <= 300 MB) -> {verdict(rss <= 300)}")
        print(f"GOAL Last 24h first chart: {warm:.2f} s after navigation in a browser in use (median of 3; a fresh "
              f"browser's first page {first[0][0]:.2f} s) (goal <= 1 s) -> {verdict(warm <= 1)}")
    finally:
        if server is not None:
            stop_child(server)
        stop_child(replay)
        if not os.environ.get("REZGEN_BENCH_DAY_DIR"):
            shutil.rmtree(root, ignore_errors=True)


def _wait_for_rollups(server: Child) -> dict:
    """Until the server's builder has rolled up every closed segment: its status, the wall time, the rollups'
    bytes and the rows of the segments."""
    import pyarrow.parquet as pq

    started = time.monotonic()
    while True:
        found = (get_json(server.url + "api/status").get("history") or {}).get("rollups")
        if found is None:
            sys.exit("the server builds no rollups")
        if found["pending"] == 0 and found["built"] > 0:
            break
        time.sleep(2)
    root = Path(get_json(server.url + "api/status")["history"]["dir"])
    rollups = list(root.rglob(".rollups/*.rollup"))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in root.glob("*/*.parquet"))
    return {**found, "wall": time.monotonic() - started, "bytes": sum(p.stat().st_size for p in rollups),
            "rows": rows}


def _first_chart(url: str, span: str) -> list[tuple[float, str]]:
    """Per navigation of a real headless Chromium with the range picker at `span` (a fresh browser's first, then
    three more: a browser in use): seconds to the first chart drawn, and when its data was answered."""
    import shutil as sh

    from playwright.sync_api import sync_playwright

    executable = sh.which("chromium") or sh.which("chromium-browser")
    if executable is None:
        sys.exit("the day benchmark needs chromium on PATH")
    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                       "--disable-background-networking"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_init_script(f"localStorage.setItem('rezgen-live-range', {span!r})")
            page = context.new_page()
            requests: list[tuple[float, float]] = []  # a data request's start (s after navigation) and duration
            page.on("requestfinished", lambda r: requests.append((time.monotonic() - started, r.timing["responseEnd"]))
                    if "/data/" in r.url else None)
            for _ in range(4):
                requests.clear()
                started = time.monotonic()
                page.goto(url, wait_until="commit")
                page.wait_for_function("() => Array.from(document.querySelectorAll('.chart[data-plot-id]'))"
                                       ".some(el => el.__rezgen)", timeout=600_000, polling=20)
                drawn = time.monotonic() - started
                assert page.evaluate("document.querySelector('#live-range').value") == span
                out.append((drawn, ", ".join(f"data answered at {end:.2f} s, in {took / 1e3:.2f} s"
                                             for end, took in requests)))
        finally:
            browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    parser.add_argument("--recording", default="c16.parquet")
    parser.add_argument("--measured", type=int, default=1200, help="ingest: snapshots measured")
    parser.add_argument("--window", type=int, default=300, help="ingest: rows in the (full) window")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if set(parts) - set(PARTS):
        parser.error(f"unknown part(s) {', '.join(sorted(set(parts) - set(PARTS)))}")
    path = recording(args.recording)
    logdir = Path(os.environ.get("TMPDIR", "/tmp")) / "rezgen-bench-history"
    logdir.mkdir(exist_ok=True)
    os.environ.setdefault("REZGEN_DATA_DIR", str(logdir / "unused-data-dir"))
    if "ingest" in parts:
        bench_ingest(path, 60, args.measured, args.window)
    if "restart" in parts:
        bench_restart(path, logdir)
    if "day" in parts:
        bench_day(path, logdir)
    print(f"(child logs in {logdir})")


if __name__ == "__main__":
    sys.exit(main())
