"""Live pages in a real browser: `rezgen replay` (a fake agent) feeding `rezgen serve --live`, both real processes
on 127.0.0.1, and the overview page in headless Chromium (Playwright).

Checks what the page does with pushed points: they are appended in place (same chart instances, no rebuild, no
second data request, one EventSource), the window follows the chosen range, pause buffers and resume catches up,
the connection indicator follows the agent and the server going away and coming back, and an outage is drawn as a
break (null). Skips without Playwright/Chromium or the sample recordings; fails in CI.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import chromium, launched
from shared import shared_recording
from test_replay import ReplayProcess

pytestmark = [pytest.mark.browser, pytest.mark.live]  # Chromium on pages of a live server fed by `rezgen replay`
READY = re.compile(r"serving live .* at (http://127\.0\.0\.1:(\d+)/)")
INTERVAL_MS = 500
CPU_BUSY = '.chart[data-plot-id="cpu-busy"]'
HOSTILE = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'

# Counts EventSource objects and keeps the last one reachable (tests read its URL).
INIT = """
(() => {
  const Native = window.EventSource;
  window.__sources = [];
  window.EventSource = function (url, init) {
    const es = new Native(url, init); window.__sources.push(url); return es;
  };
  window.EventSource.prototype = Native.prototype;
  Object.assign(window.EventSource, { CONNECTING: 0, OPEN: 1, CLOSED: 2 });
  localStorage.setItem('rezgen-theme', 'dark');
})();
"""


class LiveServer:
    """`rezgen serve --live URL` in a child process; `kill()` + `start()` restarts it on the same port (and data dir:
    its own, beside its log, whatever the fixture's scope)."""

    def __init__(self, agent: str, log: Path):
        self.agent, self.log, self.port, self.url = agent, log, 0, ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> LiveServer:
        with open(self.log, "a") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rezgen", "serve", "--live", self.agent, "--port", str(self.port),
                 "--interval", f"{INTERVAL_MS}ms", "--data-dir", str(self.log.with_suffix(".data"))],
                stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert self.proc.stdout is not None
        lines = []  # what it says before it listens (e.g. "recovered N rows …" after a kill)
        while not (match := READY.search(line := self.proc.stdout.readline())) and line:
            lines.append(line)
        assert match, f"the live server did not start: {lines!r}; log: {self.log.read_text()[-2000:]}"
        self.url, self.port = match.group(1), int(match.group(2))
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def wait_ready(url: str, timeout: float = 60.0) -> None:
    """Until the overview has data (the server answers 503 before the first snapshots)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "data/_/overview.js?range=5m", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError("the live server has no data for the overview")


@pytest.fixture(scope="module")
def browser():
    chromium()
    with launched() as instance:
        yield instance


def start_pair(tmp_path: Path) -> tuple[ReplayProcess, LiveServer]:
    agent = ReplayProcess(shared_recording("demo.parquet"), log=tmp_path / "replay.log").start()
    try:
        server = LiveServer(agent.url, tmp_path / "live.log").start()
        wait_ready(server.url)
    except BaseException:
        agent.stop()
        raise
    return agent, server


@contextlib.contextmanager
def replayed_page(browser, recording: Path, tmp_path: Path, path: str) -> Iterator[tuple[Any, list[str]]]:
    """`rezgen replay` of `recording` feeding `rezgen serve --live`, and a browser page opened at `path` of it: the
    page and the uncaught errors it has had."""
    agent = ReplayProcess(recording, log=tmp_path / "replay.log").start()
    server = LiveServer(agent.url, tmp_path / "live.log")
    try:
        server.start()
        wait_ready(server.url)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + path)
        yield page, errors
        context.close()
    finally:
        server.stop()
        agent.stop()


@contextlib.contextmanager
def two_agents(tmp_path: Path, first: str, second: str) -> Iterator[tuple[str, ReplayProcess, ReplayProcess]]:
    """`rezgen replay` of two recordings feeding one `rezgen serve --live` (no data dir): its URL and the agents."""
    agents = [ReplayProcess(shared_recording(name), log=tmp_path / f"{k}.log").start()
              for k, name in enumerate((first, second))]
    proc = None
    try:
        with open(tmp_path / "live.log", "w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "rezgen", "serve", "--live", agents[0].url, "--live",
                                     agents[1].url, "--port", "0", "--interval", f"{INTERVAL_MS}ms", "--no-data-dir"],
                                    stdout=subprocess.PIPE, stderr=stderr, text=True)
        match = READY.search(proc.stdout.readline())  # type: ignore[union-attr]
        assert match, (tmp_path / "live.log").read_text()
        wait_ready(match.group(1))
        yield match.group(1), agents[0], agents[1]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
            proc.stdout.close()  # type: ignore[union-attr]
        for agent in agents:
            agent.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[str]:
    """A replay and a live server shared by the tests that leave both running."""
    chromium()
    agent, server = start_pair(tmp_path_factory.mktemp("live"))
    yield server.url
    server.stop()
    agent.stop()


class Tab:
    """A page that records console errors, uncaught exceptions and the data/stream requests it makes."""

    def __init__(self, browser, url: str, width: int = 1400):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.add_init_script(INIT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.data_requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("request", lambda r: self.data_requests.append(r.url) if "/data/" in r.url else None)
        self.url = url

    def _console(self, message) -> None:
        if message.type != "error" or (message.location or {}).get("url", "").endswith("/favicon.ico"):
            return
        self.errors.append(message.text)

    def open(self, path: str = "") -> Any:
        self.page.goto(self.url + path)
        self.page.wait_for_function(
            f"() => {{ const el = document.querySelector({json.dumps(CPU_BUSY)}); return el && el.__rezgen; }}",
            timeout=30000)
        return self.page

    def series(self, selector: str = CPU_BUSY) -> list[list[Any]]:
        return self.page.evaluate(
            "sel => document.querySelector(sel).__rezgen.inst.getOption().series[0].data", selector)

    def x_window(self, selector: str = CPU_BUSY) -> tuple[float, float]:
        axis = self.page.evaluate("sel => document.querySelector(sel).__rezgen.inst.getOption().xAxis[0]", selector)
        return axis["min"], axis["max"]

    def connection(self) -> str:
        return self.page.get_attribute("#live-connection", "data-connection-state") or ""

    def wait(self, script: str, timeout: float = 30000, arg: Any = None) -> None:
        self.page.wait_for_function(script, arg=arg, timeout=timeout)

    def wait_state(self, *states: str, timeout: float = 30000) -> None:
        self.wait("states => states.includes(document.getElementById('live-connection')"
                  ".getAttribute('data-connection-state'))", timeout, list(states))

    def wait_loaded(self) -> None:
        self.wait("() => !document.body.classList.contains('live-loading')")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser) -> Iterator[Any]:
    opened: list[Tab] = []

    def make(url: str, **kwargs: Any) -> Tab:
        t = Tab(browser, url, **kwargs)
        opened.append(t)
        return t

    yield make
    for t in opened:
        t.close()


def check_points(data: list[list[Any]]) -> None:
    assert data, "no points"
    for point in data:
        assert isinstance(point, list) and len(point) == 2, point
        assert isinstance(point[0], (int, float)) and point[0] > 1e12, point  # unix ms
        assert point[1] is None or isinstance(point[1], (int, float)), point


def test_points_are_appended_in_place(live: str, tab) -> None:
    t = tab(live)
    page = t.open()
    t.wait_state("connected")
    assert page.get_attribute("body", "data-live") == "true"
    # "waiting for data" until the stream's first points, then their age.
    t.wait(r"() => /^last update \d+ s ago$/"
           r".test(document.querySelector('#live-connection .live-conn-age').textContent)")
    before = t.series()
    check_points(before)
    page.evaluate("""sel => {
        const chart = document.querySelector(sel).__rezgen;
        window.__inst = chart.inst;
        window.__renders = 0;
        const proto = Object.getPrototypeOf(chart), render = proto.render;
        proto.render = function () { window.__renders++; return render.apply(this, arguments); };
    }""", CPU_BUSY)
    t.wait("([sel, n]) => document.querySelector(sel).__rezgen.inst.getOption().series[0].data.length >= n + 4",
           arg=[CPU_BUSY, len(before)])
    after = t.series()
    check_points(after)
    assert after[-1][0] > before[-1][0]
    steps = {b[0] - a[0] for a, b in itertools.pairwise(after)}
    assert steps == {INTERVAL_MS}, f"points off the {INTERVAL_MS} ms grid: {sorted(steps)[:10]}"
    # In place: the same ECharts instance, no rebuilt chart, no second data request, one stream.
    assert page.evaluate(f"document.querySelector({json.dumps(CPU_BUSY)}).__rezgen.inst === window.__inst")
    assert page.evaluate("window.__renders") == 0
    assert len(t.data_requests) == 1 and "range=15m" in t.data_requests[0], t.data_requests
    sources = page.evaluate("window.__sources")
    assert len(sources) == 1 and re.search(r"api/stream\?section=overview&host=&since=\d+$", sources[0]), sources
    low, high = t.x_window()
    oldest = page.evaluate("REZGEN.live.st.oldest")  # a session younger than the range: the axis fits the data
    assert high - low == 15 * 60_000 or low == min(oldest, high - 5 * INTERVAL_MS)
    assert high == after[-1][0]
    assert page.is_hidden("#live-alert")
    assert t.errors == []


def test_pause_buffers_and_resume_catches_up(live: str, tab) -> None:
    t = tab(live)
    page = t.open()
    t.wait_state("connected")
    page.click("#live-toggle")
    assert page.get_attribute("#live-toggle", "aria-pressed") == "false"
    frozen = t.series()
    t.wait("() => /Resume · [3-9]\\d* new|Resume · \\d{2,} new/.test(document.getElementById('live-toggle').innerText)")
    assert t.series() == frozen, "a paused page changed its chart"
    page.click("#live-toggle")
    assert page.get_attribute("#live-toggle", "aria-pressed") == "true"
    resumed = t.series()
    assert resumed[-1][0] >= frozen[-1][0] + 3 * INTERVAL_MS  # everything buffered, applied at once
    assert page.inner_text("#live-toggle").strip() == "Live"
    assert t.errors == []


def test_range_and_refresh_controls(live: str, tab) -> None:
    t = tab(live)
    page = t.open()
    ranges = page.evaluate("Array.from(document.querySelectorAll('#live-range option')).map(o => o.value)")
    # History on disk (the data dir, on by default) reaches past the 1 h in memory: up to 24 h, or a custom range.
    assert ranges == ["5m", "15m", "1h", "6h", "24h", "custom"]
    page.select_option("#live-range", "5m")
    t.wait_loaded()
    assert any("range=5m" in url for url in t.data_requests), t.data_requests
    t.wait(f"() => {{ const x = document.querySelector({json.dumps(CPU_BUSY)}).__rezgen.inst.getOption().xAxis[0];"
           f" return x.max - x.min === 300000"
           f" || x.min === Math.min(REZGEN.live.st.oldest, x.max - 5 * {INTERVAL_MS}); }}")
    t.wait("([sel, n]) => document.querySelector(sel).__rezgen.inst.getOption().series[0].data.slice(-1)[0][0] > n",
           arg=[CPU_BUSY, t.series()[-1][0]])
    assert t.series()[0][0] >= t.x_window()[0]  # trimmed to the window
    assert len(page.evaluate("window.__sources")) == 1  # the same stream for the new range
    assert page.evaluate("localStorage.getItem('rezgen-live-range')") == "5m"

    # A slower refresh applies several steps at once.
    page.select_option("#live-refresh", "5000")
    last = t.series()[-1][0]
    t.wait("([sel, n]) => document.querySelector(sel).__rezgen.inst.getOption().series[0].data.slice(-1)[0][0] > n",
           timeout=12000, arg=[CPU_BUSY, last])
    assert t.series()[-1][0] - last >= 4 * INTERVAL_MS

    # Custom range: refused outside what the server keeps (7 days of history on disk by default; shown in the
    # page), then "since T" keeps following.
    page.select_option("#live-range", "custom")
    assert page.is_visible("#live-custom")
    newest = page.evaluate("REZGEN.live.st.newest")
    local = "ms => { const d = new Date(ms), z = n => String(n).padStart(2, '0'); return d.getFullYear() + '-' + " \
            "z(d.getMonth() + 1) + '-' + z(d.getDate()) + 'T' + z(d.getHours()) + ':' + z(d.getMinutes()) + ':' + " \
            "z(d.getSeconds()); }"
    page.fill("#live-custom input[name=from]", page.evaluate(local, newest - 8 * 86400_000))
    page.click("#live-custom button[type=submit]")
    assert "keeps" in page.inner_text("#live-custom-error")
    page.fill("#live-custom input[name=from]", page.evaluate(local, newest - 120_000))
    page.click("#live-custom button[type=submit]")
    t.wait_loaded()
    assert page.is_hidden("#live-custom")
    low, high = t.x_window()
    assert abs(low - (newest - 120_000)) < 1000
    t.wait("([sel, n]) => document.querySelector(sel).__rezgen.inst.getOption().xAxis[0].max > n", arg=[CPU_BUSY, high])
    assert t.errors == []


def test_agent_errors_are_text(live: str, tab, browser) -> None:
    """Agent errors come from the network: shown in the page, never parsed as HTML."""
    t = tab(live)
    status = {"agents": [{"url": HOSTILE, "state": "disconnected", "error": HOSTILE}], "seq": 1}
    body = f"event: status\ndata: {json.dumps(status)}\n\n"
    t.page.route("**/api/stream*", lambda route: route.fulfill(
        status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}, body=body))
    page = t.open()
    t.wait("() => !document.getElementById('live-alert').hidden")
    text = page.inner_text("#live-alert")
    assert HOSTILE in text and "disconnected" in text
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.querySelectorAll('#live-alert img').length") == 0
    t.wait_state("disconnected")  # every agent disconnected


def test_data_errors_are_shown_and_retried(live: str, tab) -> None:
    t = tab(live)
    failing = {"on": True}

    def data(route) -> None:
        if failing["on"]:
            route.fulfill(status=404, content_type="application/json",
                          body=json.dumps({"error": "no such section or no data yet"}))
        else:
            route.continue_()

    t.page.route("**/data/**", data)
    t.page.goto(live)
    t.wait("() => document.getElementById('status').classList.contains('error')")
    assert "waiting for the agent" in t.page.inner_text("#status")
    failing["on"] = False
    t.wait(f"() => {{ const el = document.querySelector({json.dumps(CPU_BUSY)}); return el && el.__rezgen; }}")
    assert t.page.inner_text("#status") == ""
    assert t.errors == [] or all("404" in e for e in t.errors), t.errors  # the failed script load itself


def test_a_plot_without_points_yet_is_drawn_when_they_arrive(live: str, tab) -> None:
    """A page opened in the agent's first second has plots with no point yet: they wait, then their charts are
    created from the pushed points (the data script is edited to empty `cpu-busy`, as the server sends it then)."""
    t = tab(live)

    def data(route) -> None:
        text = route.fetch().text()
        prefix = "REZGEN.register("
        key, end = json.JSONDecoder().raw_decode(text, len(prefix))
        payload, _ = json.JSONDecoder().raw_decode(text, end + 1)
        for group in payload["groups"]:
            for plot in group["plots"]:
                if plot["id"] == "cpu-busy":
                    plot.update(names=[], levels=[{"bucket": 1, "t": [], "values": []}])
        route.fulfill(status=200, content_type="text/javascript",
                      body=f"{prefix}{json.dumps(key)},{json.dumps(payload)});\n")

    t.page.route("**/data/**", data)
    t.page.goto(live)
    t.wait(f"() => document.querySelector({json.dumps(CPU_BUSY)}).textContent.includes('Waiting for data')")
    t.wait(f"() => {{ const el = document.querySelector({json.dumps(CPU_BUSY)}); return el && el.__rezgen; }}")
    t.wait("sel => document.querySelector(sel).__rezgen.inst.getOption().series[0].data.length >= 2", arg=CPU_BUSY)
    check_points(t.series())
    assert t.page.evaluate("sel => document.querySelector(sel).__rezgen.plot.kind", CPU_BUSY) == "line"
    assert t.errors == []


def test_outages_show_in_the_indicator_and_as_a_break(tab, tmp_path: Path) -> None:
    agent, server = start_pair(tmp_path)
    try:
        t = tab(server.url)
        page = t.open()
        t.wait_state("connected")
        t.wait("([sel, n]) => document.querySelector(sel).__rezgen.inst.getOption().series[0].data.length > n",
               arg=[CPU_BUSY, len(t.series()) + 2])

        # The agent goes away: the page says so (state and the agent's error), then it comes back on its port.
        agent.kill()
        before = t.series()[-1][0]
        t.wait_state("reconnecting", "disconnected", timeout=20000)
        t.wait("() => !document.getElementById('live-alert').hidden")
        assert agent.url.rstrip("/") in page.inner_text("#live-alert")
        page.screenshot(path=str(tmp_path / "agent-down.png"))
        time.sleep(3)
        agent.start()
        t.wait_state("connected", timeout=30000)
        t.wait("([sel, n]) => document.querySelector(sel).__rezgen.inst.getOption().series[0].data"
               ".some(p => p[0] > n + 5000 && p[1] !== null)", arg=[CPU_BUSY, before])
        # The outage is a run of nulls (a break in the line) between values, at least as long as the agent was away.
        data = [p for p in t.series() if p[0] > before - 5000]
        runs, run = [], []
        for point in data:
            if point[1] is None:
                run.append(point)
            elif run:
                runs.append(run)
                run = []
        assert runs, f"no break around the outage: {data[:20]}"
        longest = max(runs, key=len)
        assert longest[-1][0] - longest[0][0] >= 3000 - INTERVAL_MS, longest
        t.wait("() => document.getElementById('live-alert').hidden")

        # The server goes away: reconnecting while the stream retries, disconnected after 10 s; then back.
        server.stop(kill=True)
        t.wait_state("reconnecting", timeout=10000)
        t.wait_state("disconnected", timeout=20000)
        assert "Disconnected" in page.inner_text("#live-connection")
        server.start()
        t.wait_state("connected", timeout=40000)
        last = t.series()[-1][0]
        t.wait("([sel, n]) => document.querySelector(sel).__rezgen.inst.getOption().series[0].data.slice(-1)[0][0] > n",
               arg=[CPU_BUSY, last])
        # The browser logs the dropped stream and refused retries itself; nothing else may go to the console.
        assert [e for e in t.errors if not e.startswith("Failed to load resource: net::")] == []
    finally:
        server.stop()
        agent.stop()


@pytest.mark.slow
def test_a_new_session_fits_its_data_and_another_hosts_outage_is_a_small_notice(tab, tmp_path: Path) -> None:
    """A session a few seconds old: the x axis spans the data, not 15 empty minutes, and the picker says so. With
    two agents, the indicator describes the host on screen; the other host's outage is a separate notice."""
    chromium()
    with two_agents(tmp_path, "demo.parquet", "AB_base.parquet") as (url, first, second):
        viewed = first.url.split("//")[1].rstrip("/")
        t = tab(url)
        page = t.open(f"?host={viewed}")
        t.wait_state("connected")
        t.wait("([sel, n]) => document.querySelector(sel).__rezgen.inst.getOption().series[0].data.length >= n",
               arg=[CPU_BUSY, 4])
        data = t.series()
        low, high = t.x_window()
        assert high - low < 60_000, (high - low)  # seconds of data, not a 15-minute axis
        assert low <= data[0][0] and high == data[-1][0]
        label = page.evaluate("document.querySelector('#live-range option:checked').textContent")
        assert re.fullmatch(r"Last 15 minutes \(since start, \d+ s\)", label), label
        page.screenshot(path=str(tmp_path / "new-session.png"))

        second.kill()  # the other host goes away
        t.wait("() => { const el = document.getElementById('live-other-hosts'); return el && !el.hidden; }",
               timeout=20000)
        other = second.url.split("//")[1].rstrip("/")
        assert other in page.inner_text("#live-other-hosts")
        assert t.connection() == "connected" and page.is_hidden("#live-alert")
        page.screenshot(path=str(tmp_path / "other-host-down.png"))
        assert t.errors == []


def test_the_fleet_page_of_live_agents_refreshes_in_place(browser, tmp_path: Path) -> None:
    """Two agents: the Fleet page lists both, and every few seconds it draws newer points into the same charts."""
    chromium()
    with two_agents(tmp_path, "demo.parquet", "demo.parquet") as (url, first, second):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "fleet.html")
        chart = "document.querySelector(\"[data-kpi='cpu'] .fleet-chart\")"
        page.wait_for_function(f"() => {chart} && {chart}.__fleet", timeout=60000)
        hosts = {url.split("//")[1].rstrip("/") for url in (first.url, second.url)}
        # Read in one tick of the page: a refresh replaces the payload (and is without one for a moment).
        kpi = "() => REZGEN.payload('fleet/cpu')"
        # (a host whose second sample came after the first load joins at a refresh)
        page.wait_for_function(f"(n) => ({kpi})() && ({kpi})().hosts.length === n", arg=len(hosts), timeout=30000)
        assert set(page.wait_for_function(kpi).json_value()["hosts"]) == hosts
        page.evaluate(f"window.__first = {chart}.__fleet")
        last = page.wait_for_function(kpi).json_value()["t"][-1]
        page.wait_for_function(f"(last) => ({kpi})() && ({kpi})().t.slice(-1)[0] > last", arg=last, timeout=30000)
        # The same chart, drawn in place with the new columns.
        page.wait_for_function(f"() => ({kpi})() && {chart}.__fleet.getOption().xAxis[0].data.slice(-1)[0] === "
                               f"REZGEN.units.time(({kpi})().t.slice(-1)[0])", timeout=30000)
        assert page.evaluate(f"{chart}.__fleet === window.__first")
        assert sorted(page.eval_on_selector_all("#fleet-body tr", "rs => rs.map(r => r.dataset.host)")) == sorted(hosts)
        assert errors == []
