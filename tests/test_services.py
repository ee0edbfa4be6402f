"""Service sections (pages.services, dashboards/services/*.toml): a section per service the data carries, its KPIs
as docs/services.md lists them, unavailable KPIs listed, a generic section for an unknown source, and the overview's
"Normalized by Throughput" group. Pages in a real Chromium; expected values from `rezgen query` (the CLI) or from
the Parquet file with pyarrow/numpy.
"""

from __future__ import annotations

import functools
import json
import math
import re
import textwrap
from pathlib import Path

import httpx
import numpy as np
import promql_parser as pp
import pytest
from rawparquet import RawRecording
from shared import REPO_ROOT, shared_recording
from siterecordings import H2, Columns, timestamps, write_recording
from test_cgroups import served
from test_site import build, chart_option, html, missing_titles, nav_sections, payload, rezgen

from rezgen.agent.pieces import Entry, Snapshot
from rezgen.commands.query import query_recording
from rezgen.dashboards import load_dashboards
from rezgen.live.ingest import Ingest
from rezgen.pages.model import absent_plots
from rezgen.recording.reader import Recording, open_recording
from rezgen.server.live_source import LiveSource
from rezgen.store.model import SeriesKey, make_labels
from rezgen.store.store import Store

SERVICES_DOC = REPO_ROOT / "docs" / "services.md"
NS = 1_000_000_000
REL = 1e-9


# -- the KPI lists ------------------------------------------------------------------------------------------------

def documented_kpis() -> dict[str, list[dict]]:
    """docs/services.md's tables: service -> [{role, title, query, type, unit, percentiles, hints}]."""
    out: dict[str, list[dict]] = {}
    for part in re.split(r"^## ", SERVICES_DOC.read_text(), flags=re.M)[1:]:
        name, *lines = part.splitlines()
        rows = out.setdefault(name.strip(), [])
        for line in lines:
            if not line.startswith("| ") or line.startswith(("| role", "|---")):
                continue
            role, title, query, kind, unit, percentiles = (c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1])
            hints = {}
            if match := re.fullmatch(r"(.*?) \(((?:\w+=[^;)]+;? ?)+)\)", title):
                title = match.group(1)
                hints = dict(h.strip().split("=") for h in match.group(2).split(";"))
            rows.append({"role": role, "title": title, "query": query.strip("`").replace("\\|", "|"), "type": kind,
                         "unit": unit, "hints": hints,
                         "percentiles": [float(q) for q in percentiles.split(",")] if percentiles else None})
    return out


def same_query(ours: str, theirs: str) -> bool:
    """The same PromQL, whatever the spelling (a name such as redis/x is written {__name__="redis/x"} here)."""
    theirs = re.sub(r"([A-Za-z_][\w:]*(?:/[\w:]+)+)\{", r'{__name__="\1",', theirs)
    return pp.parse(ours).prettify() == pp.parse(theirs).prettify()


def test_every_documented_kpi_is_in_its_services_section():
    sections = {s.source: s for s in load_dashboards() if s.source}
    for service, kpis in documented_kpis().items():
        if not kpis[0]["query"]:
            continue  # inference-library: a category of two services (compare mode), no queries of its own
        section = sections[service]
        assert section.route == f"service-{service}"
        plots = [(g.name, p) for g in section.groups for p in g.plots]
        assert len(plots) == len(kpis), service
        by_title_and_role = {(group.lower(), p.title): p for group, p in plots}
        for kpi in kpis:
            plot = by_title_and_role[(kpi["role"], kpi["title"])]
            assert same_query(plot.query, kpi["query"]), (service, kpi["title"])
            assert plot.unit == kpi["unit"], (service, kpi["title"])
            assert plot.kind == ("percentiles" if kpi["type"].startswith("histogram") else "line")
            assert plot.percentiles == (tuple(kpi["percentiles"]) if kpi["percentiles"] else None)
            assert plot.denominator == (kpi["hints"].get("denominator") == "True"), (service, kpi["title"])
            if kpi["hints"].get("full_width") == "True":
                assert plot.width == "full"


def test_llm_perf_answers_to_its_alias_too():
    section = next(s for s in load_dashboards() if s.source == "llm-perf")
    assert section.aliases == ("llm-bench",)


# -- which sections a recording gets -------------------------------------------------------------------------------

def raw_sources(rec: RawRecording) -> set[str]:
    return {c.labels["source"] for c in rec.metric_columns if c.labels.get("source")}


@pytest.fixture(scope="module")
def c16_site(tmp_path_factory) -> Path:
    return build(shared_recording("c16.parquet"), tmp_path_factory.mktemp("c16") / "site")


@pytest.fixture(scope="module")
def ab_site(tmp_path_factory) -> Path:
    return build(shared_recording("AB_base.parquet"), tmp_path_factory.mktemp("ab") / "site")


@pytest.fixture(scope="module")
def sglang_site(tmp_path_factory) -> Path:
    return build(shared_recording("sglang_gemma3.parquet"), tmp_path_factory.mktemp("sglang") / "site")


@pytest.mark.parametrize(("name", "fixture"), [("c16", "c16_site"), ("AB_base", "ab_site"),
                                                ("sglang_gemma3", "sglang_site")])
def test_a_service_section_appears_exactly_when_the_recording_has_its_source(name, fixture, request):
    site = request.getfixturevalue(fixture)
    sources = raw_sources(RawRecording(shared_recording(f"{name}.parquet")))
    services = {s.source: s.title for s in load_dashboards() if s.source}
    pages = {p.name for p in site.glob("service-*.html")}
    assert pages == {f"service-{s}.html" for s in services.keys() & sources}
    assert pages  # each of these recordings has a known service
    nav = nav_sections(html(site / "index.html"))
    assert [title for title in nav if title in services.values()] == sorted(
        services[s] for s in services.keys() & sources)


def test_a_recording_without_services_has_no_service_section(tmp_path):
    site = build(shared_recording("demo.parquet"), tmp_path / "site")
    assert not list(site.glob("service-*.html")) and not list(site.glob("source-*.html"))
    overview = payload(site, "_", "overview")
    assert "Normalized by Throughput" not in [g["name"] for g in overview["groups"]]


def selected_columns(rec: RawRecording, query: str) -> list[bool]:
    """For each selector of the query: does some column of the file match its name and equality matchers?"""
    found = []
    for selector in re.finditer(r"([A-Za-z_][\w:]*)?\{([^}]*)\}", query):
        name, matchers = selector.group(1), dict(re.findall(r'(\w+)="([^"]*)"', selector.group(2)))
        name = name or matchers.pop("__name__")
        found.append(bool(rec.select(name, **matchers)))
    return found


def test_kpis_whose_series_are_absent_are_listed_as_unavailable_not_drawn(c16_site):
    rec = RawRecording(shared_recording("c16.parquet"))
    for service in ("vllm", "llm-perf"):
        section = next(s for s in load_dashboards() if s.source == service)
        page = html(c16_site / f"service-{service}.html")
        drawn = {el.attrs["data-plot-id"] for el in page.find_all("div", cls="chart")}
        missing = set(missing_titles(page))
        expected_missing = {p.title for p in section.plots if not all(selected_columns(rec, p.query))}
        assert expected_missing, service  # c16 lacks some of each service's metrics
        assert missing == expected_missing, service
        assert not drawn & {p.id for p in section.plots if p.title in missing}
        assert drawn | {p.id for p in section.plots if p.title in missing} <= {p.id for p in section.plots}


def write_unknown_service(path: Path, source: str) -> tuple[RawRecording, np.ndarray]:
    """A host (cpu_usage) plus a service named `source` with a counter, a gauge and a latency histogram."""
    rng = np.random.default_rng(7)
    stamps = timestamps(rng, 90)
    host = Columns({"source": "rezolus"})
    host.counter("cpu_usage", {"id": "0", "state": "user"}, "nanoseconds", np.cumsum(rng.integers(1, 9, 90)) * 1e8)
    host.gauge("cpu_cores", {}, None, np.ones(90))
    svc = Columns({"source": source})
    svc.counter("jobs_done", {"queue": "a"}, None, np.cumsum(rng.integers(0, 50, 90)).astype(float))
    svc.counter("jobs_done", {"queue": "b"}, None, np.cumsum(rng.integers(0, 5, 90)).astype(float))
    svc.gauge("queue_depth", {}, None, rng.integers(0, 30, 90).astype(float))
    counts = np.zeros((90, H2.buckets))
    counts[:, H2.index_of(20_000)] = rng.integers(1, 9, 90)
    counts[:, H2.index_of(900_000)] = rng.integers(0, 2, 90)
    svc.histogram("job_latency", {}, "nanoseconds", np.cumsum(counts, axis=0))
    write_recording(path, stamps, [host, svc], source=json.dumps(["rezolus", source]))
    return RawRecording(path), stamps


def test_an_unknown_source_gets_a_generic_section_charting_each_metric_by_type(tmp_path):
    rec, stamps = write_unknown_service(tmp_path / "svc.parquet", "jobrunner")
    site = build(rec.path, tmp_path / "site")
    assert (site / "source-jobrunner.html").is_file()
    data = payload(site, "_", "source-jobrunner")
    # Counters and gauges are lines (one per series, the 10 largest and "Other" when there are more).
    kinds = {p["title"]: (p["kind"], p["query"], len(p["names"])) for g in data["groups"] for p in g["plots"]}
    assert kinds == {"jobs_done": ("multi", 'irate(jobs_done{source="jobrunner"}[5m])', 2),
                     "queue_depth": ("multi", 'queue_depth{source="jobrunner"}', 1),
                     "job_latency": ("percentiles", 'job_latency{source="jobrunner"}', 5)}
    assert [g["name"] for g in data["groups"]] == ["Counters", "Gauges", "Histograms"]
    # The gauge's line is the column itself.
    gauge = next(p for g in data["groups"] for p in g["plots"] if p["title"] == "queue_depth")
    level = gauge["levels"][-1]
    values = rec.values(rec.select("queue_depth")[0])
    checked = 0
    for t, v in zip(level["t"], level["values"][0]):
        # a step reads the newest sample at or before it (samples are a few ms late)
        before = np.flatnonzero(stamps <= t * 1_000_000)
        if v is not None and len(before):
            assert v == values[before[-1]]
            checked += 1
    assert checked > 80


def test_a_source_name_with_markup_is_text_and_a_safe_file_name(tmp_path):
    name = '<img src=x onerror="window.__xss=1">/../x'
    rec, _ = write_unknown_service(tmp_path / "svc.parquet", name)
    site = build(rec.path, tmp_path / "site")
    pages = [p.name for p in site.glob("source-*.html")]
    assert len(pages) == 1 and re.fullmatch(r"source-[A-Za-z0-9_-]+\.html", pages[0])
    text = (site / pages[0]).read_text()
    assert "<img" not in text and "&lt;img" in text


# -- the overview's normalized group -----------------------------------------------------------------------------

@functools.cache
def opened(recording: Path) -> Recording:
    return open_recording(recording)


def query_points(recording: Path, expr: str) -> dict[int, float]:
    """`rezgen query` of the whole recording (its command, in this process: the recording is opened once):
    unix ms -> value."""
    result = query_recording(opened(recording), expr)["data"]["result"]
    assert len(result) <= 1, expr
    return {round(float(t) * 1000): float(v) for t, v in (result[0]["values"] if result else [])}


def assert_matches_query(points: list, expected: dict[int, float], what: str) -> int:
    """Every drawn point equals the query's value at that step; the query has no value where the chart has none
    unless the step lies in a hole (the chart breaks its line there). Returns how many points were compared."""
    compared = 0
    for t, v in points:
        if v is None:
            continue
        assert round(t) in expected, f"{what}: a point at {t} that the query does not have"
        assert math.isclose(v, expected[round(t)], rel_tol=REL, abs_tol=1e-12), (what, t, v, expected[round(t)])
        compared += 1
    drawn = sum(v is not None for _, v in points)
    assert drawn >= 0.9 * sum(math.isfinite(v) for v in expected.values()) - 3, f"{what}: points missing"
    return compared


def test_the_overview_normalizes_host_metrics_by_each_service_throughput_kpi(c16_site):
    overview = payload(c16_site, "_", "overview")
    group = next(g for g in overview["groups"] if g["name"] == "Normalized by Throughput")
    kpis = [p for s in load_dashboards() if s.source in ("vllm", "llm-perf") for p in s.plots if p.denominator]
    assert len(group["plots"]) == 3 * len(kpis) == 6
    for kpi in kpis:
        cpu = next(p for p in group["plots"] if p["query"] == f"sum(irate(cpu_usage[5m])) / ({kpi.query})")
        assert cpu["unit"] == "time"
        level = cpu["levels"][-1]
        expected = query_points(shared_recording("c16.parquet"), cpu["query"])
        assert assert_matches_query(list(zip(level["t"], level["values"][0])), expected, cpu["id"]) > 100
        for direction in ("transmit", "receive"):
            assert any(f'direction="{direction}"' in p["query"] and kpi.query in p["query"] for p in group["plots"])


# -- in a browser ----------------------------------------------------------------------------------------------------

def kpi_expression(plot: dict, quantile: float | None) -> str:
    if plot["kind"] == "percentiles":
        return f"histogram_quantile({quantile}, sum(irate({plot['query']}[5m])))"
    return plot["query"]


@pytest.mark.browser
@pytest.mark.parametrize(("recording", "fixture", "service"), [
    ("c16", "c16_site", "vllm"), ("c16", "c16_site", "llm-perf"), ("AB_base", "ab_site", "cachecannon")])
def test_each_service_chart_draws_what_rezgen_query_answers(recording, fixture, service, request, tab):
    site = request.getfixturevalue(fixture)
    t = tab(site)
    page = t.open(f"service-{service}.html")
    t.draw_every_chart()
    data = payload(site, "_", f"service-{service}")
    plots = [p for g in data["groups"] for p in g["plots"]]
    assert plots
    compared = 0
    for plot in plots:
        option = chart_option(page, plot["id"])
        if plot["kind"] == "percentiles":
            assert [s["name"] for s in option["series"]] == plot["names"]
            quantiles = [float(n[1:]) / 100 for n in plot["names"]]
        else:
            quantiles = [None] * len(option["series"])
        if len(option["series"]) > 1 and plot["kind"] != "percentiles":
            continue  # several series (one per label value): compared by the plot data tests
        for series, q in zip(option["series"], quantiles):
            expected = query_points(shared_recording(f"{recording}.parquet"), kpi_expression(plot, q))
            compared += assert_matches_query(series["data"], expected, f"{service} {plot['id']} {series['name']}")
    assert compared > 100 * len(plots) // 2
    t.assert_clean()


def test_query_points_are_what_the_cli_prints():
    recording = shared_recording("c16.parquet")
    expr = 'sum(irate(tokens{direction="output",source="llm-perf"}[5s]))'
    done = rezgen("query", recording, expr)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)["data"]["result"][0]["values"]
    assert query_points(recording, expr) == {round(float(t) * 1000): float(v) for t, v in printed}


def test_user_dashboards_bring_their_own_services(tmp_path):
    """--dashboards DIR replaces the defaults, services/ included: DIR/services/*.toml are the known services, and a
    source DIR does not know gets the generic section."""
    dashboards = tmp_path / "dashboards"
    (dashboards / "services").mkdir(parents=True)
    (dashboards / "overview.toml").write_text((REPO_ROOT / "dashboards" / "overview.toml").read_text())
    (dashboards / "services" / "vllm.toml").write_text(textwrap.dedent('''
        title = "My vLLM"
        route = "service-vllm"
        source = "vllm"
        [[group]]
        name = "Load"
        [[group.plot]]
        id = "running"
        title = "Running"
        query = 'vllm_num_requests_running{source="vllm"}'
    '''))
    site = build(shared_recording("c16.parquet"), tmp_path / "site", "--dashboards", dashboards)
    data = payload(site, "_", "service-vllm")
    assert data["title"] == "My vLLM" and [p["id"] for g in data["groups"] for p in g["plots"]] == ["running"]
    assert not (site / "service-llm-perf.html").exists() and (site / "source-llm-perf.html").is_file()


def test_a_live_window_gets_a_services_section_once_its_series_arrive():
    """Live mode: the sections follow what the sliding window holds (an agent's external metrics, or a service's
    series, can appear at any time)."""
    ingest = Ingest(Store(NS), 600 * NS)
    ingest.add_agent("agent", None)
    live = LiveSource(ingest, load_dashboards(), NS, {}, {})
    host = [Entry("cpu_usage", SeriesKey("cpu_usage", make_labels({"id": "0", "state": "user"})), 0)]
    running = SeriesKey("vllm_num_requests_running", make_labels({"source": "vllm"}))
    pushed = SeriesKey("widgets", make_labels({"source": "external"}))
    for k in range(5):
        ingest.append("agent", Snapshot(2, k * NS, None, {}, host, [], []))
    routes = [s.route for s in live.sections]
    assert not [r for r in routes if r.startswith(("service-", "source-"))]
    for k in range(5, 10):
        ingest.append("agent", Snapshot(2, k * NS, None, {}, host, [Entry("vllm_num_requests_running", running, 3),
                                                                     Entry("widgets", pushed, k)], []))
    sections = {s.route: s for s in live.sections}
    assert {"service-vllm", "source-external"} <= sections.keys()
    assert [p.title for p in sections["source-external"].plots] == ["widgets"]
    with live.lock:
        absent = absent_plots(sections["service-vllm"], live.store)
    assert "kpi-requests-requests-running" not in absent and "kpi-requests-abort-rate" in absent


def test_a_served_recording_has_its_service_sections_in_pages_and_api(tmp_path):
    with served(shared_recording("c16.parquet"), tmp_path) as url:
        index = httpx.get(url + "api/dashboard").json()["sections"]
        assert [s["route"] for s in index if s["route"].startswith("service-")] == ["service-llm-perf", "service-vllm"]
        section = httpx.get(url + "api/dashboard/service-vllm").json()
        assert section["title"] == "vLLM" and section["groups"][0]["name"] == "Requests"
        page = httpx.get(url + "service-vllm.html")
        assert page.status_code == 200 and 'data-plot-id="kpi-requests-requests-running"' in page.text
        assert httpx.get(url + "service-cachecannon.html").status_code == 404
