"""`rezgen serve --live`: a real live server on 127.0.0.1 fed by `rezgen replay`, a faithful fake agent.

Expected values come from the recording itself (plain pyarrow + numpy), shifted by the replay's clock offset,
which the test learns by decoding one snapshot with plain msgpack.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgpack
import numpy as np
import pyarrow.parquet as pq
import pytest
from processes import start, stop, wait_for
from shared import shared_recording

pytestmark = pytest.mark.live  # every test runs `rezgen replay` agents and a live server in real time
INTERVAL_MS = 500  # twice per replayed row (1 s apart), so the server sees every row


@pytest.fixture
def recording() -> Path:
    return shared_recording("demo.parquet")


@pytest.fixture
def agent(recording: Path, tmp_path: Path) -> Iterator[tuple[str, list]]:
    """A replayed agent; the list holds the process so a test can kill and restart it on the same port."""
    proc, url = start(["replay", str(recording), "--port", "0"], tmp_path / "replay.log")
    holder = [proc]
    yield url, holder
    stop(holder[0])


@pytest.fixture
def live(agent: tuple[str, list], tmp_path: Path) -> Iterator[str]:
    url, _ = agent
    proc, server = start(["serve", "--live", url, "--port", "0", "--interval", f"{INTERVAL_MS}ms"],
                         tmp_path / "live.log")
    yield server
    stop(proc)


def status(server: str) -> dict:
    return httpx.get(server + "api/status").json()


def points(server: str, count: int, since: int | None = None, headers: dict | None = None,
           timeout: float = 30.0) -> list[tuple[int, dict]]:
    """The first `count` `points` events of the overview's stream as (id, data)."""
    out: list[tuple[int, dict]] = []
    params = {"section": "overview"} | ({"since": str(since)} if since is not None else {})
    event, ident = None, None
    with httpx.stream("GET", server + "api/stream", params=params, headers=headers or {}, timeout=timeout) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                ident = int(line.split(":", 1)[1])
            elif line.startswith("data:") and event == "points":
                out.append((ident, json.loads(line.split(":", 1)[1])))
                if len(out) == count:
                    return out
    return out


def clock_offset(agent_url: str, recording: Path) -> int:
    """The replay's systemtime minus the recording's timestamp of the row it serves (plain msgpack decode)."""
    snapshot = msgpack.unpackb(httpx.get(agent_url + "metrics/binary").content, strict_map_key=False)
    (secs, nanos), counters = snapshot[0], snapshot[3]
    served = secs * 1_000_000_000 + nanos
    table = pq.ParquetFile(recording).read()
    name, value = next((c[0], c[1]) for c in counters if c[2].get("metric") == "cpu_usage")
    column = next(i for i, f in enumerate(table.schema) if f.name == name or f.name == f"{name}")
    row = int(np.flatnonzero(table.column(column).to_numpy() == value)[0])
    return served - int(table.column(0)[row].as_py())


def expected_busy(recording: Path, offset: int, t_ms: int) -> float:
    """sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9 at t, from the raw columns."""
    pf = pq.ParquetFile(recording)
    table = pf.read()
    stamps = table.column(0).to_numpy().astype(np.int64) + offset
    last = int(np.searchsorted(stamps, t_ms * 1_000_000, side="right")) - 1
    assert last >= 1
    total = 0.0
    cores = 0.0
    for i, field in enumerate(pf.schema_arrow):
        metric = (field.metadata or {}).get(b"metric")
        if metric == b"cpu_usage":
            v = table.column(i).to_numpy().astype(np.float64)
            dv = v[last] - v[last - 1] if v[last] >= v[last - 1] else v[last]
            total += dv / ((stamps[last] - stamps[last - 1]) / 1e9)
        elif metric == b"cpu_cores":
            cores += float(table.column(i)[last].as_py())
    return total / cores / 1e9


def test_pushed_points_equal_values_computed_from_the_recording(live: str, agent, recording: Path) -> None:
    wait_for(lambda: status(live)["seq"] >= 3)
    offset = clock_offset(agent[0], recording)
    checked = 0
    for _, data in points(live, 6):
        busy = data["plots"].get("cpu-busy")  # absent while the window holds a single sample
        for t, value in zip(busy["t"], busy["values"][0]) if busy else ():
            if value is not None:
                assert value == pytest.approx(expected_busy(recording, offset, t), rel=1e-9)
                checked += 1
    assert checked >= 3


def test_a_page_reconnecting_with_last_event_id_receives_exactly_what_it_missed(live: str) -> None:
    wait_for(lambda: status(live)["seq"] >= 2)
    (first_id, _), = points(live, 1)
    # The page is away for a few steps, counted by the server's newest sample (the steps it can compute reach
    # three quarters of a step past it), not by the wall clock: a loaded machine polls late, not less.
    wait_for(lambda: status(live)["newest_ms"] >= first_id + 3 * INTERVAL_MS)
    (_, backfill), = points(live, 1, headers={"Last-Event-ID": str(first_id)})
    step = backfill["plots"]["cpu-busy"]["t"]
    assert step[0] == first_id + INTERVAL_MS  # the very next grid step
    assert backfill["first"] == step[0] and len(step) >= 2
    assert all(b - a == step[1] - step[0] for a, b in itertools.pairwise(step))  # no step twice, none skipped


def test_the_indicator_state_follows_the_agent_and_an_outage_is_a_break(live: str, agent, recording: Path,
                                                                       tmp_path: Path) -> None:
    url, holder = agent
    wait_for(lambda: status(live)["seq"] >= 4)  # a few samples before the outage, so rates exist on both sides
    (before, _), = points(live, 1)
    holder[0].kill()  # gone at once, as a crashed agent is
    holder[0].wait(timeout=10)
    holder[0].stdout.close()
    wait_for(lambda: status(live)["agents"][0]["state"] in ("reconnecting", "disconnected"))
    # An outage the timestamps show: a hole is a gap of more than two sampling intervals (1 s rows here), and the
    # replay's clock is the wall clock (rows start up to 1 s behind it), so wait until the agent's clock is 4 s
    # past the newest sample the server holds; the restarted agent's first sample then lands past the hole's edge.
    newest_ms = status(live)["newest_ms"]
    wait_for(lambda: time.time() * 1000 >= newest_ms + 4000)
    port = url.rstrip("/").rsplit(":", 1)[1]
    holder[0], _ = start(["replay", str(recording), "--port", port], tmp_path / "replay2.log")
    wait_for(lambda: status(live)["agents"][0]["state"] == "connected", timeout=30)
    # Everything after `before`: the steps before the kill, the outage, and the first steps after the restart.
    values: list = []
    for _, data in points(live, 10, since=before, timeout=40):
        values += data["plots"].get("cpu-busy", {"values": [[]]})["values"][0]
        if None in values and values[-1] is not None:
            break
    assert None in values, "the outage must show as a break"


def data_payload(server: str, query: str) -> dict:
    """The overview's data script for `query`, as the payload it registers."""
    text = wait_for(lambda: (r := httpx.get(server + "data/_/overview.js?" + query)).status_code == 200 and r.text)
    prefix = "REZGEN.register("
    assert text.startswith(prefix)
    key, end = json.JSONDecoder().raw_decode(text, len(prefix))
    assert key == "_/overview" and text[end] == ","
    payload, _ = json.JSONDecoder().raw_decode(text, end + 1)
    return payload


def test_a_plot_without_points_yet_is_sent_empty_for_the_stream_to_fill(live: str) -> None:
    """At the window's first step a rate has one sample and no value: the plot is still in the payload, with no
    series and an empty level, so the page keeps its place (over a longer range it has its line)."""
    first = data_payload(live, "range=1h")["range"]["start"]
    payload = data_payload(live, f"from={first}&to={first}")
    plots = {p["id"]: p for g in payload["groups"] for p in g["plots"]}
    busy = plots["cpu-busy"]
    assert busy["names"] == [] and busy["levels"] == [{"bucket": 1, "t": [], "values": []}]
    assert busy["unit"] == "percentage" and busy["title"]
    wait_for(lambda: any(p["id"] == "cpu-busy" and p["names"]
                         for g in data_payload(live, "range=1h")["groups"] for p in g["plots"]))


def test_garbage_from_the_agent_never_stops_the_server(live: str, agent) -> None:
    url, _ = agent
    wait_for(lambda: status(live)["seq"] >= 2)
    httpx.post(url + "_replay/fault", params={"mode": "garbage"})
    wait_for(lambda: status(live)["agents"][0]["error"])
    assert httpx.get(live).status_code == 200
    assert httpx.get(live + "api/v1/query", params={"query": "sum(cpu_cores)"}).json()["status"] == "success"
    httpx.post(url + "_replay/fault", params={"mode": "none"})
    seq = status(live)["seq"]
    wait_for(lambda: status(live)["seq"] > seq)


def test_the_websocket_carries_the_same_updates_and_can_switch_section(live: str) -> None:
    from websockets.sync.client import connect

    wait_for(lambda: status(live)["seq"] >= 2)
    with connect(live.replace("http://", "ws://") + "ws") as socket:
        socket.send(json.dumps({"section": "overview"}))
        kinds = set()
        while "points" not in kinds:
            message = json.loads(socket.recv(timeout=20))
            kinds.add(message["type"])
            if message["type"] == "points":
                assert "cpu-busy" in message["data"]["plots"] or message["data"]["plots"] == {}
        socket.send(json.dumps({"section": "network"}))
        while True:
            message = json.loads(socket.recv(timeout=20))
            if message["type"] == "points" and message["data"]["plots"]:
                assert "bandwidth-tx" in message["data"]["plots"]
                break
        socket.send("not json")
        while (message := json.loads(socket.recv(timeout=20)))["type"] != "error":
            pass  # updates of the current subscription may come first
        assert "section" in message["data"]["error"]


def test_record_writes_a_recording_that_rezgen_builds(agent, recording: Path, tmp_path: Path) -> None:
    """What the server says it took from the agent is what the file holds. Not a count expected from the wall
    clock: a loaded machine may poll past a row of the replay, and that row is then in neither."""
    url, _ = agent
    target = tmp_path / "session.parquet"
    proc, server = start(["serve", "--live", url, "--port", "0", "--interval", f"{INTERVAL_MS}ms",
                          "--record", str(target)], tmp_path / "live.log")
    try:
        wait_for(lambda: status(server)["seq"] >= 4)
        # The agent answers errors from now on and the server has noticed: nothing more can arrive, so its count
        # of snapshots is final.
        assert httpx.post(url + "_replay/fault", params={"mode": "error"}).status_code == 200
        frozen = wait_for(lambda: (s := status(server))["agents"][0]["state"] != "connected" and s)
        taken = frozen["agents"][0]["snapshots"]
    finally:
        proc.send_signal(2)  # Ctrl+C: the recording is completed on the way out
        proc.wait(timeout=30)
        proc.stdout.close()
    assert target.is_file() and not list(tmp_path.glob(".session.parquet.*"))
    written, source = pq.ParquetFile(target).read(), pq.ParquetFile(recording).read()
    assert written.num_rows == taken >= 4  # every snapshot taken is a row: none lost
    # Every recorded cpu_usage value is a value of the same series in the source recording, row for row.
    for i, field in enumerate(written.schema):
        if (field.metadata or {}).get(b"metric") != b"cpu_usage":
            continue
        labels = {k: v for k, v in field.metadata.items() if k not in (b"metric", b"metric_type", b"unit")}
        j = next(j for j, f in enumerate(source.schema) if (f.metadata or {}).get(b"metric") == b"cpu_usage"
                 and {k: v for k, v in f.metadata.items() if k not in (b"metric", b"metric_type", b"unit")} == labels)
        got = written.column(i).to_numpy()
        rows = np.searchsorted(source.column(j).to_numpy(), got)
        assert (source.column(j).to_numpy()[rows] == got).all()
        assert (np.diff(rows) >= 1).all()  # source rows in order, none repeated
    built = subprocess.run([sys.executable, "-m", "rezgen", "build", str(target), "-o", str(tmp_path / "site"), "-q"],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr


def test_several_agents_are_told_apart_by_a_node_label(recording: Path, tmp_path: Path) -> None:
    first, url1 = start(["replay", str(recording), "--port", "0"], tmp_path / "a.log")
    second, url2 = start(["replay", str(shared_recording("AB_base.parquet")), "--port", "0"], tmp_path / "b.log")
    live_proc, server = start(["serve", "--live", url1, "--live", url2, "--port", "0"], tmp_path / "live.log")
    try:
        wait_for(lambda: status(server)["seq"] >= 4)
        result = httpx.get(server + "api/v1/query", params={"query": "sum by (node) (cpu_cores)"}).json()
        nodes = {r["metric"]["node"]: r["value"][1] for r in result["data"]["result"]}
        assert nodes == {url1.split("//")[1].rstrip("/"): "8", url2.split("//")[1].rstrip("/"): "8"}
        page = httpx.get(server).text
        assert all(node in page for node in nodes)  # the host selector lists both
    finally:
        for proc in (live_proc, first, second):
            stop(proc)


def busy_per_row(recording: Path) -> np.ndarray:
    """sum(irate(cpu_usage)) / sum(cpu_cores) / 1e9 at every row after the first, from the raw columns."""
    pf = pq.ParquetFile(recording)
    table = pf.read()
    seconds = np.diff(table.column(0).to_numpy().astype(np.int64)) / 1e9
    total, cores = np.zeros(len(seconds)), np.zeros(len(seconds))
    for i, field in enumerate(pf.schema_arrow):
        metric = (field.metadata or {}).get(b"metric")
        if metric == b"cpu_usage":
            v = table.column(i).to_numpy(zero_copy_only=False).astype(np.float64)
            total += np.nan_to_num(np.where(v[1:] >= v[:-1], v[1:] - v[:-1], v[1:]) / seconds)
        elif metric == b"cpu_cores":
            cores += np.nan_to_num(table.column(i).to_numpy(zero_copy_only=False).astype(np.float64)[1:])
    return total / cores / 1e9


@pytest.mark.slow
def test_an_agent_restart_draws_no_rate_spike(recording: Path, tmp_path: Path) -> None:
    """A restarted agent's counters begin again from the recording's first row — large values, below where the
    first run got to. PromQL's reset rule alone counts the whole new value as an increase (a CPU far above 100 %);
    rezgen starts rates afresh after a restart, so no value exceeds what the recording itself reaches."""
    ceiling = float(np.nanmax(busy_per_row(recording)))
    first, url = start(["replay", str(recording), "--port", "0"], tmp_path / "a.log")
    server_proc, server = start(["serve", "--live", url, "--port", "0", "--interval", "200ms"], tmp_path / "live.log")
    try:
        wait_for(lambda: status(server)["seq"] >= 3)  # the first run is a few rows in: its counters are higher
        stop(first)
        port = url.rstrip("/").rsplit(":", 1)[1]
        first, _ = start(["replay", str(recording), "--port", port], tmp_path / "b.log")
        wait_for(lambda: status(server)["agents"][0]["restarts"] >= 1)
        seq = status(server)["seq"]
        wait_for(lambda: status(server)["seq"] >= seq + 4)  # a few rows of the second run
        plot = httpx.get(server + "api/plot/overview/cpu-busy").json()
        values = [v for v in plot["levels"][-1]["values"][0] if v is not None]
        assert len(values) >= 4
        assert max(values) <= ceiling * (1 + 1e-9), (max(values), ceiling)
        query = httpx.get(server + "api/v1/query_range", params={
            "query": "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9", "start": plot["window"]["start"] / 1000,
            "end": plot["window"]["end"] / 1000, "step": "0.2"}).json()
        ranged = [float(v) for _, v in query["data"]["result"][0]["values"]]
        assert max(ranged) <= ceiling * (1 + 1e-9), (max(ranged), ceiling)
        log = (tmp_path / "live.log").read_text()
        assert log.count("unreachable (") == 1 and log.count("connected again after") == 1, log
    finally:
        stop(server_proc)
        stop(first)


@pytest.mark.slow
def test_a_gap_in_the_timestamps_is_a_break_without_an_outage(live: str, agent) -> None:
    """The agent's clock jumps 8 s (no poll fails, no outage is observed): every step between the two samples
    around the gap is null, on first load and in the pushed points alike (the rule comes from the timestamps)."""
    import threading

    url, _ = agent
    wait_for(lambda: status(live)["seq"] >= 3)
    pushed: list[tuple[int, dict]] = []
    done = threading.Event()

    def listen() -> None:
        try:
            for event in iter_points(live, done):
                pushed.append(event)
        finally:
            done.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    wait_for(lambda: len(pushed) >= 2)
    httpx.post(url + "_replay/clock", params={"seconds": "8"})
    seq = status(live)["seq"]
    wait_for(lambda: status(live)["seq"] >= seq + 4)
    done.set()
    thread.join(timeout=30)
    raw = httpx.get(live + "api/query", params={"metric": "cpu_cores"}).json()
    stamps = np.array([t for t, _ in raw["series"][0]["values"]])
    spacing = float(np.median(np.diff(stamps)))
    gaps = np.flatnonzero(np.diff(stamps) > 2 * spacing)
    assert len(gaps) == 1, np.diff(stamps)
    a, b = stamps[gaps[0]], stamps[gaps[0] + 1]
    plots = {p["id"]: p for g in data_payload(live, "range=5m")["groups"] for p in g["plots"]}
    level = plots["cpu-busy"]["levels"][-1]
    loaded = dict(zip(level["t"], level["values"][0]))
    inside = [t for t in loaded if a < t < b]
    assert len(inside) >= 10 and all(loaded[t] is None for t in inside), [(t - a, loaded[t]) for t in inside]
    assert any(v is not None for t, v in loaded.items() if t > b) and any(v is not None for t, v in loaded.items()
                                                                          if t < a)
    steps = {t: v for _, data in pushed if "cpu-busy" in data["plots"]
             for t, v in zip(data["plots"]["cpu-busy"]["t"], data["plots"]["cpu-busy"]["values"][0])}
    # Steps less than a step after a are pushed before b exists (the newest sample is then a); all later ones wait
    # for b and are nulls, as on first load.
    late = [t for t in steps if a + INTERVAL_MS < t < b]
    assert late and all(steps[t] is None for t in late), [(t - a, steps[t]) for t in late]


def iter_points(server: str, done) -> Iterator[tuple[int, dict]]:
    """The overview's `points` events as (id, data) until `done` is set."""
    event, ident = None, None
    with httpx.stream("GET", server + "api/stream", params={"section": "overview"}, timeout=30) as resp:
        for line in resp.iter_lines():
            if done.is_set():
                return
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                ident = int(line.split(":", 1)[1])
            elif line.startswith("data:") and event == "points":
                yield ident, json.loads(line.split(":", 1)[1])


def test_per_gpu_charts_of_a_one_gpu_agent_say_they_are_not_reported(tmp_path: Path) -> None:
    """sglang_gemma3 has one GPU: its per-GPU heatmaps never get data (the aggregate charts say it all), so after
    the first snapshots they say so instead of "Waiting for data…"; the aggregate charts have their line."""
    recording = shared_recording("sglang_gemma3.parquet")
    gpus = {f.metadata[b"id"] for f in pq.ParquetFile(recording).schema_arrow
            if (f.metadata or {}).get(b"metric") == b"gpu_utilization"}
    assert len(gpus) == 1
    agent_proc, url = start(["replay", str(recording), "--port", "0"], tmp_path / "replay.log")
    proc, server = start(["serve", "--live", url, "--port", "0", "--interval", "200ms"], tmp_path / "live.log")
    try:
        def gpu_plots() -> dict | None:
            response = httpx.get(server + "data/_/gpu.js?range=15m")
            if response.status_code != 200:
                return None
            _, end = json.JSONDecoder().raw_decode(response.text, len("REZGEN.register("))
            payload, _ = json.JSONDecoder().raw_decode(response.text, end + 1)
            plots = {p["id"]: p for g in payload["groups"] for p in g["plots"]}
            filled = all(p["names"] for i, p in plots.items() if not i.endswith("-per-gpu"))
            return plots if filled else None  # the rates have their second sample
        plots = wait_for(gpu_plots)
        per_gpu = [p for i, p in plots.items() if i.endswith("-per-gpu") and p["kind"] == "heatmap"]
        assert per_gpu and all(p["missing"].startswith("Not reported by this agent") for p in per_gpu)
        assert all("missing" not in p and p["names"] for i, p in plots.items() if not i.endswith("-per-gpu"))
    finally:
        stop(proc)
        stop(agent_proc)
