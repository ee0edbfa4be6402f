"""The viewer's tools that need a server, in a real headless Chromium against a real `rezgen serve c16.parquet`:
the query explorer, a single chart's editable query, and the step selector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from processes import start, stop
from shared import shared_recording

pytestmark = pytest.mark.browser
FIRST, LAST = 1779156029, 1779156389  # c16.parquet: 361 rows, one a second


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start(["serve", str(shared_recording("c16.parquet")), "--port", "0"],
                      tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.errors = []
    page.requests = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" and "favicon" not in str(
        m.location.get("url", "")) else None)
    page.on("response", lambda r: page.errors.append(f"{r.status} {r.url}") if r.status >= 400 and
            not r.url.endswith("/favicon.ico") else None)
    page.on("request", lambda r: page.requests.append(r.url))
    yield page
    errors = page.errors
    context.close()
    assert errors == []


def query_range(server: str, query: str, step: float = 1.0) -> dict[int, list]:
    body = httpx.get(server + "api/v1/query_range", params={"query": query, "start": FIRST, "end": LAST,
                                                            "step": step}).json()
    assert body["status"] == "success"
    return {tuple(sorted(s["metric"].items())): {round(float(t) * 1000): float(v) for t, v in s["values"]}
            for s in body["data"]["result"]}


def drawn(page, selector: str) -> dict[str, dict[int, float]]:
    return page.evaluate("""(sel) => {
        const o = echarts.getInstanceByDom(document.querySelector(sel)).getOption();
        return Object.fromEntries(o.series.map(s => [s.name, Object.fromEntries(
            s.data.filter(p => p[1] !== null).map(p => [p[0], p[1]]))]));
    }""", selector)


def test_the_explorers_result_equals_the_prometheus_api(server, page):
    query = "sum by (state) (irate(cpu_usage[5m])) / 1e9"
    page.goto(server + "query.html?" + urlencode({"query": query, "from": FIRST * 1000, "to": LAST * 1000}))
    page.wait_for_function("() => !document.getElementById('query-result').hidden")
    chart = drawn(page, "#query-chart")
    expected = query_range(server, query)
    assert {name: {int(t): v for t, v in points.items()} for name, points in chart.items()} == {
        dict(labels)["state"]: values for labels, values in expected.items()}
    assert len(chart) == 2 and all(len(points) > 300 for points in chart.values())
    # The table lists the same numbers, a row per step.
    rows = page.eval_on_selector_all("#query-table tr",
                                     "rs => rs.map(r => Array.from(r.cells).map(c => c.textContent))")
    assert rows[0] == ["time", "system", "user"] and len(rows) - 1 == len(next(iter(expected.values())))
    # The query is kept among the recent ones, in this browser.
    assert page.evaluate("JSON.parse(localStorage.getItem('rezgen-recent-queries'))") == [query]
    assert query in page.text_content("#query-recent")


def test_an_example_query_runs_and_a_bad_query_says_why(server, page):
    page.goto(server + "query.html")
    page.wait_for_function("() => document.getElementById('query-from').value !== ''")
    page.click("#query-examples button >> nth=0")
    page.wait_for_function("() => !document.getElementById('query-result').hidden")
    (series,) = query_range(server, "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9").values()
    assert {int(t): v for t, v in next(iter(drawn(page, "#query-chart").values())).items()} == series
    page.fill("#query-text", "sum(irate(cpu_usage[5m]")
    page.click("#query-run")
    page.wait_for_function("() => document.getElementById('query-note').classList.contains('error')")
    assert "unclosed" in page.text_content("#query-note").lower() or "parse" in page.text_content("#query-note")
    assert [e for e in page.errors if e.startswith("400 ")] and all("400" in e for e in page.errors)
    page.errors.clear()  # the refused query was this test's own


def test_a_single_charts_query_can_be_edited_and_run_again(server, page):
    page.goto(server + "index.html?chart=cpu-busy")
    page.wait_for_function("() => REZGEN.state.charts.length > 0 && document.getElementById('chart-query-text').value")
    assert page.input_value("#chart-query-text") == "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9"
    query = 'sum(irate(cpu_usage{state="user"}[5m])) / sum(cpu_cores) / 1e9'
    page.fill("#chart-query-text", query)
    page.click("#chart-query-run")
    page.wait_for_function("() => /series/.test(document.querySelector('.chart-query-note').textContent)")
    (expected,) = query_range(server, query).values()
    (got,) = drawn(page, '[data-plot-id="cpu-busy"]').values()
    assert {int(t): v for t, v in got.items()} == expected


@pytest.mark.parametrize(("step", "ms"), [("5s", 5000), ("1m", 60000)])
def test_the_step_selector_fetches_every_chart_at_that_step(server, page, step, ms):
    page.goto(server + "index.html")
    page.wait_for_function("() => REZGEN.state.charts.length > 0")
    page.select_option("#step-select", step)
    page.wait_for_function("""(ms) => { const el = document.querySelector('[data-plot-id="cpu-busy"]');
        const t = el.__rezgen.plot.levels.at(-1).t; return t.length > 1 && t[1] - t[0] === ms; }""", arg=ms)
    asked = [parse_qs(urlparse(u).query)["step"] for u in page.requests if "/api/plot/overview/" in u]
    assert asked and all(s == [step] for s in asked)
    (expected,) = query_range(server, "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9", ms / 1000).values()
    (got,) = drawn(page, '[data-plot-id="cpu-busy"]').values()
    assert {int(t): v for t, v in got.items()} == pytest.approx(expected, rel=1e-3)
    # Auto puts back what the page loaded.
    page.select_option("#step-select", "")
    page.wait_for_function("""() => { const t = document.querySelector('[data-plot-id="cpu-busy"]')
        .__rezgen.plot.levels.at(-1).t; return t[1] - t[0] === 1000; }""")


def test_the_query_page_from_disk_says_it_needs_a_server(browser, tmp_path: Path):
    import subprocess
    import sys

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "rezgen", "build", str(shared_recording("c16.parquet")), "-o", str(site),
                    "-q"], check=True, capture_output=True, timeout=600)
    context = browser.new_context()
    page = context.new_page()
    page.goto((site / "query.html").as_uri())
    assert page.locator("#query-needs-server").is_visible()
    assert "rezgen serve" in page.text_content("#query-needs-server")
    assert not page.locator("#query-form").is_visible()
    context.close()
