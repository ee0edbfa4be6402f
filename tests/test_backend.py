"""`rezgen serve/build --prometheus URL`: the dashboards and the Fleet page over a real VictoriaMetrics holding a real
recording (c16), written in the remote-write naming of issue 11 (see tsdb.py).

The same numbers as `serve RECORDING` of the same data: three hosts hold c16's series, host `alpha` as recorded,
`beta` and `gamma` with counters and gauges scaled by 0.5 and 2 (histograms as recorded), moved in time so that
they end a second ago (a whole number of seconds: the two servers' steps then line up).
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from browser import launched
from processes import start, stop, wait_for
from shared import shared_recording, unavailable
from tsdb import Prometheus
from tsdb_import import VictoriaMetrics, backfill, recording_lines

from rezgen.dashboards import load_dashboards
from rezgen.pages.fleet import KPIS
from rezgen.plotdata.evaluation import selector_names
from rezgen.recording.reader import open_recording

pytestmark = pytest.mark.oracle

HOSTS = {"alpha": 1.0, "beta": 0.5, "gamma": 2.0}
SECTIONS = ("overview", "syscall", "scheduler")
NODE = re.compile(r"(, )?node=[^,]*")


@pytest.fixture(scope="module")
def c16():
    return open_recording(shared_recording("c16.parquet"))


def _metrics(sections: tuple[str, ...]) -> set[str]:
    plots = [p for s in load_dashboards(None) if s.route in sections for p in s.plots]
    return {name for p in plots for name in selector_names(p.query)} | {
        name for kpi in KPIS for name in selector_names(kpi.query)}


@pytest.fixture(scope="module")
def shift_ns(c16) -> int:
    return (time.time_ns() - c16.time_range[1]) // 1_000_000_000 * 1_000_000_000 - 1_000_000_000


@pytest.fixture(scope="module")
def vm(tmp_path_factory, c16, shift_ns) -> Iterator[VictoriaMetrics]:
    wanted = _metrics(SECTIONS)
    with VictoriaMetrics(tmp_path_factory.mktemp("vm")) as server:
        server.load(line for node, scale in HOSTS.items()
                    for line in recording_lines(c16, node, shift_ns=shift_ns, scale=scale, metrics=wanted))
        yield server


@pytest.fixture(scope="module")
def served(vm, tmp_path_factory) -> Iterator[str]:
    proc, url = start(["serve", "--prometheus", vm.url, "--port", "0", "--query-timeout", "3s"],
                      tmp_path_factory.mktemp("serve") / "serve.log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def recording_served(tmp_path_factory) -> Iterator[str]:
    proc, url = start(["serve", str(shared_recording("c16.parquet")), "--port", "0"],
                      tmp_path_factory.mktemp("serve-rec") / "serve.log")
    yield url
    stop(proc)


def _values(payload: dict[str, Any]) -> np.ndarray:
    level = payload["levels"][-1]
    return np.array([[math.nan if v is None else v for v in row] for row in level["values"]], dtype=float)


# -- the same numbers as the recording -------------------------------------------------------------------------------


def same_plots(served: str, recording_served: str, c16, shift_ns: int, host: str) -> int:
    """Each plot of the overview, syscall and scheduler sections, asked of `serve --prometheus` for `host` and of
    `serve c16.parquet` over the same (shifted) range: the same series and the same values at every step (counters,
    gauges, histogram means and percentiles from the quantile gauges or the bucket rates). How many were compared."""
    first, last = c16.time_range
    compared = 0
    with httpx.Client(timeout=120) as client:
        for section in (s for s in load_dashboards(None) if s.route in SECTIONS):
            for plot in section.plots:
                local = client.get(f"{recording_served}api/plot/{section.route}/{plot.id}").json()
                if not local.get("names"):
                    continue
                remote = client.get(f"{served}api/plot/{section.route}/{plot.id}", params={
                    "host": host, "start": (first + shift_ns) / 1e9, "end": (last + shift_ns) / 1e9}).json()
                assert "error" not in remote, (plot.id, remote.get("error"))
                assert [NODE.sub("", n) for n in remote["names"]] == [NODE.sub("", n) for n in local["names"]]
                t_local = np.array(local["levels"][-1]["t"])
                t_remote = np.array(remote["levels"][-1]["t"]) - shift_ns // 1_000_000
                np.testing.assert_array_equal(t_remote, t_local, err_msg=plot.id)
                np.testing.assert_allclose(_values(remote), _values(local), rtol=1e-9, err_msg=plot.id)
                compared += 1
    return compared


def test_every_plot_of_a_host_over_the_tsdb_equals_the_recordings_plot(served, recording_served, c16, shift_ns):
    assert same_plots(served, recording_served, c16, shift_ns, "alpha") >= 40


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, c16, shift_ns) -> Iterator[Prometheus]:
    """A real Prometheus 2.42 holding hosts `alpha` and `beta` (blocks backfilled by promtool before it starts)."""
    if not Prometheus.available():
        unavailable("prometheus is not installed (apt-get install prometheus)")
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), enable_receiver=False)
    backfill(server.data_dir, (line for node in ("alpha", "beta") for line in recording_lines(
        c16, node, shift_ns=shift_ns, scale=HOSTS[node], metrics=_metrics(SECTIONS))))
    server.start()
    yield server
    server.stop()


def test_prometheus_as_the_backend_gives_the_recordings_plots_too(prometheus, recording_served, c16, shift_ns,
                                                                   tmp_path):
    proc, url = start(["serve", "--prometheus", prometheus.url, "--port", "0"], tmp_path / "serve.log")
    try:
        assert same_plots(url, recording_served, c16, shift_ns, "alpha") >= 40
    finally:
        stop(proc)


def test_the_host_selector_lists_the_backends_node_values(served):
    page = httpx.get(f"{served}index.html", timeout=60).text
    assert re.findall(r'<option value="([^"]+)">', page.split('id="host-select"')[1].split("</select>")[0]) == list(
        HOSTS)


# -- the fleet page --------------------------------------------------------------------------------------------------


def _irate_at(times: np.ndarray, values: np.ndarray, at_ns: np.ndarray) -> np.ndarray:
    """irate(x[5m]) at each of `at_ns`, straight from the samples: the last two samples at or before it."""
    idx = np.searchsorted(times, at_ns, side="right") - 1
    ok = (idx >= 1) & (at_ns - times[np.maximum(idx - 1, 0)] < 300e9)
    prev, cur = np.maximum(idx - 1, 0), np.maximum(idx, 0)
    delta = values[cur] - values[prev]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(delta >= 0, delta, values[cur]) / ((times[cur] - times[prev]) / 1e9)
    return np.where(ok, rate, np.nan)


def _network_bytes(c16, at_ns: np.ndarray, scale: float) -> np.ndarray:
    rows = []
    for series in c16.store.series_of("network_bytes"):
        times, values = series.points()
        rows.append(_irate_at(times, values * scale, at_ns))
    total = np.nansum(rows, axis=0)
    return np.where(np.isnan(rows).all(axis=0), np.nan, total)


@pytest.fixture(scope="module")
def browser():
    with launched() as instance:
        yield instance


@pytest.mark.browser
def test_the_fleet_page_sorts_hosts_and_shows_the_values_numpy_computes(served, browser, c16, shift_ns):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{served}fleet.html")
    ids = [k.id for k in KPIS]
    page.wait_for_function("(ids) => ids.every(id => { const el = document.querySelector("
                           "`[data-kpi='${id}'] .fleet-chart`); return el && echarts.getInstanceByDom(el); })",
                           arg=ids, timeout=120000)
    kpis = {kpi_id: page.evaluate("(id) => REZGEN.payload('fleet/' + id)", kpi_id) for kpi_id in ids}
    at_ns = np.array(kpis["network"]["t"], dtype=np.int64) * 1_000_000 - shift_ns
    table = {}
    for host in HOSTS:
        cells = page.locator(f'#fleet-body tr[data-host="{host}"] td').all()
        table[host] = [c.get_attribute("data-value") for c in cells[1:]]
    averages = {}
    for host, scale in HOSTS.items():
        expected = _network_bytes(c16, at_ns, scale)
        present = expected[~np.isnan(expected)]
        averages[host] = present.mean()
        column = ids.index("network")
        now, avg = (float(v) for v in table[host][2 * column : 2 * column + 2])
        assert now == pytest.approx(present[-1], rel=1e-9)
        assert avg == pytest.approx(present.mean(), rel=1e-9)
    # Every KPI's heatmap: hosts sorted by their average, highest first (network: gamma, alpha, beta).
    for kpi in kpis.values():
        assert "error" not in kpi, kpi
        shown = page.evaluate(
            "(id) => echarts.getInstanceByDom(document.querySelector(`[data-kpi='${id}'] .fleet-chart`))"
            ".getOption().yAxis[0].data", kpi["id"])
        means = [np.nanmean([math.nan if v is None else v for v in row]) for row in kpi["values"]]
        assert shown == kpi["hosts"] and means == sorted(means, reverse=True), kpi["id"]
    assert kpis["network"]["hosts"] == sorted(HOSTS, key=lambda h: -averages[h])
    # The search box narrows the table and the heatmaps; each host links to its own pages.
    page.fill("#fleet-search", "gam")
    page.wait_for_function("() => document.querySelectorAll('#fleet-body tr').length === 1")
    link = page.locator("#fleet-body tr a")
    assert link.get_attribute("href").endswith("index.html?host=gamma")
    link.click()
    page.wait_for_selector(".chart[data-plot-id]", timeout=60000)
    assert page.evaluate("() => REZGEN.host()") == "gamma"
    assert errors == []
    page.close()


@pytest.mark.browser
def test_a_section_page_over_the_tsdb_draws_its_charts(served, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{served}syscall.html?host=beta")
    # Charts are drawn as they scroll into view: the first ones (rates, a mean, the percentiles) are drawn.
    page.wait_for_function("() => Array.from(document.querySelectorAll('.chart[data-plot-id]'))"
                           ".filter(el => el.__rezgen).length >= 3", timeout=60000)
    assert page.locator(".chart-error").count() == 0
    assert page.locator(".chart-message").all_text_contents() == []
    page.close()


# -- the Prometheus API, passed through ----------------------------------------------------------------------------


def test_the_prometheus_api_is_the_backends_own_answer(served, vm, shift_ns, c16):
    """/api/v1/* of `serve --prometheus` relays the backend: the same body as asking VictoriaMetrics directly, by GET
    and by form POST, repeated `match[]` kept; errors are the backend's, with its status."""
    first, last = c16.time_range
    params = {"query": 'sum by (node) (irate(cpu_usage[1m]))', "start": (first + shift_ns) / 1e9,
              "end": (last + shift_ns) / 1e9, "step": "15s"}
    with httpx.Client(timeout=60) as client:
        direct = client.get(f"{vm.url}/api/v1/query_range", params=params).json()
        assert direct["status"] == "success" and len(direct["data"]["result"]) == len(HOSTS)
        assert client.get(f"{served}api/v1/query_range", params=params).json() == direct
        assert client.post(f"{served}api/v1/query_range", data=params).json() == direct
        series = [("match[]", "cpu_cores"), ("match[]", "cpu_usage")]
        names = {s["__name__"] for s in client.get(f"{served}api/v1/series", params=series).json()["data"]}
        assert names == {"cpu_cores", "cpu_usage"}
        values = client.get(f"{served}api/v1/label/node/values").json()
        assert values == client.get(f"{vm.url}/api/v1/label/node/values").json() and values["data"] == sorted(HOSTS)
        broken = {"query": "sum(irate(cpu_usage[5m]", "time": params["end"]}
        bad = client.get(f"{served}api/v1/query", params=broken)
        direct_bad = client.get(f"{vm.url}/api/v1/query", params=broken)
        assert (bad.status_code, bad.json()) == (direct_bad.status_code, direct_bad.json())
        assert bad.status_code == 422 and bad.json()["status"] == "error"
        # Only reads go through.
        for method, path, status in (("POST", "api/v1/write", 404), ("DELETE", "api/v1/query", 405),
                                     ("POST", "api/v1/admin/tsdb/delete_series", 404)):
            answer = client.request(method, f"{served}{path}")
            assert answer.status_code == status and answer.json()["status"] == "error", (path, answer.text)


@pytest.mark.browser
def test_the_query_page_runs_against_the_backend(served, browser, vm):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{served}query.html?query=" + "count(cpu_cores)")
    page.wait_for_function("() => !document.getElementById('query-result').hidden", timeout=60000)
    rows = page.eval_on_selector_all("#query-table tr",
                                     "rs => rs.map(r => Array.from(r.cells).map(c => c.textContent))")
    assert rows[0][0] == "time" and len(rows) > 2
    assert {float(r[1]) for r in rows[1:]} == {float(len(HOSTS))}  # every host reports its cores at every step
    assert errors == []
    page.close()


# -- a backend that fails ------------------------------------------------------------------------------------------


@pytest.fixture
def own_vm(tmp_path, c16, shift_ns) -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics(tmp_path / "vm") as server:
        server.load(recording_lines(c16, "solo", shift_ns=shift_ns, metrics={"cpu_usage", "cpu_cores"}))
        yield server


def test_a_backend_that_stops_answering_shows_the_error_in_each_chart(own_vm, browser, tmp_path):
    proc, url = start(["serve", "--prometheus", own_vm.url, "--port", "0", "--query-timeout", "2s"],
                      tmp_path / "serve.log")
    try:
        assert "names" in httpx.get(f"{url}api/plot/overview/cpu-busy", timeout=60).json()
        assert own_vm.process is not None
        os.kill(own_vm.process.pid, signal.SIGSTOP)  # a hung TSDB: connections open, no answer
        try:
            # (another range than the first request's: an answer of the last few seconds would be reused)
            hung = httpx.get(f"{url}api/plot/overview/cpu-busy", params={"start": time.time() - 120},
                             timeout=60).json()
        finally:
            os.kill(own_vm.process.pid, signal.SIGCONT)
        assert "did not answer within 2 s" in hung["error"]
        own_vm.stop()
        down = httpx.get(f"{url}api/plot/overview/cpu-busy", params={"start": time.time() - 60}, timeout=60).json()
        assert "cannot be reached" in down["error"] and down["query"]
        status = wait_for(lambda: (s := httpx.get(f"{url}api/status", timeout=10).json())["agents"][0]["error"] and s,
                          timeout=20, what="the status to report the backend down")
        assert status["agents"][0]["state"] == "disconnected"
        page = browser.new_page()  # the page still opens, and the chart says what is wrong
        page.goto(url)
        page.wait_for_selector(".chart-error", timeout=60000)
        assert "cannot be reached" in page.locator(".chart-error").first.text_content()
        page.close()
    finally:
        stop(proc)


def test_a_bad_backend_url_is_one_line_and_a_non_zero_exit():
    for args in (["serve", "--prometheus", "http://127.0.0.1:9/"],
                 ["build", "--prometheus", "http://127.0.0.1:9/", "--start", "0", "--end", "60"]):
        done = subprocess.run([sys.executable, "-m", "rezgen", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert done.stderr.strip().count("\n") == 0 and "cannot be reached" in done.stderr, done.stderr
    done = subprocess.run([sys.executable, "-m", "rezgen", "build", "--prometheus", "http://127.0.0.1:9/"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--start and --end" in done.stderr


# -- a static build ------------------------------------------------------------------------------------------------


def test_a_build_from_the_tsdb_has_the_recordings_numbers_and_a_fleet_page(vm, c16, shift_ns, tmp_path):
    first, last = c16.time_range
    dashboards = tmp_path / "dashboards"
    dashboards.mkdir()
    (dashboards / "overview.toml").write_text(
        (Path(__file__).parents[1] / "dashboards" / "overview.toml").read_text())
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "rezgen", "build", "--prometheus", vm.url, "--start",
                    str((first + shift_ns) / 1e9), "--end", str((last + shift_ns) / 1e9), "-o", str(site), "-q",
                    "--dashboards", str(dashboards)], check=True, capture_output=True, timeout=600)
    assert (site / "fleet.html").is_file()
    assert sorted(p.name for p in (site / "fleet").iterdir()) == sorted(f"{k.id}.js" for k in KPIS)
    assert sorted(p.name for p in (site / "data").iterdir()) == sorted(HOSTS)
    text = (site / "data" / "alpha" / "overview.js").read_text()
    assert '"cpu-busy"' in text and '"error"' not in text
