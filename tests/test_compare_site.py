"""The compare site in a real headless Chromium, opened from file://.

- Every page opens without console errors and requests nothing outside the site directory.
- A line chart overlays A and B as series named by alias, whose points are each recording's single-mode values
  at the same offsets ([ms since that file's start, value]), in blue and green on both themes.
- The difference heatmap's cells equal B − A computed here from the two sides' data, row by row (CPUs both have)
  and column by column (B's column against A's column covering the same elapsed time).
- A chart only one recording can draw says which recording lacks it.
- The What-changed page lists the injected change first, filters by section, and its rows link to their charts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from browser import Tab as SiteTab
from shared import shared_recording
from siterecordings import write_nodes, write_two_hosts

from rezgen.synthetic.sample import generate_sample

pytestmark = pytest.mark.browser

BLUE, GREEN = "#3b82f6", "#22a55b"


def rezgen(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rezgen", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def build(out: Path, *args: object) -> Path:
    done = rezgen("build", "-q", *args, "-o", out)
    assert done.returncode == 0, done.stderr
    return out


def data_of(site: Path, route: str, host: str = "_") -> dict:
    text = (site / "data" / host / f"{route}.js").read_text()
    return json.loads(text[text.index(",") + 1 : text.rindex(")")])


def plot_of(data: dict, plot_id: str) -> dict:
    return next(p for g in data["groups"] for p in g["plots"] if p["id"] == plot_id)


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("compare")
    ab, demo = shared_recording("AB_base.parquet"), shared_recording("demo.parquet")
    base, exp = tmp / "base.parquet", tmp / "exp.parquet"
    for path, extra in ((base, []), (exp, ["--scale", "network_bytes=1.5"])):
        assert rezgen("sample", "--seed", 5, "--duration", "5m", "--cpus", 4, "-o", path, *extra).returncode == 0
    fine, coarse = tmp / "fine.parquet", tmp / "coarse.parquet"  # 1 s for 4 min, 2 s for 5 min, other seeds
    generate_sample(fine, duration_s=240, cpus=4, interval_ms=1000, seed=8)
    generate_sample(coarse, duration_s=300, cpus=4, interval_ms=2000, seed=9, start_ns=1_800_000_000 * 10**9)
    two, nodes = tmp / "two.parquet", tmp / "nodes.parquet"
    write_two_hosts(two)
    write_nodes(nodes, ["beta", "gamma"])
    return {"real": build(tmp / "real", f"ab={ab}", f"demo={demo}"), "ab": build(tmp / "ab", ab),
            "nodes": build(tmp / "nodes", f"two={two}", f"nodes={nodes}"),
            "intervals": build(tmp / "intervals", f"fine={fine}", f"coarse={coarse}"),
            "demo": build(tmp / "demo", demo), "sample": build(tmp / "sample", f"base={base}", f"exp={exp}")}


class Tab(SiteTab):
    """A compare site's page, with the series of any chart."""

    def series(self, selector: str) -> list[dict]:
        """name, data and colour of each series of the chart in the element `selector` (scrolled into view)."""
        self.page.locator(selector).first.scroll_into_view_if_needed()
        self.page.wait_for_function(
            "s => { const el = document.querySelector(s); return el && echarts.getInstanceByDom(el); }",
            arg=selector, timeout=20000)
        return self.page.evaluate("""s => echarts.getInstanceByDom(document.querySelector(s)).getOption().series
            .map(x => ({name: x.name, data: x.data, color: x.lineStyle && x.lineStyle.color}))""", selector)

@pytest.fixture
def tab(tab):
    return lambda site: tab(site, Tab)


def test_every_compare_page_opens_from_file_draws_every_chart_without_errors_or_outside_requests(sites, tab):
    site = sites["real"]
    t = tab(site)
    for page in sorted(p.name for p in site.glob("*.html")):
        t.open(page, charts=False)
        t.page.wait_for_load_state("load")
        for element in t.page.query_selector_all(".chart[data-plot-id]"):
            element.scroll_into_view_if_needed()
            t.page.wait_for_timeout(10)
        # every panel is drawn: charts (each with an ECharts instance) or a message saying why not
        t.page.wait_for_function("""() => Array.from(document.querySelectorAll('.chart[data-plot-id]')).every(el =>
            el.classList.contains('chart-message') || (el.querySelector('.ab-chart:not([hidden])') &&
            Array.from(el.querySelectorAll('.ab-chart:not([hidden])')).every(c => echarts.getInstanceByDom(c))))""",
                                 timeout=30000)
    assert t.errors == [], t.errors
    assert t.outside() == [], t.outside()


def test_overlaid_lines_are_each_recordings_single_mode_values_at_the_same_offsets(sites, tab):
    t = tab(sites["real"])
    t.open("index.html")
    got = {s["name"]: s for s in t.series('.ab-main[data-plot-id="cpu-busy"]')}
    assert set(got) == {"ab", "demo"}
    for alias, name in (("ab", "ab"), ("demo", "demo")):
        single = data_of(sites[name], "overview")
        start = single["range"]["start"]
        level = plot_of(single, "cpu-busy")["levels"][-1]
        assert got[alias]["data"] == [[t - start, v] for t, v in zip(level["t"], level["values"][0])]
    assert got["ab"]["color"] == BLUE and got["demo"]["color"] == GREEN


def test_a_and_b_keep_their_colours_on_the_dark_and_the_light_theme(sites, tab):
    t = tab(sites["real"])
    page = t.open("index.html")
    colours = []
    for _ in range(2):
        colours.append([s["color"] for s in t.series('.ab-main[data-plot-id="cpu-busy"]')])
        page.click("#theme-toggle")
        page.wait_for_timeout(100)
    assert colours == [[BLUE, GREEN], [BLUE, GREEN]]
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") in ("dark", "light")


def _expected_difference(plot: dict) -> list[list]:
    """[t, row, B − A] per cell from the two sides' coarsest levels (see the module docstring)."""
    (a, step_a), (b, _) = ((side["data"], side["step"]) for side in plot["sides"])
    la, lb = a["levels"][0], b["levels"][0]
    names = [n for n in b["names"] if n in a["names"]]
    width_a = la.get("bucket", 1) * step_a
    cells = []
    for row, name in enumerate(names):
        ra, rb = la["values"][a["names"].index(name)], lb["values"][b["names"].index(name)]
        for i, t in enumerate(lb["t"]):
            j = max((k for k, ta in enumerate(la["t"]) if ta <= t), default=None)
            if j is None or t - la["t"][j] >= width_a or rb[i] is None or ra[j] is None:
                continue
            cells.append([t, row, rb[i] - ra[j]])
    return cells


@pytest.mark.parametrize("name", ["real", "intervals"])  # other nodes and lengths; other intervals and starts
def test_the_difference_heatmap_is_b_minus_a_cell_by_cell(sites, tab, name):
    plot = plot_of(data_of(sites[name], "overview"), "cpu-busy-heatmap")
    assert all(side["data"] for side in plot["sides"])
    t = tab(sites[name])
    page = t.open("index.html")
    toggle = page.locator('[data-ab-toggle="cpu-busy-heatmap"]')
    toggle.scroll_into_view_if_needed()
    toggle.click()
    drawn = t.series('.ab-diff[data-plot-id="cpu-busy-heatmap"]')[0]["data"]
    expected = _expected_difference(plot)
    assert expected, "no cell in common"
    assert len(drawn) == len(expected)
    for got, want in zip(sorted(drawn, key=lambda c: (c[1], c[0])), sorted(expected, key=lambda c: (c[1], c[0]))):
        assert got[:2] == want[:2]
        assert got[2] == pytest.approx(want[2], rel=1e-12, abs=1e-15)
    # side by side, the two heatmaps share one colour scale
    toggle.click()
    scales = [page.evaluate("""s => { const o = echarts.getInstanceByDom(document.querySelector(s)).getOption();
        return [o.visualMap[0].min, o.visualMap[0].max]; }""", f'.ab-heat[data-side="{side["alias"]}"]')
              for side in plot["sides"]]
    assert scales[0] == scales[1]


def _expected_bucket_difference(plot: dict) -> list[list]:
    """[t, row, B − A] per cell of two bucket heatmaps: rows are the bucket edges of either (a bucket without a
    count in a column holds zero), B's columns against A's column covering the same elapsed time."""
    a, b = (side["data"]["buckets"] for side in plot["sides"])
    edges = sorted(set(a["edges"]) | set(b["edges"]))

    def grid(heat: dict) -> list[list[float]]:
        rows = [[0.0] * len(heat["t"]) for _ in edges]
        for column, bucket, rate in heat["cells"]:
            rows[edges.index(heat["edges"][bucket])][column] = rate
        return rows

    ga, gb = grid(a), grid(b)
    width_a = a["t"][1] - a["t"][0]
    cells = []
    for i, t in enumerate(b["t"]):
        j = max((k for k, ta in enumerate(a["t"]) if ta <= t), default=None)
        if j is None or t - a["t"][j] >= width_a:
            continue
        cells += [[t, row, gb[row][i] - ga[row][j]] for row in range(len(edges))]
    return cells


def test_the_bucket_heatmap_difference_is_b_minus_a_cell_by_cell(sites, tab):
    plot = plot_of(data_of(sites["real"], "overview"), "tcp-packet-latency")
    t = tab(sites["real"])
    page = t.open("index.html")
    heatmap = page.locator('[data-ab-toggle="tcp-packet-latency"][data-ab-mode="heatmap"]')
    heatmap.scroll_into_view_if_needed()
    heatmap.click()
    page.locator('[data-ab-toggle="tcp-packet-latency"][data-ab-mode="diff"]').click()
    drawn = t.series('.ab-diff[data-plot-id="tcp-packet-latency"]')[0]["data"]
    expected = _expected_bucket_difference(plot)
    assert expected
    key = lambda c: (c[1], c[0])  # noqa: E731
    assert [c[:2] for c in sorted(drawn, key=key)] == [c[:2] for c in sorted(expected, key=key)]
    for got, want in zip(sorted(drawn, key=key), sorted(expected, key=key)):
        assert got[2] == pytest.approx(want[2], rel=1e-12, abs=1e-12)
    assert t.errors == []


def test_a_chart_only_one_recording_can_draw_says_which_one_lacks_it(sites, tab):
    site = sites["real"]
    one_sided = [(route.stem, p["id"], next(s["alias"] for s in p["sides"] if s["data"] is None))
                 for route in (site / "data" / "_").glob("*.js") for g in data_of(site, route.stem)["groups"]
                 for p in g["plots"] if "sides" in p and any(s["data"] is None for s in p["sides"])]
    assert one_sided
    route, plot_id, lacking = one_sided[0]
    t = tab(site)
    page = t.open("index.html" if route == "overview" else f"{route}.html")
    page.locator(f'.chart[data-plot-id="{plot_id}"]').scroll_into_view_if_needed()
    note = page.wait_for_selector(f'.chart[data-plot-id="{plot_id}"] .ab-note', timeout=20000)
    assert f"{lacking} does not record" in note.text_content()


def test_what_changed_lists_the_injected_change_first_filters_by_section_and_links_to_the_chart(sites, tab):
    t = tab(sites["sample"])
    page = t.open("changes.html", charts=False)
    page.wait_for_load_state("load")
    first = page.locator("#changes tbody tr").first
    assert first.get_attribute("data-plot") in ("network-transmit-bandwidth", "network-receive-bandwidth",
                                                "bandwidth-tx", "bandwidth-rx")
    assert "+50.0" in first.locator(".change").text_content()
    page.select_option("#changes-section", "network")
    shown = page.locator("#changes tbody tr:not([hidden])")
    assert {row.get_attribute("data-route") for row in shown.all()} == {"network"}
    assert shown.first.locator(".rank").text_content() == "1"
    plot_id = shown.first.get_attribute("data-plot")
    shown.first.locator("a").click()
    page.wait_for_load_state("load")
    assert page.url.split("/")[-1].startswith("network.html?plot=")
    page.wait_for_selector(f'.panel.ab-target .chart[data-plot-id="{plot_id}"]', timeout=10000)
    assert t.errors == []


def test_the_host_selector_shows_each_pair_and_says_when_a_node_is_in_one_recording_only(sites, tab):
    t = tab(sites["nodes"])
    page = t.open("index.html?host=beta")
    assert page.locator("#ab-alone").is_hidden()
    assert {s["name"] for s in t.series('.ab-main[data-plot-id="cpu-busy"]')} == {"two", "nodes"}
    page.select_option("#host-select", "alpha")
    page.wait_for_url("**host=alpha**")
    page.wait_for_function("() => REZGEN.state && REZGEN.state.charts.length > 0", timeout=20000)
    alone = page.locator("#ab-alone")
    alone.wait_for(state="visible")
    assert "only in two" in alone.text_content() and "nodes has no such node" in alone.text_content()
    assert {s["name"] for s in t.series('.ab-main[data-plot-id="cpu-busy"]')} == {"two"}
    assert t.errors == []
