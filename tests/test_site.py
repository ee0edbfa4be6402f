"""`rezgen build`, end to end through the command line, on small synthetic recordings (tests/siterecordings.py).

What a built site must do:
- A combined recording of several agents gets a host selector, and every chart shows the chosen host's data only:
  the overview's `cpu-busy` equals `sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9` computed independently from
  that host's raw columns (Prometheus semantics: irate from the last two samples in (t − 5m, t], a counter that
  goes down restarted from zero; the gauge is its newest sample in (t − 5m, t]; steps from the first timestamp
  rounded up to a whole ms, every sampling interval), null where the recording has no row in the last two
  sampling intervals; the per-CPU heatmap has one row per CPU of that host.
- Names from the recording (cgroup names) are text everywhere: no markup from them is ever parsed, and the data
  files hold them as JSON strings that cannot close a <script>.
- A build that fails (bad recording, bad dashboards, bad templates) exits non-zero with one line on stderr that
  starts with `rezgen:`, and leaves the previous site byte for byte as it was, with nothing left beside it.
- `--dashboards` replaces the sections; `--templates` overrides templates, which can extend the defaults as
  `default:<name>`.
- Sections without data are left out of the navigation; plots without data are listed as "not in this recording";
  per-CPU heatmaps are dropped when there is one CPU.
- Every page opens from file:// without console errors and requests nothing outside the site directory.

Browser tests skip without Playwright or Chromium on a developer machine and fail in CI (`CI` set).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from browser import Tab
from rawparquet import RawRecording
from shared import REPO_ROOT, shared_recording
from siterecordings import HOSTILE_NAMES, HOSTS, write_hostile_cgroups, write_nodes, write_two_hosts

NS = 1_000_000_000
FIVE_MINUTES = 300 * NS
REL = 1e-9


# -- running rezgen ---------------------------------------------------------------------------------------------

def rezgen(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rezgen", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=600)


def build(recording: Path, out: Path, *options: object) -> Path:
    done = rezgen("build", recording, "-o", out, "-q", *options)
    assert done.returncode == 0, done.stderr
    assert (out / "index.html").is_file()
    return out


def payload(site: Path, host: str, route: str) -> dict:
    """The payload of a data file (`REZGEN.register("<key>", {...});`)."""
    text = (site / "data" / host / f"{route}.js").read_text(encoding="utf-8")
    prefix = "REZGEN.register("
    assert text.startswith(prefix) and text.endswith(");\n"), text[:80]
    key, body = text[len(prefix):-3].split(",", 1)
    assert json.loads(key) == f"{host}/{route}"
    return json.loads(body)


def _plots(data: dict) -> list[dict]:
    """The plots of a section payload, or the one plot of a metric payload."""
    return [p for g in data["groups"] for p in g["plots"]] if "groups" in data else [data["plot"]]


def plot_of(data: dict, plot_id: str) -> dict | None:
    return next((p for p in _plots(data) if p["id"] == plot_id), None)


# -- reading a page without a browser ---------------------------------------------------------------------------

class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        return [e for e in self.iter() if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)
                and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]


class _TreeBuilder(HTMLParser):
    VOID = frozenset({"meta", "link", "br", "img", "input", "col", "hr", "source", "path", "circle"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Element("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def html(path: Path) -> Element:
    parser = _TreeBuilder()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.root


def nav_sections(page: Element) -> list[str]:
    """Titles of the sections in the navigation."""
    (nav,) = page.find_all("nav")
    (sections, _pages) = nav.find_all("ul")
    return [label.text().strip() for label in sections.find_all("span", cls="nav-label")]


def chart_ids(page: Element) -> list[str]:
    return [e.attrs["data-plot-id"] for e in page.find_all("div", cls="chart") if "data-plot-id" in e.attrs]


def missing_titles(page: Element) -> list[str]:
    lists = page.find_all("details", cls="missing")
    return [t.text() for t in lists[0].find_all("span", cls="missing-title")] if lists else []


def tree_digest(directory: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under a directory (and the directories themselves)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# -- independent expectations -----------------------------------------------------------------------------------

def eval_times(rec: RawRecording) -> list[int]:
    """Chart steps: from the first timestamp rounded up to a whole ms to the last one, every sampling interval."""
    first, last = int(rec.timestamps[0]), int(rec.timestamps[-1])
    start = -(-first // 1_000_000) * 1_000_000
    return list(range(start, last + 1, rec.interval_ns))


def samples(rec: RawRecording, metric: str, **labels: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(times, values) of the non-null samples of every matching counter or gauge column."""
    out = []
    for column in rec.select(metric, **labels):
        values = rec.values(column)
        keep = ~np.isnan(values)
        out.append((rec.timestamps[keep], values[keep]))
    assert out, f"no {metric} {labels} in {rec.path}"
    return out


def window(times: np.ndarray, t: int) -> np.ndarray:
    return np.flatnonzero((times > t - FIVE_MINUTES) & (times <= t))


def irate_at(times: np.ndarray, values: np.ndarray, t: int) -> float | None:
    idx = window(times, t)
    if len(idx) < 2:
        return None
    a, b = idx[-2], idx[-1]
    change = values[b] - values[a] if values[b] >= values[a] else values[b]  # a decrease is a counter restart
    return float(change) / ((int(times[b]) - int(times[a])) / NS)


def latest_at(times: np.ndarray, values: np.ndarray, t: int) -> float | None:
    idx = window(times, t)
    return float(values[idx[-1]]) if len(idx) else None


def expected_cpu_busy(rec: RawRecording, **labels: str) -> list[tuple[int, float | None]]:
    """`sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9` over the series with `labels`, as [ms, value] pairs;
    None where there is no value or the step lies in a hole of the file: a gap between rows longer than two
    sampling intervals (the whole gap, not only its end)."""
    usage, cores = samples(rec, "cpu_usage", **labels), samples(rec, "cpu_cores", **labels)
    longest = 2 * rec.interval_ns
    out = []
    for t in eval_times(rec):
        rates = [r for r in (irate_at(ts, vs, t) for ts, vs in usage) if r is not None]
        counts = [c for c in (latest_at(ts, vs, t) for ts, vs in cores) if c is not None]
        before, after = rec.timestamps[rec.timestamps <= t], rec.timestamps[rec.timestamps > t]
        in_hole = (not len(before) or t - before[-1] > longest
                   or (len(after) > 0 and after[0] - before[-1] > longest))
        value = sum(rates) / sum(counts) / 1e9 if rates and counts and not in_hole else None
        out.append((t // 1_000_000, value))
    return out


def assert_same_points(actual: list, expected: list[tuple[int, float | None]], what: str) -> None:
    assert [p[0] for p in actual] == [t for t, _ in expected], f"{what}: the steps differ"
    bad = [(t, v, got[1]) for (t, v), got in zip(expected, actual)
           if (v is None) != (got[1] is None) or (v is not None and not math.isclose(got[1], v, rel_tol=REL))]
    assert not bad, f"{what}: {len(bad)} of {len(expected)} points differ, e.g. (ms, expected, got) {bad[:5]}"


# -- recordings and sites ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory) -> Path:
    return write_two_hosts(tmp_path_factory.mktemp("recordings") / "two-hosts.parquet").path


@pytest.fixture(scope="module")
def two_site(two_hosts, tmp_path_factory) -> Path:
    return build(two_hosts, tmp_path_factory.mktemp("sites") / "two-hosts")


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory) -> Path:
    recording = write_hostile_cgroups(tmp_path_factory.mktemp("recordings") / "hostile.parquet").path
    return build(recording, tmp_path_factory.mktemp("sites") / "hostile")


@pytest.fixture(scope="module")
def one_cpu_site(tmp_path_factory) -> Path:
    recording = tmp_path_factory.mktemp("recordings") / "one-cpu.parquet"
    done = rezgen("sample", "-o", recording, "--duration", "3m", "--cpus", "1")
    assert done.returncode == 0, done.stderr
    return build(recording, tmp_path_factory.mktemp("sites") / "one-cpu")


# -- several hosts ----------------------------------------------------------------------------------------------

def test_a_combined_recording_has_a_host_selector_listing_every_node(two_site):
    for name in ("index.html", "cpu.html", "metrics.html", "system.html"):
        (select,) = html(two_site / name).find_all("select", id="host-select")
        assert [o.attrs["value"] for o in select.find_all("option")] == ["alpha", "beta"], name
    assert sorted(p.name for p in (two_site / "data").iterdir()) == ["alpha", "beta"]


@pytest.mark.parametrize("host", ["alpha", "beta"])
def test_each_hosts_data_is_computed_from_that_host_alone(two_site, two_hosts, host):
    rec = RawRecording(two_hosts)
    expected = expected_cpu_busy(rec, node=host)
    combined = expected_cpu_busy(rec)
    assert all(abs(v - c) > 0.1 for (_, v), (_, c) in zip(expected, combined) if v is not None and c is not None), \
        "the recording does not tell the hosts apart"
    assert any(v is None for _, v in expected[1:]) and sum(v is not None for _, v in expected) > 250, \
        "the recording should have a hole and mostly points"
    plot = plot_of(payload(two_site, host, "overview"), "cpu-busy")
    (level,) = plot["levels"]  # a few hundred steps: full resolution only
    assert_same_points(list(zip(level["t"], level["values"][0])), expected, f"{host} cpu-busy data file")


def test_a_single_host_recording_has_no_host_selector(hostile_site):
    assert html(hostile_site / "index.html").find_all("select", id="host-select") == []
    assert [p.name for p in (hostile_site / "data").iterdir()] == ["_"]


# -- hostile names in the data files ----------------------------------------------------------------------------

@pytest.mark.parametrize("data", ["cgroups", "metrics/cgroup_cpu_usage"])
def test_data_files_hold_names_as_json_strings_that_cannot_close_a_script(hostile_site, data):
    path = hostile_site / "data" / "_" / f"{data}.js"
    text = path.read_text(encoding="utf-8")
    body = text[len("REZGEN.register("):-3].split(",", 1)[1]
    names = [n for plot in _plots(json.loads(body)) for n in plot["names"]]
    for name in HOSTILE_NAMES:
        assert any(name in n for n in names), f"{name!r} is not among the names of {path.name}: {names}"
    raw = [text[max(0, i - 20):i + 40] for i in (text.lower().find(tag) for tag in ("<script", "</script", "<img"))
           if i >= 0]
    assert not raw, f"{path.name}: markup from the recording appears unescaped (write '<' as \\u003c): {raw}"


def test_pages_carry_no_markup_from_the_recording(hostile_site):
    for page in hostile_site.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "onerror" not in text and "__xss" not in text, page.name


# -- failures leave the previous site alone ---------------------------------------------------------------------

BAD_TOML = 'title = "Mine"\nroute = "mine\n'
BAD_QUERY = """title = "Mine"
route = "mine"

[[group]]
name = "CPU"

[[group.plot]]
id = "busy"
title = "Busy"
query = "sum(irate(cpu_usage[5m])"
"""
FAILING_QUERY = BAD_QUERY.replace('query = "sum(irate(cpu_usage[5m])"',
                                  'query = "cpu_usage / on (id) cpu_usage"')  # many-to-many: fails when evaluated


def _dashboards(tmp: Path, text: str) -> Path:
    directory = tmp / "dashboards"
    directory.mkdir()
    (directory / "mine.toml").write_text(text)
    return directory


def _templates(tmp: Path, text: str) -> Path:
    directory = tmp / "templates"
    directory.mkdir()
    (directory / "section.html").write_text(text)
    return directory


def _case(name: str, good: Path, tmp: Path) -> list[object]:
    """The arguments of `rezgen build` (without -o) for one kind of bad input."""
    if name == "text file":
        (tmp / "notes.parquet").write_text("timestamp,value\n1,2\n")
        return [tmp / "notes.parquet"]
    if name == "truncated parquet":
        data = good.read_bytes()
        (tmp / "half.parquet").write_bytes(data[: len(data) // 2])
        return [tmp / "half.parquet"]
    if name == "empty file":
        (tmp / "empty.parquet").write_bytes(b"")
        return [tmp / "empty.parquet"]
    if name == "missing file":
        return [tmp / "nowhere.parquet"]
    if name == "directory":
        return [tmp]
    if name == "node name '..'":
        return [write_nodes(tmp / "dots.parquet", ["..", "ok"]).path]
    if name == "dashboard with invalid TOML":
        return [good, "--dashboards", _dashboards(tmp, BAD_TOML)]
    if name == "dashboard with a bad query":
        return [good, "--dashboards", _dashboards(tmp, BAD_QUERY)]
    if name == "dashboard with a query that fails when evaluated":
        # A plot that fails only fails a strict build (otherwise its card shows the error); -q: no progress lines.
        return [good, "--dashboards", _dashboards(tmp, FAILING_QUERY), "-q", "--strict"]
    if name == "missing dashboards directory":
        return [good, "--dashboards", tmp / "no-dashboards"]
    if name == "dashboards directory without dashboards":
        (tmp / "empty-dashboards").mkdir()
        return [good, "--dashboards", tmp / "empty-dashboards"]
    # Templates are rendered after the data is computed: -q keeps the progress lines out of stderr.
    if name == "template with a syntax error":
        return [good, "--templates", _templates(tmp, '{% extends "default:section.html" %}{% block content %}'
                                                     '{% if %}{% endblock %}'), "-q"]
    if name == "template extending one that does not exist":
        return [good, "--templates", _templates(tmp, '{% extends "default:nothing.html" %}'), "-q"]
    if name == "missing templates directory":
        return [good, "--templates", tmp / "no-templates"]
    raise AssertionError(name)


BAD_INPUTS = ["text file", "truncated parquet", "empty file", "missing file", "directory", "node name '..'",
              "dashboard with invalid TOML", "dashboard with a bad query",
              "dashboard with a query that fails when evaluated", "missing dashboards directory",
              "dashboards directory without dashboards", "template with a syntax error",
              "template extending one that does not exist", "missing templates directory"]


@pytest.mark.parametrize("bad", BAD_INPUTS)
def test_a_failed_build_says_why_in_one_line_and_leaves_the_previous_site(two_site, two_hosts, tmp_path, bad):
    parent = tmp_path / "out"
    parent.mkdir()
    site = parent / "site"
    shutil.copytree(two_site, site)
    before = tree_digest(site)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args = _case(bad, two_hosts, inputs)
    done = rezgen("build", args[0], "-o", site, *args[1:])
    assert done.returncode != 0, f"{bad}: the build succeeded"
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rezgen: "), f"{bad}: stderr is {done.stderr!r}"
    assert tree_digest(site) == before, f"{bad}: the previous site changed"
    assert sorted(os.listdir(parent)) == ["site"], f"{bad}: left beside the site: {os.listdir(parent)}"


def test_ctrl_c_ends_a_build_half_way_leaving_the_previous_site(two_site, tmp_path):
    recording = shared_recording("c16.parquet")  # long enough a build to be caught half-way
    parent = tmp_path / "out"
    parent.mkdir()
    site = parent / "site"
    shutil.copytree(two_site, site)
    before = tree_digest(site)
    build = subprocess.Popen([sys.executable, "-m", "rezgen", "build", str(recording), "-o", str(site), "-q"],
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(1000):  # until the build writes its first data file into its temporary directory
        if any(parent.glob(".site.*/data")) or build.poll() is not None:
            break
        time.sleep(0.01)
    assert build.poll() is None, "the build ended before it could be interrupted"
    build.send_signal(signal.SIGINT)
    _, stderr = build.communicate(timeout=30)
    assert build.returncode == 130 and stderr.strip() == "rezgen: aborted", stderr
    assert tree_digest(site) == before
    assert sorted(os.listdir(parent)) == ["site"], os.listdir(parent)


# -- user dashboards and templates ------------------------------------------------------------------------------

USER_SECTION = """title = "My Hosts"
route = "mine"

[[group]]
name = "Mine"

[[group.plot]]
id = "my-busy"
title = "My busy"
query = "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9"
unit = "percentage"

[[group.plot]]
id = "my-gpu"
title = "My GPU"
query = "avg(gpu_utilization)"
"""


def test_user_dashboards_replace_the_default_sections(two_hosts, tmp_path):
    site = build(two_hosts, tmp_path / "site", "--dashboards", _dashboards(tmp_path, USER_SECTION))
    index = html(site / "index.html")
    assert nav_sections(index) == ["My Hosts"]
    assert chart_ids(index) == ["my-busy"]
    assert missing_titles(index) == ["My GPU"]
    assert sorted(p.name for p in site.glob("*.html")) == ["fleet.html", "index.html", "metrics.html", "query.html",
                                                           "system.html"]
    assert sorted(p.name for p in (site / "data" / "beta").glob("*.js")) == ["mine.js"]


def test_a_user_template_can_extend_the_default_one(two_hosts, tmp_path):
    templates = _templates(tmp_path, '{% extends "default:section.html" %}\n{% block content %}'
                                     '<p id="user-marker">{{ page.title }} by us</p>{{ super() }}{% endblock %}\n')
    site = build(two_hosts, tmp_path / "site", "--templates", templates)
    for name, title in (("index.html", "Overview"), ("cpu.html", "CPU")):
        (marker,) = html(site / name).find_all("p", id="user-marker")
        assert marker.text() == f"{title} by us"
    assert "cpu-busy" in chart_ids(html(site / "index.html"))  # the default content is still there
    assert html(site / "metrics.html").find_all("p", id="user-marker") == []  # other templates are untouched


# -- a plot whose query fails on this recording ----------------------------------------------------------------

FAILING_PLOT = USER_SECTION.replace('query = "avg(gpu_utilization)"', 'query = "cpu_cores @ 1e30"').replace(
    'id = "my-gpu"', 'id = "far-away"')


def test_a_failing_plot_shows_its_error_in_its_card_and_the_build_warns_once(two_hosts, tmp_path):
    dashboards = _dashboards(tmp_path, FAILING_PLOT)
    done = rezgen("build", two_hosts, "-o", tmp_path / "site", "-q", "--dashboards", dashboards)
    assert done.returncode == 0, done.stderr
    # One line for the plot, though it failed for each of the two hosts.
    warning = (f"rezgen: warning: {dashboards / 'mine.toml'}: plot 'far-away' failed: number too large to fit in "
               "target type (query: cpu_cores @ 1e30)")
    assert done.stderr.splitlines() == [warning]
    site = tmp_path / "site"
    assert chart_ids(html(site / "index.html")) == ["my-busy", "far-away"]  # the card is on the page
    for host in HOSTS:
        data = payload(site, host, "mine")
        failed = plot_of(data, "far-away")
        assert failed["error"] == "number too large to fit in target type"
        assert failed["query"] == "cpu_cores @ 1e30" and "levels" not in failed
        assert plot_of(data, "my-busy")["levels"]  # the other plot is drawn as ever


def test_a_strict_build_with_a_failing_plot_fails_and_keeps_the_previous_site(two_site, two_hosts, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(two_site, site)
    before = tree_digest(site)
    dashboards = _dashboards(tmp_path, FAILING_PLOT)
    done = rezgen("build", two_hosts, "-o", site, "-q", "--strict", "--dashboards", dashboards)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rezgen: {dashboards / 'mine.toml'}: plot 'far-away' failed")
    assert tree_digest(site) == before
    assert sorted(os.listdir(tmp_path)) == ["dashboards", "site"]


# -- what is shown and what is left out -------------------------------------------------------------------------

def test_a_build_ends_holding_no_decoded_series(two_hosts, tmp_path):
    """Each metric's series are released once its metric-browser chart is written (nothing reads them after)."""
    from rezgen.recording.reader import open_recording
    from rezgen.site.build import build_site

    recording = open_recording(two_hosts)
    build_site(recording, tmp_path / "site")
    assert any(True for _ in recording.store)
    assert [series.key for series in recording.store if series.loaded] == []


def test_the_site_directory_can_be_read_by_other_users_as_a_web_server_would(two_site):
    assert two_site.stat().st_mode & 0o777 == 0o755  # its files and directories follow the umask


def test_sections_without_data_are_not_in_the_navigation(two_site):
    sections = nav_sections(html(two_site / "index.html"))
    assert sections == ["Overview", "CPU", "Syscall", "cgroups"]
    for route in ("gpu", "network", "memory", "blockio"):
        assert not (two_site / f"{route}.html").exists()
        assert not (two_site / "data" / "alpha" / f"{route}.js").exists()


def test_plots_without_data_are_listed_as_not_in_the_recording(two_site):
    page = html(two_site / "index.html")
    charts, missing = chart_ids(page), missing_titles(page)
    assert charts[:2] == ["cpu-busy", "cpu-busy-heatmap"] and "syscall-total-latency" in charts
    assert {"Transmit Bandwidth", "Runqueue Latency", "Read IOPS"} <= set(missing)
    titles = {e.text() for e in page.find_all("h3", cls="panel-title")}
    assert not ({"Transmit Bandwidth", "Runqueue Latency", "Read IOPS"} & titles)
    data = payload(two_site, "alpha", "overview")
    assert {p["id"] for g in data["groups"] for p in g["plots"]} == set(charts)


def test_per_cpu_heatmaps_are_dropped_for_one_cpu(one_cpu_site):
    overview = chart_ids(html(one_cpu_site / "index.html"))
    cpu = chart_ids(html(one_cpu_site / "cpu.html"))
    assert "cpu-busy" in overview and "busy-pct" in cpu
    assert "cpu-busy-heatmap" not in overview
    assert not [i for i in cpu if i.endswith("-per-cpu")], cpu
    data = payload(one_cpu_site, "_", "cpu")
    assert not [p for g in data["groups"] for p in g["plots"] if p["kind"] == "heatmap"]


# -- in a browser -----------------------------------------------------------------------------------------------

def chart_option(page, plot_id: str) -> dict:
    """Scroll a chart into view, wait until it is drawn; its series (name, data) and y-axis categories."""
    page.wait_for_function("""(id) => { const el = document.querySelector(`[data-plot-id="${id}"]`);
        el.scrollIntoView(); return !!echarts.getInstanceByDom(el); }""", arg=plot_id, timeout=20000)
    return page.evaluate("""(id) => {
        const o = echarts.getInstanceByDom(document.querySelector(`[data-plot-id="${id}"]`)).getOption();
        return {series: o.series.map(s => ({name: s.name, data: s.data})), yAxis: o.yAxis.map(a => a.data || null)};
    }""", plot_id)


@pytest.mark.browser
@pytest.mark.parametrize("host", ["alpha", "beta"])
def test_the_host_selector_switches_the_overview_to_that_hosts_data(two_site, two_hosts, tab, host):
    t = tab(two_site)
    page = t.open(f"index.html?host={host}")
    assert page.eval_on_selector_all("#host-select option", "os => os.map(o => o.value)") == ["alpha", "beta"]
    assert page.input_value("#host-select") == host
    option = chart_option(page, "cpu-busy")
    expected = expected_cpu_busy(RawRecording(two_hosts), node=host)
    assert_same_points(option["series"][0]["data"], expected, f"{host} cpu-busy chart")
    t.assert_clean()


@pytest.mark.browser
@pytest.mark.parametrize("host", ["alpha", "beta"])
def test_the_per_cpu_heatmap_has_a_row_per_cpu_of_the_host(two_site, tab, host):
    t = tab(two_site)
    page = t.open(f"index.html?host={host}")
    option = chart_option(page, "cpu-busy-heatmap")
    assert option["yAxis"][0] == [str(cpu) for cpu in range(HOSTS[host])]
    t.assert_clean()


@pytest.mark.browser
def test_choosing_a_host_in_the_selector_loads_its_page(two_site, tab):
    t = tab(two_site)
    page = t.open("cpu.html?host=alpha")
    page.select_option("#host-select", "beta")
    page.wait_for_url("**/cpu.html?host=beta")
    page.wait_for_function("() => REZGEN.state.charts.length > 0", timeout=20000)
    assert page.input_value("#host-select") == "beta"
    t.assert_clean()


def _hover_tooltip_text(page, selector: str) -> str:
    """Move the mouse across a chart; the text of every tooltip shown on the way."""
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    texts = []
    for frac in (0.3, 0.5, 0.7, 0.9):
        page.mouse.move(box["x"] + box["width"] * frac, box["y"] + box["height"] * 0.4, steps=3)
        page.wait_for_timeout(150)
        texts.append(page.evaluate("""(sel) => Array.from(document.querySelectorAll('.tt'))
                                             .map(e => e.textContent).join('\\n')""", selector))
    return "\n".join(texts)


def assert_inert(t: Tab) -> None:
    page = t.page
    assert page.evaluate("window.__xss") is None, "markup from the recording ran"
    assert page.locator("img").count() == 0
    assert page.evaluate("Array.from(document.scripts).filter(s => s.textContent.includes('__xss')).length") == 0
    t.assert_clean()


@pytest.mark.browser
def test_cgroup_names_with_markup_are_text_on_the_cgroups_page(hostile_site, tab):
    t = tab(hostile_site)
    page = t.open("cgroups.html")
    t.draw_every_chart()
    chart = '[data-plot-id="individual-total-cores"]'
    names = [s["name"] for s in chart_option(page, "individual-total-cores")["series"]]
    assert set(HOSTILE_NAMES) <= set(names)
    shown = _hover_tooltip_text(page, chart)
    for name in HOSTILE_NAMES:
        assert name in shown, f"{name!r} not shown as text in the tooltip: {shown!r}"
    assert_inert(t)


@pytest.mark.browser
def test_cgroup_names_with_markup_are_text_in_the_metric_browser(hostile_site, tab):
    t = tab(hostile_site)
    page = t.open("metrics.html", charts=False)
    page.locator('#metric-table tr[data-name="cgroup_cpu_usage"]').click()
    page.wait_for_function("() => REZGEN.state.charts.length === 1", timeout=20000)
    shown = _hover_tooltip_text(page, "#metric-chart")
    for name in HOSTILE_NAMES:
        assert name in shown, f"{name!r} not shown as text in the tooltip: {shown!r}"
    assert_inert(t)


@pytest.mark.browser
def test_every_page_of_a_combined_recording_opens_from_disk_cleanly(two_site, tab):
    pages = sorted(p.name for p in two_site.glob("*.html"))
    assert len(pages) == 8  # overview (index), cpu, syscall, cgroups, metrics, system, query, fleet
    for host in HOSTS:
        t = tab(two_site)
        for name in pages:
            page = t.open(f"{name}?host={host}", charts=False)
            if page.locator(".chart[data-plot-id]").count():
                page.wait_for_function("() => REZGEN.state.charts.length > 0", timeout=20000)
                t.draw_every_chart()
                drawn = page.evaluate("REZGEN.state.charts.length")
                assert drawn == page.locator(".chart[data-plot-id]").count(), f"{name}?host={host}: charts missing"
            status = page.locator("#status")
            if status.count():
                assert "error" not in (status.get_attribute("class") or ""), (name, status.text_content())
            if name == "metrics.html":
                for row in page.locator("#metric-table tbody tr").all():
                    row.click()
                    page.wait_for_function("() => REZGEN.state.charts.length === 1", timeout=20000)
        assert t.requests, "no requests were seen at all"
        t.assert_clean()


@pytest.mark.browser
def test_a_failing_plots_card_shows_the_query_and_the_reason_as_text(two_hosts, tmp_path, tab):
    query = 'cpu_usage{state="<b id=bold>x</b>"} @ 1e30'  # markup in the query must stay text
    section = FAILING_PLOT.replace('query = "cpu_cores @ 1e30"', f"query = '{query}'")
    site = build(two_hosts, tmp_path / "site", "--dashboards", _dashboards(tmp_path, section))
    t = tab(site)
    page = t.open("index.html")
    card = page.locator('.chart[data-plot-id="far-away"]')
    card.scroll_into_view_if_needed()
    assert card.locator("code").inner_text() == query
    assert "number too large to fit in target type" in card.inner_text()
    assert page.locator("#bold").count() == 0
    assert page.evaluate("echarts.getInstanceByDom(document.querySelector('[data-plot-id=\"far-away\"]'))") is None
    t.assert_clean()
