"""The viewer's tools on live pages: `rezgen replay` (a fake agent) feeding `rezgen serve --live`, both real
processes, driven in a real headless Chromium: the spectrum from /api/spectrum, the step selector, the query page."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from browser import chromium
from test_live_page import start_pair

pytestmark = [pytest.mark.browser, pytest.mark.live]
LATENCY = '[data-plot-id="syscall-total-latency"]'


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[str]:
    chromium()
    agent, server = start_pair(tmp_path_factory.mktemp("live"))
    yield server.url
    server.stop()
    agent.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.errors, page.requests = [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", lambda r: page.requests.append(r.url))
    yield page
    errors = page.errors
    context.close()
    assert errors == []


def test_a_live_spectrum_comes_from_the_server_and_its_p99_row_is_the_p99_line(live, page):
    page.goto(live)
    page.wait_for_function(f"""() => {{ const el = document.querySelector('{LATENCY}'); el.scrollIntoView();
        return el.__rezgen && el.__rezgen.inst; }}""", timeout=30000)
    page.wait_for_function(f"""() => {{ const p = document.querySelector('{LATENCY}').__rezgen.plot;
        return p.levels.at(-1).values[p.names.indexOf('p99')].filter(v => v !== null).length >= 20; }}""",
                           timeout=60000)
    page.click("#live-toggle")  # paused: the lines stay as they are while the spectrum is compared with them
    lines = page.evaluate(f"""() => {{ const p = document.querySelector('{LATENCY}').__rezgen.plot;
        const lvl = p.levels.at(-1), i = p.names.indexOf('p99');
        return Object.fromEntries(lvl.t.map((t, k) => [t, lvl.values[i][k]]).filter(x => x[1] !== null)); }}""")
    page.locator(f'.panel:has({LATENCY}) [data-spectrum="full"]').click()
    page.wait_for_function(f"() => document.querySelector('{LATENCY}').__rezgen.kind === 'spectrum'")
    assert [u for u in page.requests if "/api/spectrum/overview/syscall-total-latency?" in u]
    row = page.evaluate(f"""() => {{ const s = document.querySelector('{LATENCY}').__rezgen.plot._spectrum.full;
        const r = s.rows[s.names.indexOf('p99')];
        return Object.fromEntries(s.t.map((t, k) => [t, r[k] === null ? null : s.edges[r[k]]])
                                   .filter(x => x[1] !== null)); }}""")
    common = row.keys() & lines.keys()
    assert len(common) >= 20 and all(row[t] == lines[t] for t in common)


def test_the_step_selector_pauses_a_live_page_and_fetches_every_chart_at_that_step(live, page):
    page.goto(live)
    page.wait_for_function("() => REZGEN.state.charts.length > 0", timeout=30000)
    assert page.get_attribute("#live-toggle", "aria-pressed") == "true"
    page.select_option("#step-select", "5s")
    page.wait_for_function("""() => { const t = document.querySelector('[data-plot-id="cpu-busy"]')
        .__rezgen.plot.levels.at(-1).t; return t.length > 1 && t[1] - t[0] === 5000; }""", timeout=30000)
    assert page.get_attribute("#live-toggle", "aria-pressed") == "false"
    asked = [parse_qs(urlparse(u).query) for u in page.requests if "/api/plot/overview/" in u]
    assert asked and all(q["step"] == ["5s"] and "start" in q and "end" in q for q in asked)


def test_the_query_page_of_a_live_server_answers_as_its_prometheus_api(live, page):
    query = "sum(irate(cpu_usage[5m])) / 1e9"
    span = httpx.get(live + "api/range").json()
    end = span["end"] // 1000 * 1000  # the page's time inputs hold whole seconds
    start = end - 60_000
    page.goto(live + "query.html?" + urlencode({"query": query, "from": start, "to": end, "step": "1s"}))
    page.wait_for_function("() => !document.getElementById('query-result').hidden", timeout=30000)
    drawn = page.evaluate("""() => { const o = echarts.getInstanceByDom(document.getElementById('query-chart'))
        .getOption(); return Object.fromEntries(o.series[0].data.filter(p => p[1] !== null)); }""")
    body = httpx.get(live + "api/v1/query_range", params={"query": query, "start": start / 1000,
                                                          "end": end / 1000, "step": 1}).json()
    (series,) = body["data"]["result"]
    assert {int(t): v for t, v in drawn.items()} == {round(float(t) * 1000): float(v) for t, v in series["values"]}
