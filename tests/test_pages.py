"""The built static site in a real browser: pages opened from file:// in headless Chromium (Playwright).

Skips without Playwright or a Chromium binary on a developer machine; fails in CI, where both must be installed
(`pip install playwright` comes with the test extras; Chromium from Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser import chromium, launched
from shared import shared_recording

HOSTILE = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'
CPU_BUSY = '[data-plot-id="cpu-busy"]'


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    chromium()  # skip before the build when there is no browser to look at it
    recording = shared_recording("c16.parquet")
    out = tmp_path_factory.mktemp("site") / "c16"
    done = subprocess.run([sys.executable, "-m", "rezgen", "build", str(recording), "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (out / "index.html").is_file()
    return out


@pytest.fixture(scope="module")
def browser():
    with launched() as instance:
        yield instance


class Page:
    """A browser page that records console errors, uncaught exceptions and any request leaving file://."""

    def __init__(self, browser, width: int = 1400, theme: str | None = None):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        if theme:
            self.context.add_init_script(
                f"if (!localStorage.getItem('rezgen-theme')) localStorage.setItem('rezgen-theme', {json.dumps(theme)})")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("request", lambda r: None if r.url.startswith("file://") else self.outside.append(r.url))

    def open(self, path: Path, charts: bool = True):
        self.page.goto(path.as_uri())
        if charts:
            self.page.wait_for_function("() => window.REZGEN && REZGEN.state && REZGEN.state.charts.length > 0",
                                        timeout=20000)
        return self.page

    def close(self) -> None:
        self.context.close()

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.outside == [], f"requests outside the site: {self.outside}"


@pytest.fixture
def tab(browser):
    opened: list[Page] = []

    def make(**kwargs) -> Page:
        page = Page(browser, **kwargs)
        opened.append(page)
        return page

    yield make
    for page in opened:
        page.close()


def test_overview_draws_cpu_busy_as_time_value_pairs(site, tab):
    t = tab()
    page = t.open(site / "index.html")
    data = page.evaluate(f"""() => echarts.getInstanceByDom(document.querySelector('{CPU_BUSY}'))
                                   .getOption().series[0].data""")
    assert len(data) > 100
    assert all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], (int, float)) for p in data)
    values = [v for _, v in data if v is not None]
    assert len(values) > 100 and all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in values)
    times = [ms for ms, _ in data]
    assert times == sorted(times) and 1.7e12 < times[0] < 2e12  # unix milliseconds
    assert page.locator('[aria-current="page"]').first.text_content().strip().startswith("Overview")
    t.assert_clean()


def test_theme_toggle_flips_and_persists(site, tab):
    t = tab(theme="dark")
    page = t.open(site / "index.html")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.click("#theme-toggle")
    page.wait_for_function("document.documentElement.dataset.theme === 'light'", timeout=5000)
    page.reload(wait_until="domcontentloaded")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"  # set before the page paints
    page.wait_for_function("() => window.REZGEN && REZGEN.state && REZGEN.state.charts.length > 0", timeout=20000)
    page.click("#theme-toggle")
    page.wait_for_function("document.documentElement.dataset.theme === 'dark'", timeout=5000)
    t.assert_clean()


def _windows(page) -> list[list[float]]:
    return page.evaluate("""() => REZGEN.state.charts.map(c =>
        c.inst.getModel().getComponent('xAxis', 0).axis.scale.getExtent())""")


def test_drag_zooms_every_chart_and_double_click_resets(site, tab):
    t = tab()
    page = t.open(site / "index.html")
    full = _windows(page)[0]
    box = page.locator(CPU_BUSY).bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.35, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=8)
    page.mouse.up()
    page.wait_for_function("REZGEN.state.view !== null")
    zoomed = _windows(page)
    assert zoomed[0][1] - zoomed[0][0] < (full[1] - full[0]) * 0.5
    assert all(abs(w[0] - zoomed[0][0]) < 1 and abs(w[1] - zoomed[0][1]) < 1 for w in zoomed), zoomed
    page.mouse.dblclick(box["x"] + box["width"] / 2, y)
    page.wait_for_function("REZGEN.state.view === null")
    assert _windows(page)[0] == full
    t.assert_clean()


def test_every_page_opens_from_disk_without_errors(site, tab):
    pages = sorted(p for p in site.glob("*.html"))
    assert len(pages) >= 4
    t = tab()
    for path in pages:
        page = t.open(path, charts=False)
        page.wait_for_timeout(300)
        status = page.locator("#status")
        if status.count():
            assert "error" not in (status.get_attribute("class") or ""), (path.name, status.text_content())
    t.assert_clean()


def test_percentile_chart_has_the_five_series_and_toggles_to_buckets(site, tab):
    t = tab()
    page = t.open(site / "syscall.html")
    chart = page.locator(".chart-percentiles").first
    chart.scroll_into_view_if_needed()
    page.wait_for_function("() => REZGEN.state.charts.some(c => c.kind === 'percentiles')")
    names = page.evaluate("""() => echarts.getInstanceByDom(document.querySelector('.chart-percentiles'))
                                   .getOption().series.map(s => s.name)""")
    assert names == ["p50", "p90", "p99", "p99.9", "p99.99"]
    page.locator(".mode-toggle").first.click()
    kind = page.evaluate("document.querySelector('.chart-percentiles').__rezgen.kind")
    assert kind == "buckets"
    t.assert_clean()


def test_metric_browser_filters_and_charts_a_metric(site, tab):
    t = tab()
    page = t.open(site / "metrics.html", charts=False)
    total = page.locator("#metric-table tbody tr").count()
    page.fill("#metric-search", "cpu_usage")
    shown = page.locator("#metric-table tbody tr:not([hidden])")
    assert 0 < shown.count() < total
    shown.first.click()
    page.wait_for_function("() => REZGEN.state.charts.length === 1")
    assert page.locator("#metric-view").is_visible()
    t.assert_clean()


def test_system_page_lists_the_recorded_machine(site, tab):
    t = tab()
    page = t.open(site / "system.html", charts=False)
    text = page.locator("#content").text_content()
    assert "AMD EPYC 7R13" in text and "L3" in text and "NVIDIA L4" in text
    t.assert_clean()


def test_series_names_from_the_recording_are_text_not_markup(site, tab, tmp_path):
    """Label values (cgroup names) reach legends and tooltips; markup in them must stay inert text."""
    hostile = tmp_path / "hostile"
    shutil.copytree(site, hostile)
    path = hostile / "data" / "_" / "overview.js"
    script = path.read_text()
    key, payload = script[len("REZGEN.register("):].rsplit(");", 1)[0].split(",", 1)
    data = json.loads(payload)
    plot = data["groups"][0]["plots"][0]
    plot["names"] = [HOSTILE + name for name in plot["names"]]
    data["events"] = [{"t": data["range"]["start"] + 60000, "text": HOSTILE, "kind": "note"}]
    path.write_text(f"REZGEN.register({key},{json.dumps(data)});\n")
    t = tab()
    page = t.open(hostile / "index.html")
    box = page.locator(f'[data-plot-id="{plot["id"]}"]').bounding_box()
    for frac in (0.2, 0.5, 0.8):
        page.mouse.move(box["x"] + box["width"] * frac, box["y"] + box["height"] / 2)
        page.wait_for_timeout(100)
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x]").count() == 0
    t.assert_clean()
