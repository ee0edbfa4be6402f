"""The built static site in a real browser: pages opened from file:// in headless Chromium (Playwright).

Skips without Playwright or a Chromium binary on a developer machine; fails in CI, where both must be installed
(`pip install playwright` comes with the test extras; Chromium from Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from browser import chromium, launched
from rawparquet import RawRecording
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


@pytest.mark.browser
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


@pytest.mark.browser
def test_theme_toggle_flips_and_persists(site, tab):
    t = tab(theme="dark")
    page = t.open(site / "index.html")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    # (the data in first: a reload while its scripts still load would count their cancelled loads as errors)
    page.wait_for_function("() => window.REZGEN && REZGEN.state && REZGEN.state.charts.length > 0", timeout=20000)
    page.click("#theme-toggle")
    page.wait_for_function("document.documentElement.dataset.theme === 'light'", timeout=30000)
    page.reload(wait_until="domcontentloaded")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"  # set before the page paints
    page.wait_for_function("() => window.REZGEN && REZGEN.state && REZGEN.state.charts.length > 0", timeout=20000)
    page.click("#theme-toggle")
    page.wait_for_function("document.documentElement.dataset.theme === 'dark'", timeout=30000)
    t.assert_clean()


def _windows(page) -> list[list[float]]:
    return page.evaluate("""() => REZGEN.state.charts.map(c =>
        c.inst.getModel().getComponent('xAxis', 0).axis.scale.getExtent())""")


@pytest.mark.browser
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


@pytest.mark.browser
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


@pytest.mark.browser
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


@pytest.mark.browser
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


@pytest.mark.browser
def test_system_page_lists_the_recorded_machine(site, tab):
    t = tab()
    page = t.open(site / "system.html", charts=False)
    text = page.locator("#content").text_content()
    assert "AMD EPYC 7R13" in text and "L3" in text and "NVIDIA L4" in text
    t.assert_clean()


@pytest.mark.browser
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


# ---- pages that never mislead -------------------------------------------------------------------------------------

def _build(recording: Path, out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "rezgen", "build", str(recording), "-o", str(out), "-q"],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


def _two_nodes(out: Path, own_systeminfo: bool) -> tuple[dict, dict]:
    """A combined two-node recording made from real ones: c16's `rezolus` node (its CPU metrics) plus the same
    columns again as node `gpu-box`, whose machine is sglang_gemma3's (the real systeminfo of another host), as
    `rezolus parquet combine` lays them out (format doc §1.5, §1.8). With `own_systeminfo` each node's copy is in
    per_source_metadata; without, the file keeps only the top-level copy (of `rezolus`). Returns both machines."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(shared_recording("c16.parquet"))
    other = pq.ParquetFile(shared_recording("sglang_gemma3.parquet"))
    footer = {k.decode(): v.decode() for k, v in source.metadata.metadata.items() if k != b"ARROW:schema"}
    first = json.loads(footer["systeminfo"])
    second = json.loads(other.metadata.metadata[b"systeminfo"].decode())
    assert first["hostname"] != second["hostname"] and first["cpus"] != second["cpus"]
    table = source.read()
    fields, columns = [table.schema.field(0), table.schema.field(1)], [table.column(0), table.column(1)]
    for node in ("rezolus", "gpu-box"):
        for i, f in enumerate(table.schema):
            meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            if meta.get("node") == "rezolus" and meta.get("metric") in ("cpu_usage", "cpu_cores"):
                meta["node"] = node
                fields.append(pa.field(f"{node}::{f.name.split('::', 1)[1]}", f.type, f.nullable, metadata=meta))
                columns.append(table.column(i))
    member = {"version": "5.11.0"}
    footer["per_source_metadata"] = json.dumps({"rezolus": {
        "rezolus": {**member, "node": "rezolus", **({"systeminfo": first} if own_systeminfo else {})},
        "gpu-box": {**member, "node": "gpu-box", **({"systeminfo": second} if own_systeminfo else {})}}})
    footer["source"] = '["rezolus"]'
    schema = pa.schema(fields, metadata=footer)
    pq.write_table(pa.Table.from_arrays(columns, schema=schema), out)
    return first, second


@pytest.mark.browser
def test_system_page_follows_the_host_selector(tab, tmp_path):
    first, second = _two_nodes(tmp_path / "two.parquet", own_systeminfo=True)
    site = _build(tmp_path / "two.parquet", tmp_path / "site")
    t = tab()
    page = t.open(site / "system.html", charts=False)
    assert page.locator("#host-select option").all_text_contents() == ["gpu-box", "rezolus"]
    for host, machine in (("rezolus", first), ("gpu-box", second), ("rezolus", first)):
        with page.expect_navigation():
            page.select_option("#host-select", host)
        shown = page.locator(".host-system:visible")
        assert shown.count() == 1 and shown.get_attribute("data-host") == host
        text = shown.text_content()
        assert machine["hostname"] in text and machine["cpu_model"] in text
        cpus = shown.locator("tr", has_text="Logical CPUs").locator("td").text_content().strip()
        assert cpus == f"{machine['cpus']:,}"
        other = second if machine is first else first
        assert other["hostname"] not in text
    t.assert_clean()


@pytest.mark.browser
def test_system_page_says_which_node_a_single_description_is_of(tab, tmp_path):
    first, _ = _two_nodes(tmp_path / "one.parquet", own_systeminfo=False)
    site = _build(tmp_path / "one.parquet", tmp_path / "site")
    t = tab()
    page = t.open(site / "system.html", charts=False)
    page.goto((site / "system.html").as_uri() + "?host=gpu-box")
    shown = page.locator(".host-system:visible")
    assert shown.get_attribute("data-host") == "gpu-box"
    assert "No system information was recorded for node gpu-box" in shown.text_content()
    assert "describes node rezolus only" in shown.text_content()
    assert first["hostname"] not in shown.text_content()  # never another node's machine
    page.goto((site / "system.html").as_uri() + "?host=rezolus")
    shown = page.locator(".host-system:visible")
    assert "one system description, of node rezolus" in shown.text_content()
    assert first["cpu_model"] in shown.text_content()
    t.assert_clean()


@pytest.fixture(scope="module")
def gemma_site(tmp_path_factory) -> Path:
    chromium()
    return _build(shared_recording("sglang_gemma3.parquet"), tmp_path_factory.mktemp("site") / "gemma")


def _payload(path: Path) -> dict:
    script = path.read_text()
    return json.loads(script[len("REZGEN.register("):].rsplit(");", 1)[0].split(",", 1)[1])


def _plot(site: Path, route: str, plot_id: str) -> dict:
    return next(p for g in _payload(site / "data" / "_" / f"{route}.js")["groups"] for p in g["plots"]
                if p["id"] == plot_id)


def _values(plot: dict) -> list[float]:
    return [v for row in plot["levels"][0]["values"] for v in row if v is not None]


def _ns_label(ns: float) -> str:
    """A duration as the reader expects to see it: 1 µs, 20 ms, 100 s (seconds are the largest unit)."""
    for unit, size in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= size:
            return f"{ns / size:g} {unit}"
    return f"{ns:g} ns"


def _chart_ready(page, plot_id: str) -> None:
    page.locator(f'[data-plot-id="{plot_id}"]').scroll_into_view_if_needed()
    page.wait_for_function(f"() => !!echarts.getInstanceByDom(document.querySelector('[data-plot-id=\"{plot_id}\"]'))",
                           timeout=20000)


def _y_labels(page, selector: str) -> list[str]:
    """The y axis labels drawn on the canvas of the chart at `selector` (those ECharts hid as overlapping left
    out), bottom to top."""
    return page.evaluate(f"""() => {{
        const inst = echarts.getInstanceByDom(document.querySelector('{selector}'));
        const view = inst._componentsViews.find(v => v.__model && v.__model.mainType === 'yAxis');
        const out = [];
        view.group.traverse(el => {{
            if (el.type !== 'text' || el.ignore || el.invisible || !el.style.text) return;
            const r = el.getBoundingRect().clone(); r.applyTransform(el.getComputedTransform());
            out.push([r.y, el.style.text]);
        }});
        return out.sort((a, b) => b[0] - a[0]).map(x => x[1]);
    }}""")


@pytest.mark.browser
def test_log_axes_label_whole_decades_with_distinct_time_units(site, tab):
    t = tab()
    page = t.open(site / "syscall.html")
    for plot_id in ("syscall-read-latency", "syscall-total-latency", "syscall-time-latency"):
        _chart_ready(page, plot_id)
        values = [v for v in _values(_plot(site, "syscall", plot_id)) if v > 0]
        low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
        high = max(high, low + 1)
        if high - low >= 3:  # every decade of the data, nothing else
            expected = [_ns_label(10.0 ** k) for k in range(low, high + 1)]
        else:  # a narrow range: 1-2-5 steps
            expected = [_ns_label(m * 10.0 ** k) for k in range(low, high) for m in (1, 2, 5)] + \
                [_ns_label(10.0 ** high)]
        assert _y_labels(page, f'[data-plot-id="{plot_id}"]') == expected, plot_id
    # A short chart labels every second decade, still at least four distinct labels.
    page.evaluate("""() => { const el = document.querySelector('[data-plot-id="syscall-total-latency"]');
                             el.style.height = '170px'; el.__rezgen.inst.resize(); el.__rezgen.render(); }""")
    short = _y_labels(page, '[data-plot-id="syscall-total-latency"]')
    assert len(short) >= 4 and len(set(short)) == len(short), short
    t.assert_clean()


@pytest.mark.browser
def test_unitless_prometheus_histogram_gets_time_axis_not_billions(site, tab):
    t = tab()
    page = t.open(site / "metrics.html", charts=False)
    page.fill("#metric-search", "vllm_e2e_request_latency_seconds")
    page.locator('#metric-table tbody tr[data-name="vllm_e2e_request_latency_seconds"]').click()
    page.wait_for_function("() => REZGEN.state.charts.length === 1")
    plot = _payload(site / "data" / "_" / "metrics" / "vllm_e2e_request_latency_seconds.js")["plot"]
    values = [v for v in _values(plot) if v > 0]  # nanoseconds: the recorder scales `_seconds` by 1e9
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    labels = _y_labels(page, "#metric-chart")
    assert labels[0] == _ns_label(10.0 ** low) and labels[-1] == _ns_label(10.0 ** high), labels
    assert all(label.endswith(" s") for label in labels) and len(labels) >= 4, labels
    t.assert_clean()


@pytest.mark.browser
def test_all_zero_chart_says_no_activity(site, tab):
    assert set(_values(_plot(site, "network", "tcp-retransmits"))) == {0}
    t = tab()
    page = t.open(site / "network.html")
    _chart_ready(page, "tcp-retransmits")
    shown = page.evaluate("""() => { const o = echarts.getInstanceByDom(
        document.querySelector('[data-plot-id="tcp-retransmits"]')).getOption();
        return { text: (o.graphic || []).flatMap(g => g.elements || [g]).map(e => e.style && e.style.text),
                 axisLabels: o.yAxis[0].axisLabel.show, line: o.series.map(s => s.lineStyle.opacity) }; }""")
    assert "No activity in this range" in shown["text"]
    assert shown["axisLabels"] is False and set(shown["line"]) == {0}
    assert _y_labels(page, '[data-plot-id="tcp-retransmits"]') == []
    t.assert_clean()


@pytest.mark.browser
def test_fixed_percent_axis_zooms_to_small_data_and_says_so(site, tab):
    peak = max(abs(v) for v in _values(_plot(site, "softirq", "softirq-net_rx-time")))
    assert 0 < peak < 0.05
    t = tab()
    page = t.open(site / "softirq.html")
    _chart_ready(page, "softirq-net_rx-time")
    shown = page.evaluate("""() => { const inst = echarts.getInstanceByDom(
        document.querySelector('[data-plot-id="softirq-net_rx-time"]'));
        return { extent: inst.getModel().getComponent('yAxis', 0).axis.scale.getExtent(),
                 text: (inst.getOption().graphic || []).flatMap(g => g.elements || [g])
                                                       .map(e => e.style && e.style.text) }; }""")
    low, top = shown["extent"]
    assert low == 0 and peak <= top <= 2.5 * peak  # the data fills a good part of the height
    assert f"zoomed: max {float(f'{peak * 100:.2g}'):g}%" in shown["text"], shown["text"]
    labels = _y_labels(page, '[data-plot-id="softirq-net_rx-time"]')
    assert len(labels) >= 4 and len(set(labels)) == len(labels) and all("e-" not in x for x in labels), labels
    # Its per-CPU heatmap: the colour scale spans the data, not 0-100 % (one colour for every cell).
    cells = max(_values(_plot(site, "softirq", "softirq-total-time-heatmap")))
    assert 0 < cells < 0.05
    _chart_ready(page, "softirq-total-time-heatmap")
    scale = page.evaluate("""() => echarts.getInstanceByDom(
        document.querySelector('[data-plot-id="softirq-total-time-heatmap"]')).getOption().visualMap[0]""")
    assert scale["max"] == pytest.approx(cells) and scale["text"][0] == f"{float(f'{cells * 100:.2g}'):g}%"
    t.assert_clean()


@pytest.mark.browser
def test_a_group_with_one_chart_uses_the_full_width(gemma_site, tab):
    t = tab()
    page = t.open(gemma_site / "gpu.html")
    groups = page.evaluate("""() => Array.from(document.querySelectorAll('section.group')).map(g => ({
        grid: g.querySelector('.grid').getBoundingClientRect().width,
        panels: Array.from(g.querySelectorAll('.panel')).map(p => p.getBoundingClientRect().width) }))""")
    alone = [g for g in groups if len(g["panels"]) == 1]
    assert len(alone) >= 3
    assert all(abs(g["panels"][0] - g["grid"]) < 2 for g in alone), alone
    t.assert_clean()


@pytest.mark.browser
def test_system_page_labels_are_not_cut(site, tab):
    t = tab(width=1100)
    page = t.open(site / "system.html", charts=False)
    cells = page.evaluate("""() => Array.from(document.querySelectorAll('.kv th')).map(th =>
        [th.textContent, th.scrollWidth, th.clientWidth, getComputedStyle(th).textOverflow])""")
    assert any(text == "Physical cores" for text, *_ in cells)
    assert all(scroll <= client for _, scroll, client, _ in cells), cells
    t.assert_clean()


@pytest.mark.browser
def test_cgroup_legend_shows_every_label_whole(gemma_site, tab):
    t = tab()
    page = t.open(gemma_site / "cgroups.html")
    _chart_ready(page, "individual-total-cores")
    picked = page.evaluate("REZGEN.cgroups.picked()")  # the legend lists the picked cgroups (pages.cgroups)
    names = [n for n in _plot(gemma_site, "cgroups", "individual-total-cores")["names"] if n in picked]
    shown = page.evaluate("""() => {
        const inst = echarts.getInstanceByDom(document.querySelector('[data-plot-id="individual-total-cores"]'));
        const legend = inst._componentsViews.find(v => v.type.indexOf('legend') === 0);
        const items = [];
        legend.getContentGroup().eachChild(item => {
            let text = null;
            item.traverse(el => { if (el.type === 'text' && typeof el.style.text === 'string') text = el.style.text; });
            const r = item.getBoundingRect().clone(); r.applyTransform(item.getComputedTransform());
            items.push({ text, x: r.x, y: r.y, w: r.width, h: r.height });
        });
        const grid = inst.getModel().getComponent('grid', 0).coordinateSystem.getRect();
        return { items, width: inst.getWidth(), height: inst.getHeight(), gridBottom: grid.y + grid.height };
    }""")
    items = shown["items"]
    assert len(items) == len(names) > 2
    for name, item in zip(names, items):
        text = item["text"]
        assert not text.endswith(("…", "...")), text  # not truncated at its end
        assert name == text or (text.startswith("…/") and name.endswith(text[1:])), (name, text)
        assert item["x"] >= 0 and item["x"] + item["w"] <= shown["width"] + 0.5
        assert shown["gridBottom"] + 12 < item["y"] and item["y"] + item["h"] <= shown["height"] + 0.5
    t.assert_clean()


def test_cgroup_ipc_has_no_other_series_summing_ratios(gemma_site):
    raw = RawRecording(shared_recording("sglang_gemma3.parquet"))
    cgroups = {c.labels.get("name") for c in raw.select("cgroup_cpu_instructions")} - {None, ""}
    plot = _plot(gemma_site, "cgroups", "individual-ipc")
    # Every cgroup's IPC is shipped for the page to pick from (pages.cgroups), none summed into an "Other".
    assert "Other" not in plot["names"] and len(plot["names"]) > 5
    assert set(plot["names"]) <= cgroups
