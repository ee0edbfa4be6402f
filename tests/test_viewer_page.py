"""The viewer's chart tools in a real headless Chromium over a site built from c16.parquet (file://): the quantile
spectrum, legend pin, frozen tooltips, the Log, Raw count and Total toggles, PNG and CSV export, and one chart
alone. Served-page tools (step selector, query explorer, editable query) are in test_viewer_served.py."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
from pathlib import Path

import pytest
from rawparquet import RawRecording
from shared import shared_recording

from rezgen.plotdata.spectrum import MODES

pytestmark = pytest.mark.browser
SPECTRUM = "syscall-total-latency"


@pytest.fixture(scope="module")
def c16() -> Path:
    return shared_recording("c16.parquet")


@pytest.fixture(scope="module")
def site(c16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("viewer") / "site"
    subprocess.run([sys.executable, "-m", "rezgen", "build", str(c16), "-o", str(out), "-q"], check=True,
                   capture_output=True, timeout=600)
    return out


class Page:
    """A page of the site; every request and console error recorded, anything but file:// refused."""

    def __init__(self, browser, site: Path, name: str):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.route(lambda url: not url.startswith("file:"), lambda route: route.abort())
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.goto((site / name.partition("?")[0]).as_uri() + ("?" + name.partition("?")[2] if "?" in name else ""))
        self.page.wait_for_function("() => window.REZGEN && REZGEN.state && REZGEN.state.charts.length > 0",
                                    timeout=20000)

    def chart(self, plot_id: str) -> None:
        """Scroll the chart into view and wait until it is drawn."""
        self.page.wait_for_function("""(id) => { const el = document.querySelector(`[data-plot-id="${id}"]`);
            el.scrollIntoView({block: 'center'}); return !!(el.__rezgen && el.__rezgen.inst); }""", arg=plot_id,
                                    timeout=20000)
        self.page.wait_for_timeout(100)

    def option(self, plot_id: str) -> dict:
        return self.page.evaluate("""(id) => {
            const o = echarts.getInstanceByDom(document.querySelector(`[data-plot-id="${id}"]`)).getOption();
            return {series: o.series.map(s => ({name: s.name, type: s.type, data: s.data})),
                    yAxis: o.yAxis.map(a => ({type: a.type, data: a.data || null, min: a.min, max: a.max})),
                    visualMap: (o.visualMap || []).map(v => ({text: v.text}))};
        }""", plot_id)

    def tool(self, plot_id: str, selector: str):
        return self.page.locator(f'.panel:has([data-plot-id="{plot_id}"]) {selector}')

    def close(self) -> None:
        assert self.errors == [], self.errors
        assert all(url.startswith("file:") for url in self.requests), self.requests
        self.context.close()


@pytest.fixture
def page(browser, site):
    opened: list[Page] = []

    def open_(name: str) -> Page:
        opened.append(Page(browser, site, name))
        return opened[-1]

    yield open_
    for p in opened:
        p.close()


def line(option: dict, name: str) -> dict[int, float]:
    series = next(s for s in option["series"] if s["name"] == name)
    return {t: v for t, v in series["data"] if v is not None}


def spectrum_row(option: dict, name: str) -> dict[int, float]:
    row = option["yAxis"][0]["data"].index(name)
    return {cell[0]: cell[4] for cell in option["series"][0]["data"] if cell[1] == row}


@pytest.mark.parametrize(("mode", "name"), [("full", "p99"), ("full", "p50"), ("tail", "p99.9"), ("tail", "p99.99")])
def test_a_spectrum_row_equals_the_percentile_line_of_the_same_quantile(page, mode, name):
    p = page("syscall.html")
    p.chart(SPECTRUM)
    lines = line(p.option(SPECTRUM), name)
    assert not [u for u in p.requests if "/spectrum/" in u], "a spectrum is loaded only when asked for"
    p.tool(SPECTRUM, f'[data-spectrum="{mode}"]').click()
    p.page.wait_for_function("(id) => document.querySelector(`[data-plot-id=\"${id}\"]`).__rezgen.kind === 'spectrum'",
                             arg=SPECTRUM)
    option = p.option(SPECTRUM)
    assert option["yAxis"][0]["data"] == [n for n, _ in MODES[mode]], "the page names the rows as MODES does"
    assert option["visualMap"] and all(option["visualMap"][0]["text"]), "the spectrum has a colour legend"
    assert spectrum_row(option, name) == lines and len(lines) > 250
    assert len([u for u in p.requests if "/spectrum/" in u]) == 1
    # Pressed again: back to the lines.
    p.tool(SPECTRUM, f'[data-spectrum="{mode}"]').click()
    assert line(p.option(SPECTRUM), name) == lines


def test_a_click_on_a_legend_entry_pins_that_percentile_and_fits_the_y_axis_to_it(page):
    p = page("syscall.html")
    p.chart(SPECTRUM)
    p50 = line(p.option(SPECTRUM), "p50")
    p.page.evaluate("""(id) => echarts.getInstanceByDom(document.querySelector(`[data-plot-id="${id}"]`))
                       .dispatchAction({type: 'legendToggleSelect', name: 'p50'})""", SPECTRUM)
    assert p.page.get_attribute(f'[data-plot-id="{SPECTRUM}"]', "data-pinned") == "p50"
    option = p.option(SPECTRUM)
    assert option["yAxis"][0]["type"] == "log"
    assert option["yAxis"][0]["min"] <= min(p50.values()) and max(p50.values()) <= option["yAxis"][0]["max"]
    assert option["yAxis"][0]["max"] <= 10 * max(p50.values()), "the axis is fitted to p50, not to p99.99"
    assert all(s["data"] for s in option["series"] if s["name"].startswith("p")), "every line stays drawn"
    p.page.evaluate("""(id) => echarts.getInstanceByDom(document.querySelector(`[data-plot-id="${id}"]`))
                       .dispatchAction({type: 'legendToggleSelect', name: 'p50'})""", SPECTRUM)
    assert p.page.get_attribute(f'[data-plot-id="{SPECTRUM}"]', "data-pinned") is None


def test_a_click_freezes_the_tooltip_and_escape_releases_it(page):
    p = page("index.html")
    p.chart("cpu-busy")
    box = p.page.locator('[data-plot-id="cpu-busy"]').bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    p.page.mouse.move(x, y, steps=3)
    p.page.wait_for_timeout(200)
    tooltip = '[data-plot-id="cpu-busy"] .tt'
    shown = p.page.text_content(tooltip)
    assert shown
    p.page.mouse.click(x, y)
    assert p.page.get_attribute('[data-plot-id="cpu-busy"]', "data-frozen") == "true"
    # The mouse moves on, over another chart: the frozen tooltip stays as it was.
    other = p.page.locator('.chart[data-plot-id]').nth(1).bounding_box()
    p.page.mouse.move(other["x"] + other["width"] * 0.8, other["y"] + other["height"] * 0.5, steps=5)
    p.page.wait_for_timeout(300)
    assert p.page.text_content(tooltip) == shown and p.page.locator(tooltip).is_visible()
    p.page.keyboard.press("Escape")
    p.page.wait_for_timeout(200)
    assert p.page.get_attribute('[data-plot-id="cpu-busy"]', "data-frozen") is None
    assert not p.page.locator(tooltip).is_visible()


def test_the_log_toggle_switches_a_latency_charts_y_axis_between_log_and_linear(page):
    p = page("syscall.html")
    p.chart(SPECTRUM)
    toggle = p.tool(SPECTRUM, ".log-toggle")
    assert toggle.get_attribute("aria-pressed") == "true" and p.option(SPECTRUM)["yAxis"][0]["type"] == "log"
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false" and p.option(SPECTRUM)["yAxis"][0]["type"] == "value"
    toggle.click()
    assert p.option(SPECTRUM)["yAxis"][0]["type"] == "log"
    assert p.tool("syscall-total-rate", ".log-toggle").count() == 0, "a rate chart is not a latency chart"
    # A spectrum's colours follow the toggle too: log10 of the value, or the value.
    p.tool(SPECTRUM, '[data-spectrum="full"]').click()
    p.page.wait_for_function("(id) => document.querySelector(`[data-plot-id=\"${id}\"]`).__rezgen.kind === 'spectrum'",
                             arg=SPECTRUM)
    logged = p.option(SPECTRUM)["series"][0]["data"]
    toggle.click()
    linear = p.option(SPECTRUM)["series"][0]["data"]
    assert [c[4] for c in linear] == [c[4] for c in logged] and len(linear) > 1000
    assert all(c[2] == c[4] for c in linear) and all(c[2] == pytest.approx(math.log10(c[4])) for c in logged)


def test_raw_count_shows_a_bucket_heatmaps_counts_per_column(page):
    p = page("syscall.html")
    p.chart(SPECTRUM)
    raw = p.tool(SPECTRUM, ".raw-toggle")
    assert raw.is_hidden(), "only with the bucket heatmap"
    p.tool(SPECTRUM, ".mode-toggle").click()
    rates = {(c[0], c[1]): c[4] for c in p.option(SPECTRUM)["series"][0]["data"]}
    raw.click()
    counts = {(c[0], c[1]): c[4] for c in p.option(SPECTRUM)["series"][0]["data"]}
    width = p.page.evaluate("(id) => { const b = document.querySelector(`[data-plot-id=\"${id}\"]`).__plot.buckets;"
                            " return b.t[1] - b.t[0]; }", SPECTRUM)
    assert counts.keys() == rates.keys() and len(counts) > 100
    assert all(counts[k] == pytest.approx(rates[k] * width / 1000) for k in counts)


def test_total_is_the_mean_per_cpu_times_the_hosts_cpus(page, c16):
    raw = RawRecording(c16)
    cpus = int(sum(raw.values(c)[-1] for c in raw.select("cpu_cores")))
    assert cpus == 16
    p = page("index.html")
    p.chart("cpu-busy")
    mean = line(p.option("cpu-busy"), p.option("cpu-busy")["series"][0]["name"])
    p.tool("cpu-busy", ".total-toggle").click()
    total = line(p.option("cpu-busy"), p.option("cpu-busy")["series"][0]["name"])
    assert total.keys() == mean.keys() and all(total[t] == pytest.approx(mean[t] * cpus) for t in mean)
    assert p.tool("cpu-busy", ".total-toggle").text_content() == "Mean"
    assert p.tool("syscall-total-rate", ".total-toggle").count() == 0


def _download(p: Page, plot_id: str, selector: str) -> bytes:
    with p.page.expect_download() as info:
        p.tool(plot_id, selector).click()
    return Path(info.value.path()).read_bytes()


@pytest.mark.parametrize(("route", "plot_id"), [("index.html", "cpu-busy"), ("cgroups.html", "individual-total-cores"),
                                                ("index.html", "cpu-busy-heatmap")])
def test_a_csv_holds_exactly_the_points_the_chart_draws(page, route, plot_id):
    p = page(route)
    p.chart(plot_id)
    option = p.option(plot_id)
    rows = list(csv.reader(io.StringIO(_download(p, plot_id, ".export-csv").decode())))
    header, body = rows[0], rows[1:]
    series = [s for s in option["series"] if s["data"]]
    if series[0]["type"] == "custom":
        labels = option["yAxis"][0]["data"]
        assert header == ["time_ms", "time", "end_ms", "row", "value"]
        expected = [[str(c[0]), str(c[3]), labels[c[1]], c[2]] for c in series[0]["data"]]
        assert [[r[0], r[2], r[3], float(r[4])] for r in body] == expected
        return
    assert header[:2] == ["time_ms", "time"] and len(header) == 2 + len(series)
    for k, s in enumerate(series):
        drawn = {t: v for t, v in s["data"]}
        got = {int(r[0]): (float(r[2 + k]) if r[2 + k] else None) for r in body}
        assert got == drawn, s["name"]


def test_a_png_is_the_chart_as_an_image(page):
    p = page("index.html")
    p.chart("cpu-busy")
    png = _download(p, "cpu-busy", ".export-png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_open_shows_the_chart_alone_with_its_query_read_only_from_disk(page, site):
    p = page("syscall.html")
    p.chart(SPECTRUM)
    p.tool(SPECTRUM, ".open-chart").click()
    p.page.wait_for_url(f"**/syscall.html?chart={SPECTRUM}")
    p.page.wait_for_function("() => REZGEN.state.charts.length > 0")
    visible = p.page.evaluate("""() => Array.from(document.querySelectorAll('.chart[data-plot-id]'))
        .filter(el => el.offsetParent !== null).map(el => el.getAttribute('data-plot-id'))""")
    assert visible == [SPECTRUM]
    p.page.wait_for_function("() => document.getElementById('chart-query-text').value !== ''")
    assert p.page.input_value("#chart-query-text") == "syscall_latency"
    assert p.page.locator("#chart-query-text").get_attribute("readonly") is not None
    assert "rezgen serve" in p.page.text_content(".chart-query-note")
    width = p.page.evaluate(f"""() => document.querySelector('[data-plot-id="{SPECTRUM}"]').clientWidth""")
    assert width > 1000
