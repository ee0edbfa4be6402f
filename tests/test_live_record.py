"""`serve --live ... --record F`: what the agents sent ends up in F, whatever the number of agents and however the
server is stopped (Ctrl-C, SIGTERM, or kill -9 and a restart that recovers the segments).

Real processes on 127.0.0.1: `rezgen replay` agents and `rezgen serve --live`. Expectations come from the replayed
recordings (plain pyarrow) shifted by each replay's clock offset, and from the server's own snapshot counts after
the agents have been stopped from answering; the written file is read back with plain pyarrow and with rezgen.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from processes import wait_for
from shared import shared_recording

from rezgen.agent.pieces import Entry, Snapshot
from rezgen.live.record import LiveRecorder
from rezgen.recording.reader import open_recording
from rezgen.store.histogram import Layout
from rezgen.store.model import SeriesKey

READY = re.compile(r"at (http://127\.0\.0\.1:(\d+)/)")


class Proc:
    """A rezgen subprocess; `lines` is everything it printed to stdout so far."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None):
        self.log = log
        with open(log, "a") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-m", "rezgen", *args], stdout=subprocess.PIPE,
                                         stderr=stderr, text=True, env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self._pending = b""
        self.url = ""
        deadline = time.monotonic() + 60
        while not self.url and time.monotonic() < deadline:
            line = self.readline(deadline - time.monotonic())
            match = READY.search(line)
            if match:
                self.url = match.group(1)
            elif not line and self.proc.poll() is not None:
                break
        if not self.url:
            self.kill()
            raise AssertionError(f"{args[0]} did not start: {self.lines!r} {log.read_text()}")

    def readline(self, timeout: float) -> str:
        """The next line, waiting up to `timeout` s. Read from the pipe itself: lines that arrive together would
        otherwise sit in the file object's buffer, unseen by select()."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + max(timeout, 0)
        while b"\n" not in self._pending:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(self.proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                return ""
            self._pending += chunk
        raw, _, self._pending = self._pending.partition(b"\n")
        line = raw.decode() + "\n"
        self.lines.append(line)
        return line

    def finish(self, sig: int, timeout: float = 120) -> int:
        """Send `sig` and wait for the exit; the rest of stdout lands in `lines`."""
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=timeout)
        self.lines += (self._pending.decode() + out).splitlines(keepends=True)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)


def status(server: str) -> dict:
    return httpx.get(server + "api/status", timeout=10).json()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[tuple[Proc, Path]]]:
    """Two replayed agents with different recordings (so different columns), as (process, recording)."""
    started: list[tuple[Proc, Path]] = []
    try:
        for name in ("demo.parquet", "AB_base.parquet"):
            recording = shared_recording(name)
            started.append((Proc(["replay", str(recording), "--port", "0"], tmp_path / f"{name}.log"), recording))
        yield started
    finally:
        for proc, _ in started:
            proc.kill()


def node_of(url: str) -> str:
    return url.split("//")[1].rstrip("/")


def served(agent: Proc, recording: Path) -> np.ndarray:
    """Every timestamp the replay can serve in its first pass: the recording's, shifted by its clock offset."""
    offset = httpx.get(agent.url + "_replay/stats").json()["offset_ns"]
    stamps = pq.read_table(recording, columns=["timestamp"]).column(0).to_numpy().astype(np.int64)
    return stamps + offset


def node_rows(table: pa.Table, node: str) -> np.ndarray:
    """Timestamps of the rows where any column of `node` has a value."""
    present = np.zeros(table.num_rows, dtype=bool)
    for i, field in enumerate(table.schema):
        if (field.metadata or {}).get(b"node") == node.encode():
            present |= table.column(i).is_valid().to_numpy(zero_copy_only=False)
    return table.column("timestamp").to_numpy().astype(np.int64)[present]


def freeze(server: str, agents: list[tuple[Proc, Path]]) -> dict[str, int]:
    """Make every agent answer errors, wait until the server noticed, and return its snapshot count per node:
    from then on nothing more arrives, so these are exactly the snapshots the file must hold."""
    for agent, _ in agents:
        assert httpx.post(agent.url + "_replay/fault", params={"mode": "error"}).status_code == 200
    done = wait_for(lambda: (s := status(server)) and all(a["state"] != "connected" for a in s["agents"]) and s)
    return {node_of(a["url"]): a["snapshots"] for a in done["agents"]}


def check_recording(target: Path, agents: list[tuple[Proc, Path]], counts: dict[str, int]) -> None:
    table = pq.read_table(target)
    stamps = table.column("timestamp").to_numpy().astype(np.int64)
    assert (np.diff(stamps) > 0).all()
    union: set[int] = set()
    for agent, recording in agents:
        node = node_of(agent.url)
        got = node_rows(table, node)
        # Rows the replay served (a busy machine may poll past one), as many as the server counted: none lost.
        assert len(got) == counts[node] >= 4
        assert set(got.tolist()) <= set(served(agent, recording).tolist())
        union |= set(got.tolist())
    assert sorted(union) == stamps.tolist()  # one row per distinct timestamp, no empty rows
    recording = open_recording(target)
    assert recording.rows == len(stamps) and not recording.warnings
    assert {c.meta.key.label("node") for c in recording.columns} == {node_of(a.url) for a, _ in agents}
    inspected = subprocess.run([sys.executable, "-m", "rezgen", "inspect", str(target), "--json"],
                               capture_output=True, text=True, timeout=120)
    assert inspected.returncode == 0, inspected.stderr
    info = json.loads(inspected.stdout)
    assert info["rows"] == len(stamps)
    assert not target.with_name(target.name + ".parts").exists()
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}")] == []


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_two_agents_are_recorded_whole_on_a_clean_stop(agents, tmp_path: Path, sig: int) -> None:
    target = tmp_path / "session.parquet"
    urls = [a.url for a, _ in agents]
    server = Proc(["serve", "--live", urls[0], "--live", urls[1], "--port", "0", "--interval", "500ms",
                   "--record", str(target)], tmp_path / "live.log")
    try:
        wait_for(lambda: all(a["snapshots"] >= 4 for a in status(server.url)["agents"]))
        counts = freeze(server.url, agents)
        code = server.finish(sig)
    finally:
        server.kill()
    assert code in (0, -sig), (code, server.log.read_text())
    assert "Traceback" not in server.log.read_text()
    assert any(f"recorded {sum(counts.values())} snapshots" in line for line in server.lines), server.lines
    check_recording(target, agents, counts)
    if sig == signal.SIGINT:  # and it builds
        built = subprocess.run([sys.executable, "-m", "rezgen", "build", str(target), "-o", str(tmp_path / "site"),
                                "-q"], capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stderr


@pytest.mark.live
@pytest.mark.slow
def test_a_killed_recording_is_recovered_at_the_next_start(agents, tmp_path: Path) -> None:
    target = tmp_path / "session.parquet"
    parts = tmp_path / "session.parquet.parts"
    urls = [a.url for a, _ in agents]
    args = ["serve", "--live", urls[0], "--live", urls[1], "--port", "0", "--interval", "500ms", "--record",
            str(target)]
    rotation = 2.0
    server = Proc(args, tmp_path / "live.log", env={"REZGEN_RECORD_SEGMENT_S": str(rotation)})
    try:
        # Two rotations per agent are on disk, and a few snapshots more are in memory only.
        wait_for(lambda: parts.is_dir() and len(list(parts.glob("*.parquet"))) >= 4)
        seen = status(server.url)["seq"]
        wait_for(lambda: status(server.url)["seq"] >= seen + 2)
        newest_ns = status(server.url)["newest_ms"] * 1_000_000
    finally:
        server.kill()  # SIGKILL: no clean-up of any kind
    assert not target.exists()
    # Independently: the complete segments left behind, read with pyarrow.
    segments = [pq.read_table(p) for p in sorted(parts.glob("*.parquet"))]
    expected: dict[str, set[int]] = {}
    for segment in segments:
        for agent, _ in agents:
            expected.setdefault(node_of(agent.url), set()).update(node_rows(segment, node_of(agent.url)).tolist())
    assert not list(tmp_path.rglob("*.npz"))
    # The loss is at most the last rotation period (plus one poll and the time a segment takes to write).
    assert max(max(v) for v in expected.values()) >= newest_ns - (rotation + 1.5) * 1e9

    again = Proc(args, tmp_path / "live2.log")
    try:
        assert any("recovered" in line and str(target) in line for line in again.lines), again.lines
        recovered = pq.read_table(target)  # written before the server started serving
        for node, stamps in expected.items():
            assert node_rows(recovered, node).tolist() == sorted(stamps)
        wait_for(lambda: all(a["snapshots"] >= 2 for a in status(again.url)["agents"]))
        counts = freeze(again.url, agents)
        assert again.finish(signal.SIGINT) in (0, -signal.SIGINT)
    finally:
        again.kill()
    # The new session continued the recovered one: the final file holds both.
    final = pq.read_table(target)
    for agent, recording in agents:
        node = node_of(agent.url)
        got = node_rows(final, node)
        assert set(expected[node]) <= set(got.tolist())
        assert len(got) == len(expected[node]) + counts[node]
        assert set(got.tolist()) <= set(served(agent, recording).tolist())
    assert not parts.exists()


# --- the recorder on its own: exact duplicate timestamps across agents, columns that come and go -----------------

def _snapshot(ts: int, counter: int, histogram: list[int] | None = None) -> Snapshot:
    counters = [Entry("requests", SeriesKey("requests"), counter, unit="requests")]
    histograms = [] if histogram is None else \
        [Entry("latency", SeriesKey("latency"), np.array(histogram, dtype=np.uint64), Layout(0, 2))]
    return Snapshot(2, ts, 1000, {}, counters, [], histograms)


def test_equal_timestamps_of_two_agents_share_a_row(tmp_path: Path) -> None:
    target = tmp_path / "r.parquet"
    recorder = LiveRecorder(target, 1000, {"a": "ha", "b": "hb"}, segment_s=3600)
    recorder.add("a", _snapshot(1_000, 5))
    recorder.add("b", _snapshot(1_000, 7, [1, 2, 3]))
    recorder.add("b", _snapshot(1_000, 8))  # not later than b's last: dropped
    recorder.add("a", _snapshot(3_000, 6))
    recorder.rotate()  # a segment boundary between b's two rows
    recorder.add("b", _snapshot(2_000, 9, [2, 2, 3]))
    recorder.add("a", _snapshot(4_000, 8, [0, 0, 1]))  # a histogram appears in a later segment
    assert recorder.close() == 4
    table = pq.read_table(target)
    names = [f.name for f in table.schema]
    assert names == ["timestamp", "duration", "ha::requests", "hb::requests", "ha::latency:buckets",
                     "hb::latency:buckets"]
    assert table.to_pydict() == {
        "timestamp": [1_000, 2_000, 3_000, 4_000], "duration": [1000] * 4,
        "ha::requests": [5, None, 6, 8], "hb::requests": [7, 9, None, None],
        "ha::latency:buckets": [None, None, None, [0, 0, 1]], "hb::latency:buckets": [[1, 2, 3], [2, 2, 3], None, None],
    }
    assert [f.metadata[b"node"] for f in list(table.schema)[2:]] == [b"ha", b"hb", b"ha", b"hb"]
    assert not (tmp_path / "r.parquet.parts").exists()
