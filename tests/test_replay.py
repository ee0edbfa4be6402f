"""`rezgen replay RECORDING`: a recording served as a live Rezolus agent, by a real process on 127.0.0.1.

What is served is checked against the recording read independently with pyarrow (protocol §3.3: one node's
non-null cells, names without `<node>::`/`:buckets`, metadata without recorder/combiner keys), and against the
agent's HTTP surface (protocol §1.1): banner, gzip only when asked, 404/405, optional documents.
"""

from __future__ import annotations

import gzip
import json
import re
import select
import socket
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from shared import shared_recording

from rezgen.agent.schema import SchemaCache
from rezgen.agent.snapshot import Snapshot, SnapshotError, decode
from rezgen.synthetic.recorded import RecordedAgent, ReplayError
from rezgen.synthetic.sample import generate_sample

READY = re.compile(r"as a Rezolus agent at (http://127\.0\.0\.1:(\d+)/)")
DROPPED_KEYS = ("metric_type", "endpoint", "node", "source")


class ReplayProcess:
    """`rezgen replay` in a child process; `kill()` + `start()` is an agent crash and restart on the same port."""

    def __init__(self, recording: Path, *args: str, log: Path):
        self.recording, self.args, self.log = recording, args, log
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> ReplayProcess:
        with open(self.log, "a") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-m", "rezgen", "replay", str(self.recording), "--port",
                                          str(self.port), *self.args], stdout=subprocess.PIPE, stderr=stderr,
                                         text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        match = READY.search(line)
        if not match:
            self.stop()
            raise AssertionError(f"no ready line: {line!r}; log: {self.log.read_text()}")
        self.url, self.port = match.group(1), int(match.group(2))
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()  # type: ignore[union-attr]

    def get(self, path: str, **kwargs) -> requests.Response:
        return self._call(requests.get, path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self._call(requests.post, path, **kwargs)

    def _call(self, method, path: str, **kwargs) -> requests.Response:
        try:
            return method(self.url + path.lstrip("/"), timeout=30, **kwargs)
        except requests.ConnectionError:
            exit_code = self.proc.poll() if self.proc else None
            raise AssertionError(f"{path}: the replay process is not answering (exit code {exit_code}); log: "
                                 f"{self.log.read_text()[-2000:]!r}") from None

    def snapshot(self, schemas: SchemaCache | None = None) -> Snapshot:
        response = self.get("metrics/binary", headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200
        return decode(response.content, schemas)

    def stats(self) -> dict:
        return self.get("_replay/stats").json()

    def fault(self, mode: str, seconds: float | None = None) -> None:
        params = {"mode": mode} | ({"seconds": str(seconds)} if seconds is not None else {})
        assert self.post("_replay/fault", params=params).status_code == 200

    def step_clock(self, seconds: float) -> None:
        assert self.post("_replay/clock", params={"seconds": str(seconds)}).ok

    def vm_peak_mb(self) -> float:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def recorded_cells(path: Path, timestamp: int, node: str | None = None, source: str | None = None) -> dict:
    """{entry name: (kind, value, metadata)} of the non-null cells of one node's (or source's) columns at the row
    recorded at `timestamp`: the expectation, built straight from the Parquet file."""
    parquet = pq.ParquetFile(path)
    times = parquet.read(columns=["timestamp"]).column(0).to_pylist()
    row = times.index(timestamp)
    picked = []
    for field in parquet.schema_arrow:
        md = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        if field.name in ("timestamp", "duration") or md.get("node") != node \
                or (source is not None and md.get("source") != source):
            continue
        picked.append((field, md))
    table = parquet.read(columns=[f.name for f, _ in picked]).slice(row, 1)
    assert table.num_columns == len(picked)  # no duplicate names among one agent's columns
    cells = {}
    for (field, md), column in zip(picked, table.columns):
        value = column.to_pylist()[0]
        if value is None:
            continue
        name = field.name.split("::", 1)[1] if node is not None else field.name
        name = name.removesuffix(":buckets")
        kind = "histogram" if pa.types.is_list(field.type) else "counter" if pa.types.is_uint64(field.type) \
            else "gauge"
        cells[name] = (kind, value, {k: v for k, v in md.items() if k not in DROPPED_KEYS})
    return cells


def served_cells(snap: Snapshot) -> dict:
    out = {}
    for kind in ("counter", "gauge", "histogram"):
        for e in getattr(snap, kind + "s"):
            value = e.value.tolist() if kind == "histogram" else e.value
            out[e.name] = (kind, value, dict(e.metadata))
    return out


@pytest.fixture(scope="module")
def c16(tmp_path_factory: pytest.TempPathFactory):
    process = ReplayProcess(shared_recording("c16.parquet"), log=tmp_path_factory.mktemp("c16") / "replay.log")
    try:
        yield process.start()
    finally:
        process.stop()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.parquet"
    generate_sample(path, duration_s=19, cpus=1)  # 20 rows, one second apart
    return path


def replay(recording: Path, tmp_path: Path, *args: str) -> ReplayProcess:
    return ReplayProcess(recording, *args, log=tmp_path / "replay.log").start()


# --- what is served ---------------------------------------------------------------------------------------------

@pytest.mark.live
def test_serves_one_node_of_a_combined_recording_cell_for_cell(c16: ReplayProcess) -> None:
    snap = c16.snapshot()
    offset = c16.stats()["offset_ns"]
    expected = recorded_cells(c16.recording, snap.timestamp_ns - offset, node="rezolus")
    assert served_cells(snap) == expected
    assert len(snap.counters) > 1500 and len(snap.histograms) == 33  # the agent only: no vllm or llm-perf
    assert snap.version == 2 and snap.metadata == {"source": "rezolus", "version": "5.11.0"}
    assert snap.problems == []


@pytest.mark.live
def test_systemtime_tracks_the_wall_clock_and_repeats_within_a_row(c16: ReplayProcess) -> None:
    first = c16.snapshot()
    again = c16.snapshot()
    assert abs(first.timestamp_ns - time.time_ns()) < 2e9  # at speed 1, within a row's interval (plus slack)
    if again.timestamp_ns != first.timestamp_ns:  # crossed a row boundary; the next two are in one row
        first, again = c16.snapshot(), c16.snapshot()
    assert again.timestamp_ns == first.timestamp_ns
    time.sleep(1.2)
    later = c16.snapshot()
    assert later.timestamp_ns - first.timestamp_ns in range(int(0.9e9), int(2.6e9))


@pytest.mark.live
def test_http_surface_like_the_agent(c16: ReplayProcess) -> None:
    banner = c16.get("/")
    assert banner.text == "Rezolus 5.11.0 Agent\nFor information, see: https://rezolus.com\n"
    assert banner.headers["content-type"] == "text/plain; charset=utf-8"
    raw = c16.get("metrics/binary", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and int(raw.headers["content-length"]) == len(raw.content)
    assert raw.headers["content-type"] == "application/octet-stream"
    zipped = c16.get("metrics/binary", headers={"Accept-Encoding": "gzip"}, stream=True)
    assert zipped.headers["content-encoding"] == "gzip" and "content-length" not in zipped.headers
    body = zipped.raw.read(decode_content=False)
    assert len(body) < len(raw.content) / 3
    assert decode(gzip.decompress(body)).version == 2
    assert c16.post("metrics/binary").status_code == 405
    assert c16.get("no/such/path").status_code == 404
    as_json = json.loads(c16.get("metrics/json").text)
    assert set(as_json) == {"systemtime", "duration", "metadata", "counters", "gauges", "histograms"}
    assert as_json["histograms"][0]["value"]["config"]["grouping_power"] == 3


@pytest.mark.live
def test_systeminfo_and_descriptions_come_from_the_recording(c16: ReplayProcess) -> None:
    footer = pq.ParquetFile(c16.recording).metadata.metadata
    per_source = json.loads(footer[b"per_source_metadata"])
    assert c16.get("systeminfo").json() == per_source["rezolus"]["rezolus"]["systeminfo"]
    descriptions = c16.get("metrics/descriptions").json()
    all_descriptions = json.loads(footer[b"descriptions"])
    served = {e.key.metric for e in c16.snapshot().entries}
    assert descriptions and all(all_descriptions[k] == v for k, v in descriptions.items())
    assert set(descriptions) <= served  # not vllm's or llm-perf's


@pytest.mark.live
def test_a_recording_without_documents_answers_404_and_can_serve_v3(tmp_path: Path) -> None:
    demo = shared_recording("demo.parquet")
    process = replay(demo, tmp_path, "--format", "v3")
    try:
        assert process.get("systeminfo").status_code == 404
        assert process.get("metrics/descriptions").status_code == 404
        schemas = SchemaCache()
        snap = process.snapshot(schemas)
        assert snap.version == 3 and snap.problems == [] and [g.name for g in snap.groups] == ["default/main"]
        assert snap.groups[0].hash_ok and snap.groups[0].window is None
        expected = recorded_cells(demo, snap.timestamp_ns - process.stats()["offset_ns"])
        assert served_cells(snap) == expected and len(expected) == 278
    finally:
        process.stop()


# --- time, speed and looping ------------------------------------------------------------------------------------

def distinct(process: ReplayProcess, seconds: float) -> list[Snapshot]:
    out: list[Snapshot] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        snap = process.snapshot()
        if not out or snap.timestamp_ns != out[-1].timestamp_ns:
            out.append(snap)
        time.sleep(0.02)
    return out


@pytest.mark.live
def test_looping_continues_time_and_counters_upward(small: Path, tmp_path: Path) -> None:
    process = replay(small, tmp_path, "--speed", "10")
    try:
        seen = distinct(process, 3.0)  # 20 rows at 10 rows/s: one seam at 2 s
        assert process.stats()["loop"] >= 1
    finally:
        process.stop()
    stamps = [s.timestamp_ns for s in seen]
    assert all(b > a for a, b in pairwise(stamps))
    steps = np.diff(stamps)
    assert steps.min() > 0.9e9 and steps.max() < 8.1e9  # the recorded (jittered) 1 s rows; a busy host misses some
    for before, after in pairwise(seen):
        now = {e.key: e.value for e in after.counters}
        assert all(now[e.key] >= e.value for e in before.counters if e.key in now)


@pytest.mark.live
def test_without_looping_the_last_row_stays(small: Path, tmp_path: Path) -> None:
    process = replay(small, tmp_path, "--speed", "40", "--no-loop")
    try:
        time.sleep(1.5)
        stats = process.stats()
        stamps = {process.snapshot().timestamp_ns for _ in range(3)}
    finally:
        process.stop()
    assert (stats["loop"], stats["row"]) == (0, 19) and len(stamps) == 1


def test_a_pass_adds_the_recordings_increase_plus_one_step(small: Path) -> None:
    agent = RecordedAgent(small)
    table = pq.read_table(small)
    first, last = agent.snapshot(0), agent.snapshot(19)
    second_pass = agent.snapshot(0, loop=1)
    stamps = table.column("timestamp").to_pylist()
    assert second_pass.timestamp_ns == first.timestamp_ns + stamps[-1] - stamps[0] + 10**9  # span + one interval
    again = {e.name: e.value for e in second_pass.counters}
    assert set(again) == {e.name for e in first.counters}  # the same cells are present in every pass
    for entry in first.counters:
        values = [v for v in table.column(entry.name).to_pylist() if v is not None]
        increase = values[-1] - values[0]
        shift = max(increase + round(increase / (len(values) - 1)), 0)
        assert again[entry.name] == entry.value + shift, entry.name
    assert {e.name: e.value for e in second_pass.gauges} == {e.name: e.value for e in first.gauges}
    late = [e for e in last.counters if e.name not in again]  # a cgroup that starts mid-recording
    assert late and all(e.key.label("name") for e in late)


@pytest.mark.live
def test_speed_scales_progress_not_deltas(tmp_path: Path) -> None:
    demo = shared_recording("demo.parquet")
    process = replay(demo, tmp_path, "--speed", "10")
    try:
        seen = distinct(process, 1.5)
        start = process.snapshot()
        time.sleep(1.0)
        end = process.snapshot()
        offset = process.stats()["offset_ns"]
    finally:
        process.stop()
    recorded = set(pq.read_table(demo, columns=["timestamp"]).column(0).to_pylist())
    assert 6e9 < end.timestamp_ns - start.timestamp_ns < 14e9  # 1 s of wall time is ~10 recorded seconds
    assert len(seen) >= 8 and all(s.timestamp_ns - offset in recorded for s in seen)  # one constant shift


# --- choosing what to serve -------------------------------------------------------------------------------------

def test_an_agent_mixed_with_services_is_told_apart() -> None:
    ab = RecordedAgent(shared_recording("AB_base.parquet"))
    assert ab.node is None and ab.version == "5.11.0"
    assert not any(c.entry.startswith("0::") or "instance" in c.metadata or "source" in c.metadata
                   for c in ab.columns)
    assert len(ab.columns) == 920  # the agent's columns; cachecannon's 39 are not an agent's
    sglang = RecordedAgent(shared_recording("sglang_gemma3.parquet"))
    assert (sglang.node, sglang.nodes, len(sglang.columns)) == ("agent-4241", ["agent-4241"], 1265)
    with pytest.raises(ReplayError, match=r"no node 'other' \(nodes: agent-4241\)"):
        RecordedAgent(shared_recording("sglang_gemma3.parquet"), node="other")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rezgen", "replay", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_cli_errors_are_one_line() -> None:
    c16_path = str(shared_recording("c16.parquet"))
    result = run_cli(c16_path, "--node", "nope", "--port", "0")
    assert result.returncode == 1
    assert result.stderr == f"rezgen: {c16_path}: no node 'nope' (nodes: rezolus)\n"
    missing = run_cli("/nonexistent.parquet", "--port", "0")
    assert missing.returncode == 1 and missing.stderr == "rezgen: /nonexistent.parquet: no such file\n"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_cli(str(shared_recording("demo.parquet")), "--port", str(port))
    assert taken.returncode == 1
    assert taken.stderr == f"rezgen: cannot listen on 127.0.0.1:{port}: Address already in use\n"


# --- faults and memory ------------------------------------------------------------------------------------------

@pytest.mark.live
def test_faults_change_what_metrics_binary_answers(tmp_path: Path) -> None:
    process = replay(shared_recording("demo.parquet"), tmp_path)
    try:
        good = process.get("metrics/binary").content
        process.fault("garbage")
        garbage = process.get("metrics/binary")
        assert garbage.status_code == 200 and garbage.content[:1] == b"\xc1"
        process.fault("empty")
        empty = process.get("metrics/binary")
        assert empty.status_code == 200 and empty.content == b""
        process.fault("error")
        assert process.get("metrics/binary").status_code == 500
        process.fault("truncated")
        truncated = process.get("metrics/binary").content
        assert 0.4 * len(good) < len(truncated) < 0.6 * len(good)
        with pytest.raises(SnapshotError, match="truncated snapshot"):
            decode(truncated)
        process.fault("slow", seconds=1.0)
        started = time.monotonic()
        assert decode(process.get("metrics/binary").content).version == 2
        assert time.monotonic() - started >= 1.0
        process.fault("none")
        assert decode(process.get("metrics/binary").content).problems == []
        assert process.get("/").status_code == 200  # faults touch /metrics/binary only
        assert process.post("_replay/fault", params={"mode": "bogus"}).status_code == 400
    finally:
        process.stop()


@pytest.mark.live
def test_a_whole_pass_over_c16_stays_small(tmp_path: Path) -> None:
    process = replay(shared_recording("c16.parquet"), tmp_path, "--speed", "150", "--no-loop")
    try:
        rows = set()
        end = time.monotonic() + 4
        while time.monotonic() < end and (not rows or max(rows) < 360):
            process.get("metrics/binary", headers={"Accept-Encoding": "gzip"})
            rows.add(process.stats()["row"])
        assert max(rows) == 360  # every row group of histograms has been read
        assert process.vm_peak_mb() < 450  # decoding c16 whole would take ~580 MB of histograms alone
    finally:
        process.stop()


@pytest.mark.live
@pytest.mark.slow
def test_a_looped_real_recording_keeps_every_counter_rising_at_recorded_rates(tmp_path: Path) -> None:
    """Across the seam of a looped replay no counter or histogram bucket goes down (which a client would take for
    an agent restart) and each counter's rate stays within what the recording itself shows."""
    recording = shared_recording("sglang_gemma3.parquet")  # 155 rows, 1 s apart: a pass takes 3.1 s at speed 50
    table = pq.read_table(recording)
    stamps = table.column("timestamp").to_numpy().astype(np.int64)
    process = replay(recording, tmp_path, "--speed", "50")
    try:
        offset = process.stats()["offset_ns"]
        seam = int(stamps[-1]) + offset  # the last row of the first pass, as served
        seen: list[Snapshot] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not seen or seen[-1].timestamp_ns <= seam):
            snap = process.snapshot()  # as fast as it answers: a row lasts 20 ms
            if not seen or snap.timestamp_ns != seen[-1].timestamp_ns:
                seen.append(snap)
    finally:
        process.stop()
    before = max((s for s in seen if s.timestamp_ns <= seam), key=lambda s: s.timestamp_ns)
    after = min((s for s in seen if s.timestamp_ns > seam), key=lambda s: s.timestamp_ns)
    for a, b in pairwise(seen):
        previous = {e.key: e.value for e in a.counters}
        assert all(e.value >= previous[e.key] for e in b.counters if e.key in previous)
        buckets = {e.key: e.value for e in a.histograms}
        assert all((e.value >= buckets[e.key]).all() for e in b.histograms if e.key in buckets)
    # Each counter's rate between the two snapshots around the seam, against its per-row rates in the recording
    # (a rate over several rows is an average of rows' rates, so it lies within their range too).
    span = (after.timestamp_ns - before.timestamp_ns) / 1e9
    now = {e.name: e.value for e in after.counters}
    names = [name.split("::", 1)[-1] for name in table.column_names]  # the entry name: without `<agent>::`
    column = {name: i for i, name in enumerate(names) if names.count(name) == 1}
    checked = 0
    for entry in before.counters:
        if entry.name not in now or entry.name not in column or table.column(column[entry.name]).null_count:
            continue
        values = table.column(column[entry.name]).to_numpy(zero_copy_only=False)
        rates = np.diff(values.astype(np.float64)) / (np.diff(stamps) / 1e9)
        rate = (now[entry.name] - entry.value) / span
        assert rates.min() * 0.99 - 1e-9 <= rate <= rates.max() * 1.01 + 1e-9, (entry.name, rate, rates.min(),
                                                                              rates.max())
        checked += 1
    assert checked >= 100
