"""`serve --live --data-dir DIR`: history on disk across restarts, with real processes on 127.0.0.1 (`rezgen replay`
as the agent, `rezgen serve --live` killed with SIGKILL and started again), and faults: a corrupt segment, one of
another format version, a full filesystem (a tmpfs of 1 MB, mounted by the test as root). Expectations come from
the files on disk read with plain pyarrow, and from the replayed recording."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgpack
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from processes import wait_for
from shared import shared_recording, unavailable
from test_live_record import Proc, freeze, served, status

from rezgen.live.datadir import OPEN, node_dir_name, segment_file_name

pytestmark = [pytest.mark.live, pytest.mark.slow]
FLUSH_S = 2.0


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[Proc, Path]]:
    recording = shared_recording("demo.parquet")
    proc = Proc(["replay", str(recording), "--port", "0"], tmp_path / "replay.log")
    try:
        yield proc, recording
    finally:
        proc.kill()


def serve(agent: Proc, data_dir: Path, log: Path, *extra: str, flush_s: float | None = FLUSH_S,
          interval: str = "500ms") -> Proc:
    env = {"REZGEN_RECORD_SEGMENT_S": str(flush_s)} if flush_s else {}
    return Proc(["serve", "--live", agent.url, "--port", "0", "--interval", interval, "--data-dir", str(data_dir),
                 *extra], log, env=env)


def node_dir(data_dir: Path, agent: Proc) -> Path:
    return data_dir / node_dir_name(agent.url.split("//")[1].rstrip("/"))


def stamps_of(paths: list[Path]) -> list[int]:
    return sorted(t for p in paths for t in pq.read_table(p, columns=["timestamp"]).column(0).to_pylist())


def journaled(node: Path) -> list[int]:
    """The timestamps of the whole rows in the open segment's journals (msgpack records, "r" = a row)."""
    out = []
    for path in (node / OPEN).glob("*.journal"):
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(path.read_bytes())
        out += [record[1] for record in unpacker if record[0] == "r"]
    return sorted(out)


def page_data(server: str, query: str) -> dict:
    text = httpx.get(server + f"data/_/overview.js?{query}", timeout=120).text
    return json.loads(text[text.index(",") + 1 : text.rindex(")")])


def busy(payload: dict) -> dict:
    """The finest level of the overview's CPU busy chart."""
    return next(p for g in payload["groups"] for p in g["plots"] if p["id"] == "cpu-busy")["levels"][-1]


def test_a_kill_loses_at_most_a_flush_and_the_restart_shows_the_rows_before_it(agent, tmp_path: Path) -> None:
    proc, recording = agent
    data = tmp_path / "data"
    node = node_dir(data, proc)
    server = serve(proc, data, tmp_path / "live.log", "--segment", "1h")
    try:
        wait_for(lambda: len(journaled(node)) >= 4, what="rows in the journal on disk")
        seen = status(server.url)["seq"]
        wait_for(lambda: status(server.url)["seq"] >= seen + 2)
        newest_ns = status(server.url)["newest_ms"] * 1_000_000
    finally:
        server.kill()  # SIGKILL: no clean-up of any kind
    on_disk = journaled(node)
    assert set(on_disk) <= set(served(proc, recording).tolist())
    # The loss is at most the journal's flush period (a second, plus a poll and the time the writer takes).
    assert on_disk[-1] >= newest_ns - 2.5e9

    proc_fault = httpx.post(proc.url + "_replay/fault", params={"mode": "error"})  # the agent is down meanwhile
    assert proc_fault.status_code == 200
    started = time.monotonic()
    again = serve(proc, data, tmp_path / "live2.log", flush_s=None)
    try:
        assert any(f"recovered {len(on_disk)} rows" in line for line in again.lines), again.lines
        assert any(f"refilled the live window with {len(on_disk)} rows" in line for line in again.lines)
        # The recovered segment, named by its first and last sample, holds exactly the journal's rows.
        closed = sorted(node.glob("*.parquet"))
        assert [p.name for p in closed] == [segment_file_name(on_disk[0], on_disk[-1])]
        assert stamps_of(closed) == on_disk
        assert not (node / OPEN).exists()
        # Before any new snapshot: the page shows the rows of the previous run.
        first = status(again.url)
        assert first["seq"] == len(on_disk) and first["newest_ms"] == on_disk[-1] // 1_000_000
        payload = page_data(again.url, "range=5m")
        assert time.monotonic() - started < 30  # (the figure, ≤ 3 s, is measured by benchmarks/bench_history.py)
        line = busy(payload)
        values = [v for v in line["values"][0] if v is not None]
        assert len(values) >= len(on_disk) - 4  # a rate needs a previous sample, and a step lands between samples
        assert line["t"][0] <= on_disk[1] // 1_000_000 + 1000
        # The agent comes back: new points after a break where rezgen was down. A break is a gap longer than
        # twice the samples' spacing (on a loaded machine polls may land seconds apart), so the agent stays down
        # until well past that (the replayed clock is the wall clock).
        last_ms = on_disk[-1] // 1_000_000
        spacing_ms = max(1000.0, float(np.median(np.diff(on_disk))) / 1e6)
        hole_from = last_ms + 3 * spacing_ms
        while time.time() * 1000 < hole_from + 4000:
            time.sleep(0.1)
        assert httpx.post(proc.url + "_replay/fault", params={"mode": "none"}).status_code == 200
        wait_for(lambda: status(again.url)["seq"] >= len(on_disk) + 4)
        after = busy(page_data(again.url, "range=5m"))
        hole = [v for t, v in zip(after["t"], after["values"][0]) if hole_from < t < hole_from + 2500]
        assert hole and all(v is None for v in hole), (after["t"], after["values"][0])
        assert after["values"][0][-1] is not None
    finally:
        again.kill()


def test_a_corrupt_segment_and_one_of_another_version_are_skipped_with_a_warning(agent, tmp_path: Path) -> None:
    proc, _ = agent
    data = tmp_path / "data"
    node = node_dir(data, proc)
    server = serve(proc, data, tmp_path / "live.log", "--segment", "1h")
    try:
        wait_for(lambda: status(server.url)["seq"] >= 6)
        counts = freeze(server.url, [(proc, Path())])
        assert server.finish(signal.SIGINT) in (0, -signal.SIGINT)
    finally:
        server.kill()
    good = sorted(node.glob("*.parquet"))
    assert len(good) == 1 and len(stamps_of(good)) == sum(counts.values())
    first, last = stamps_of(good)[0], stamps_of(good)[-1]
    # A damaged segment (its middle overwritten) and one written by another format version, both within the hour.
    damaged = node / segment_file_name(first - 60 * 10**9, first - 30 * 10**9)
    shutil.copy(good[0], damaged)
    raw = bytearray(damaged.read_bytes())
    raw[8 : len(raw) // 2] = b"\xff" * (len(raw) // 2 - 8)
    damaged.write_bytes(bytes(raw))
    foreign = node / segment_file_name(first - 29 * 10**9, first - 10**9)
    table = pq.read_table(good[0])
    metadata = {**table.schema.metadata, b"rezgen_segment": b"99"}
    pq.write_table(table.replace_schema_metadata(metadata), foreign)
    again = serve(proc, data, tmp_path / "live2.log", flush_s=None)
    try:
        assert any(f"refilled the live window with {len(stamps_of(good))} rows" in line for line in again.lines), \
            again.lines
        log = again.log.read_text()
        assert re.search(rf"skipping a segment: {re.escape(str(damaged))}", log), log
        assert re.search(rf"{re.escape(str(foreign))}: written by another rezgen version \(segment format 99", log)
        assert "Traceback" not in log
        assert status(again.url)["newest_ms"] == last // 1_000_000
        # A range that reaches the skipped files is served from the good one.
        payload = page_data(again.url, "range=1h")
        assert payload["range"]["start"] <= first // 1_000_000
        assert any(v is not None for v in busy(payload)["values"][0])
    finally:
        again.kill()
    assert damaged.exists() and foreign.exists()  # skipped, never deleted


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs, mounted for the test (root only; elsewhere the test says why it cannot run)."""
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        unavailable("a full filesystem needs root to mount a small tmpfs")
    where = tmp_path / "tiny"
    where.mkdir()
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_said_on_the_terminal_and_the_page_and_live_goes_on(agent, tiny_filesystem: Path,
                                                                            tmp_path: Path) -> None:
    proc, _ = agent
    data = tiny_filesystem / "data"
    node = node_dir(data, proc)
    server = serve(proc, data, tmp_path / "live.log", "--segment", "1h")
    try:
        wait_for(lambda: len(journaled(node)) >= 1, what="rows in the journal on disk")
        filler = tiny_filesystem / "filler"
        try:  # fill the filesystem to the last byte
            with open(filler, "wb", buffering=0) as out:
                while True:
                    out.write(b"\0" * 4096)
        except OSError:
            pass
        full = wait_for(lambda: (s := status(server.url))["history"]["error"] and s, what="the fault in the status")
        assert "No space left on device" in full["history"]["error"]
        assert "memory only" in full["history"]["error"]
        assert "No space left on device" in server.log.read_text()
        seq = full["seq"]
        wait_for(lambda: status(server.url)["seq"] >= seq + 4, what="live goes on")  # from memory
        before = journaled(node)
        time.sleep(1.5)  # a journal's append (every second) or two on the full disk
        assert set(journaled(node)) >= set(before)  # nothing already written was lost
        filler.unlink()
        wait_for(lambda: status(server.url)["history"]["error"] is None, what="writing again")
        assert "writing again" in server.log.read_text()
    finally:
        server.kill()
    assert "Traceback" not in (tmp_path / "live.log").read_text()


def test_a_day_of_history_is_served_as_the_same_plot_data_as_its_recording(agent, tmp_path: Path) -> None:
    """24 h of synthetic segments (the project's writer, via `rezgen sample` split at 4 h boundaries) in the data dir
    of a running server: a range within them is exactly what the same range of the unsplit recording gives, and
    the last 24 h reach back into them."""
    from rezgen.live.segments import merge_streams
    from rezgen.pages.catalog import catalog_plot, metric_catalog
    from rezgen.plotdata.plots import TimeRange, plot_data
    from rezgen.recording.reader import open_recording
    from rezgen.synthetic.sample import generate_sample

    proc, _ = agent
    data = tmp_path / "data"
    node = node_dir(data, proc)
    node.mkdir(parents=True)
    day = 86_400
    start = (time.time_ns() // 10**9 - day - 900) * 10**9  # ends a quarter of an hour ago
    whole = tmp_path / "day.parquet"
    generate_sample(whole, duration_s=day, cpus=2, interval_ms=10_000, start_ns=start, seed=3)
    stamps = pq.read_table(whole, columns=["timestamp"]).column(0).to_numpy().astype(np.int64)
    cuts = [start + k * 4 * 3600 * 10**9 for k in range(7)]
    for lo, hi in itertools.pairwise(cuts):
        rows = stamps[(stamps >= lo) & (stamps < hi)] if hi != cuts[-1] else stamps[stamps >= lo]
        merge_streams([[whole]], node / segment_file_name(int(rows[0]), int(rows[-1])), int(rows[0]), int(rows[-1]))
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in node.glob("*.parquet")) == len(stamps)
    server = serve(proc, data, tmp_path / "live.log", "--retention", "5m", flush_s=None, interval="1s")
    try:
        wait_for(lambda: status(server.url)["agents"][0]["snapshots"] >= 2)
        metric = "cpu_usage"
        frm, to = (start + 3 * 3600 * 10**9) // 10**6, (start + 9 * 3600 * 10**9) // 10**6  # across a cut
        text = httpx.get(server.url + f"data/_/metrics/{metric}.js?from={frm}&to={to}", timeout=300).text
        served_payload = json.loads(text[text.index(",") + 1 : text.rindex(")")])
        span = TimeRange(served_payload["range"]["start"] * 10**6, served_payload["range"]["end"] * 10**6,
                         served_payload["range"]["step"] * 10**6)
        recording = open_recording(whole)
        entry = next(m for m in metric_catalog(recording.store, recording.footer.describe) if m["name"] == metric)
        expected = plot_data(recording.store, catalog_plot(entry), span)
        assert expected is not None and served_payload["plot"]["levels"] == json.loads(json.dumps(expected["levels"]))
        assert served_payload["plot"]["names"] == expected["names"]
        # The last 24 h: from the oldest segment to the live points.
        text = httpx.get(server.url + f"data/_/metrics/{metric}.js?range=24h", timeout=300).text
        last_day = json.loads(text[text.index(",") + 1 : text.rindex(")")])
        assert last_day["range"]["start"] <= (start + 3600 * 10**9) // 10**6
        assert last_day["range"]["end"] >= status(server.url)["newest_ms"] - 2000
        coarse = last_day["plot"]["levels"][0]
        early = [v for row in coarse["values"] for t, v in zip(coarse["t"], row)
                 if t < cuts[1] // 10**6 and v is not None]
        assert early
    finally:
        server.kill()


def test_build_of_a_data_dir_over_a_range_equals_the_build_of_those_rows(tmp_path: Path) -> None:
    import subprocess as sp
    import sys

    from rezgen.live.segments import merge_streams
    from rezgen.synthetic.sample import generate_sample

    whole = tmp_path / "whole.parquet"
    start = 1_796_000_000 * 10**9
    generate_sample(whole, duration_s=1800, cpus=2, interval_ms=1000, start_ns=start, seed=5)
    data = tmp_path / "data" / "host-a"
    data.mkdir(parents=True)
    stamps = pq.read_table(whole, columns=["timestamp"]).column(0).to_numpy().astype(np.int64)
    for lo in range(0, len(stamps), 600):
        rows = stamps[lo : lo + 600]
        merge_streams([[whole]], data / segment_file_name(int(rows[0]), int(rows[-1])), int(rows[0]), int(rows[-1]))
    (data / "junk.parquet").write_bytes(b"PAR1 not really PAR1")  # skipped with a warning
    lo_ns, hi_ns = start + 500 * 10**9, start + 1300 * 10**9
    # The same rows, cut with plain pyarrow.
    table = pq.read_table(whole)
    mask = pa.array((stamps >= lo_ns) & (stamps <= hi_ns))
    cut = tmp_path / "data.parquet"
    pq.write_table(table.filter(mask), cut)
    runs = []
    for args in ([str(tmp_path / "data"), "--start", str(lo_ns / 1e9), "--end", str(hi_ns / 1e9)], [str(cut)]):
        out = tmp_path / f"site-{len(runs)}"
        done = sp.run([sys.executable, "-m", "rezgen", "build", *args, "-o", str(out), "-q"], capture_output=True,
                      text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append((out, done.stderr))
    assert "junk.parquet" in runs[0][1]
    first = sorted(p.relative_to(runs[0][0]) for p in (runs[0][0] / "data").rglob("*.js"))
    assert first == sorted(p.relative_to(runs[1][0]) for p in (runs[1][0] / "data").rglob("*.js")) and first
    for rel in first:
        assert (runs[0][0] / rel).read_bytes() == (runs[1][0] / rel).read_bytes(), rel
