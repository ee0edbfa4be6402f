"""`--remote-write`: `rezgen forward` and `rezgen serve --live` send what `rezgen replay` serves to a real
VictoriaMetrics and a real Prometheus; what they hold is checked sample by sample against the recording
(tests/remote_expect.py), through a TSDB outage longer than the queue bound, and against a TSDB that refuses.
"""

from __future__ import annotations

import bisect
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from processes import start, stop, wait_for
from prometheus_oracle import free_port
from remote_expect import Expected, count
from shared import shared_recording
from tsdb import Prometheus, Receiver, VictoriaMetrics, by_name

pytestmark = [pytest.mark.live, pytest.mark.oracle, pytest.mark.slow]
INTERVAL = "500ms"  # twice per replayed row (1 s apart): every row is ingested once
RECEIVERS = [pytest.param(cls, id=cls.binary, marks=pytest.mark.skipif(not cls.available(), reason=f"no {cls.binary}"))
             for cls in (VictoriaMetrics, Prometheus)]


@pytest.fixture
def recording() -> Path:
    return shared_recording("demo.parquet")


@pytest.fixture
def agent(recording: Path, tmp_path: Path) -> Iterator[str]:
    proc, url = start(["replay", str(recording), "--port", "0"], tmp_path / "replay.log")
    yield url
    stop(proc)


def node(agent: str) -> str:
    return agent.removeprefix("http://").rstrip("/")


def forwarding(agent: str, target: str, log: Path, *extra: str) -> subprocess.Popen:
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "rezgen", "forward", "--live", agent, "--remote-write", target,
                                 "--interval", INTERVAL, *extra], stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("forwarding 1 agent"), (line, log.read_text())
    return proc


def settled(read: Callable[[], dict], timeout: float = 15.0) -> dict:
    """What a TSDB holds once it stops changing: a series the last writes created becomes searchable a moment
    later (VictoriaMetrics indexes new series in the background)."""
    previous, deadline = read(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1.5)
        current = read()
        if current == previous:
            return current
        previous = current
    return previous


def stamps_of(samples: dict) -> list[int]:
    return sorted({ms for series in samples.values() for points in series.values() for ms in points})


def expected_for(recording: Path, agent: str, external: dict[str, str] | None = None) -> Expected:
    offset = httpx.get(agent + "_replay/stats").json()["offset_ns"]
    return Expected(recording, offset, node(agent), external or {})


def differences(got: dict, want: dict, limit: int = 10) -> list[str]:
    out = []
    for name in sorted(set(got) | set(want)):
        for labels in sorted(set(got.get(name, {})) | set(want.get(name, {}))):
            a, b = got.get(name, {}).get(labels, {}), want.get(name, {}).get(labels, {})
            if a != b:
                extra = {t: v for t, v in a.items() if b.get(t) != v}
                missing = {t: v for t, v in b.items() if a.get(t) != v}
                out.append(f"{name}{dict(labels)}: TSDB has {extra}, expected {missing}")
                if len(out) >= limit:
                    return out
    return out


@pytest.mark.parametrize("receiver_class", RECEIVERS)
def test_the_tsdb_holds_every_sample_the_agent_served(receiver_class: type[Receiver], agent: str, recording: Path,
                                                      tmp_path: Path) -> None:
    with receiver_class(tmp_path / "tsdb") as tsdb:
        proc = forwarding(agent, tsdb.write_url, tmp_path / "forward.log", "--external-label", "cluster=test")
        try:
            wait_for(lambda: len(stamps_of(by_name(tsdb.samples(f'{{node="{node(agent)}"}}')))) >= 5,
                     timeout=60, every=1.0, what="five snapshots in the TSDB")
        finally:
            stop(proc)
        got = settled(lambda: by_name(tsdb.samples(f'{{node="{node(agent)}"}}')))
    stamps = stamps_of(got)
    expected = expected_for(recording, agent, {"cluster": "test"})
    rows = [expected.row_of[ms] for ms in stamps]
    assert rows == list(range(rows[0], rows[0] + len(rows))), "every replayed row once"
    want = expected.samples(stamps)
    assert {"cpu_usage", "syscall_latency_bucket", "syscall_latency_count", "syscall_latency"} <= set(want)
    assert any(dict(labels).get("quantile") == "0.9999" for labels in want["syscall_latency"])
    assert differences(got, want) == []


def test_an_outage_longer_than_the_queue_loses_only_the_oldest_and_counts_them(agent: str, recording: Path,
                                                                                tmp_path: Path) -> None:
    """VictoriaMetrics is killed for 30 s while the queue holds 10 s: when it is back, the TSDB holds everything
    but the data dropped from the full queue, and `dropped` in /api/status is exactly those samples."""
    tsdb = VictoriaMetrics(tmp_path / "tsdb")
    tsdb.start()
    proc, server = start(["serve", "--live", agent, "--port", "0", "--interval", INTERVAL, "--remote-write",
                          tsdb.write_url, "--remote-write-queue", "10s"], tmp_path / "serve.log")
    try:
        def target() -> dict:
            return httpx.get(server + "api/status").json()["remote_write"][0]

        wait_for(lambda: target()["sent"] > 0, timeout=60, what="the first samples sent")
        tsdb.stop()
        down = time.monotonic()
        wait_for(lambda: not target()["connected"], timeout=30, what="the target seen down")
        time.sleep(max(0.0, 30 - (time.monotonic() - down)))
        during = target()
        assert during["dropped"] > 0 and during["lag_s"] >= 9
        tsdb.start()
        wait_for(lambda: (t := target())["connected"] and t["queued"] == 0 and t["sent"] > during["sent"],
                 timeout=60, every=0.5, what="the queue sent after the outage")
        time.sleep(2)
        # What the server ingested: its own window, every raw counter sample (rezgen's Prometheus API).
        result = httpx.get(server + "api/v1/query", params={"query": "cpu_usage[1h]"}).json()["data"]["result"]
        final = target()
    finally:
        stop(proc)
    expected = expected_for(recording, agent, [])
    # The API's times are seconds with ms decimals; the TSDB's are the agent's ns stamps floored to ms.
    stamps = sorted(expected.row_of)

    def stamp(t: str) -> int:
        i = bisect.bisect_left(stamps, float(t) * 1000 - 2)
        assert abs(stamps[i] - float(t) * 1000) <= 2
        return stamps[i]

    ingested = sorted({stamp(t) for series in result for t, _ in series["values"]})
    got = by_name(tsdb.samples(f'{{node="{node(agent)}"}}'))
    tsdb.stop()
    # What was ingested after the query is left out (the server went on until stopped).
    got = {name: {labels: {t: v for t, v in points.items() if t <= ingested[-1]} for labels, points in series.items()}
           for name, series in got.items()}
    held = set(stamps_of(got))
    assert held <= set(ingested)
    missing = [ms for ms in ingested if ms not in held]
    assert missing, "the outage outlasted the queue: something was dropped"
    first, last = ingested.index(missing[0]), ingested.index(missing[-1])
    assert missing == ingested[first:last + 1], "only one run of the oldest data is lost"
    assert 15 <= len(missing) <= 25, "30 s down, 10 s kept: about 20 s lost"
    want = expected.samples(ingested)
    kept = {name: {labels: {t: v for t, v in points.items() if t in held} for labels, points in series.items()}
            for name, series in want.items()}
    kept = {name: {labels: points for labels, points in series.items() if points} for name, series in kept.items()}
    assert differences(got, kept) == [], "nothing lost within the bound"
    assert final["dropped"] == count(want, set(missing))
    assert final["rejected"] == 0


def test_a_tsdb_that_refuses_is_told_once_and_not_retried(agent: str, tmp_path: Path) -> None:
    """Prometheus without its receiver answers 4xx to every write: the data is dropped as rejected, the server's
    own message is logged once, and the requests keep pace with the data (no retry storm)."""
    with Prometheus(tmp_path / "tsdb", enable_receiver=False) as tsdb:
        proc, server = start(["serve", "--live", agent, "--port", "0", "--interval", INTERVAL, "--remote-write",
                              tsdb.write_url], tmp_path / "serve.log")
        try:
            def target() -> dict:
                return httpx.get(server + "api/status").json()["remote_write"][0]

            wait_for(lambda: target()["rejected"] > 0, timeout=60, what="a refused write")
            time.sleep(5)
            final = target()
            snapshots = httpx.get(server + "api/status").json()["agents"][0]["snapshots"]
        finally:
            stop(proc)
    assert final["connected"] and final["sent"] == 0 and final["dropped"] == 0 and final["queued"] == 0
    assert "HTTP 4" in final["error"] and "remote write receiver" in final["error"]
    assert final["requests"] <= snapshots, "one request per batch of data, none repeated"
    log = (tmp_path / "serve.log").read_text()
    assert log.count("not retried") == 1, log


@pytest.mark.browser
def test_the_live_page_shows_each_target_with_its_queue(agent: str, tmp_path: Path) -> None:
    from browser import launched

    with VictoriaMetrics(tmp_path / "tsdb") as tsdb:
        down = f"http://127.0.0.1:{free_port()}/api/v1/write"  # nothing listens there
        proc, server = start(["serve", "--live", agent, "--port", "0", "--interval", INTERVAL, "--remote-write",
                              tsdb.write_url, "--remote-write", down], tmp_path / "serve.log")
        try:
            with launched() as browser:
                page = browser.new_page()
                page.goto(server)
                line = page.locator("#live-remote-write")
                line.wait_for(timeout=30_000)
                wait_for(lambda: "unreachable" in line.inner_text() and "samples queued" in line.inner_text(),
                         timeout=30, what="both targets on the page")
                page.screenshot(path=str(tmp_path / "remote-write.png"))
                text = line.inner_text()
        finally:
            stop(proc)
    good, bad = text.splitlines()
    assert good.startswith(f"Remote write {tsdb.write_url}: connected · lag ")
    assert bad.startswith(f"Remote write {down}: unreachable") and "connection refused" in bad


@pytest.mark.parametrize(("args", "words"), [
    (["forward", "--live", "127.0.0.1:1"], ["--remote-write"]),
    (["forward", "--live", "127.0.0.1:1", "--remote-write", "http://127.0.0.1:2/", "--external-label", "x"],
     ["--external-label", "NAME=VALUE"]),
    (["forward", "--live", "127.0.0.1:1", "--remote-write", "http://127.0.0.1:2/", "--histogram-grouping-power", "4"],
     ["--histogram-grouping-power"]),
    (["serve", str(shared_recording("demo.parquet")), "--remote-write", "http://127.0.0.1:2/"], ["needs --live"]),
])
def test_bad_remote_write_options_are_one_line(args: list[str], words: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "rezgen", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rezgen: ") and all(w in lines[0] for w in words), done.stderr
