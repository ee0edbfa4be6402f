"""The shipped dashboards (`dashboards/*.toml`) and the loader's error reporting."""

from __future__ import annotations

import textwrap
from pathlib import Path

import promql_parser as pp
import pytest
from rawparquet import RawRecording
from shared import shared_recording

from rezgen.dashboards import DEFAULT_DIR, KINDS, UNITS, DashboardError, load_dashboards, load_section
from rezgen.pages.catalog import metric_plot
from rezgen.promql.engine import parse, range_query
from rezgen.store.model import Kind

ROUTES = ["overview", "exceptions", "cpu", "gpu", "memory", "network", "scheduler", "syscall", "softirq", "blockio",
          "cgroups", "rezolus"]
# Plot counts of the newest Rezolus viewer for a multi-CPU, multi-GPU recording with no service (docs/dashboards.md
# §2.2), without the Overview's optional "Normalized by Throughput" plots.
PLOT_COUNTS = {"overview": 18, "exceptions": 15, "cpu": 38, "gpu": 49, "memory": 9, "network": 9, "scheduler": 13,
               "syscall": 51, "softirq": 44, "blockio": 18, "cgroups": 48, "rezolus": 7}


@pytest.fixture(scope="module")
def sections():
    return load_dashboards()


def section(sections, route):
    return next(s for s in sections if s.route == route)


def plot(sections, route, plot_id):
    return next(p for p in section(sections, route).plots if p.id == plot_id)


# --- the shipped dashboards --------------------------------------------------------------------------------------

def test_default_directory_is_the_checkout_dashboards():
    assert Path(__file__).resolve().parents[1] / "dashboards" == DEFAULT_DIR


def test_sections_in_navigation_order(sections):
    assert [s.route for s in sections if s.source is None] == ROUTES
    assert [s.order for s in sections] == sorted(s.order for s in sections)
    assert sections[0].route == "overview" and sections[0].order == 0


def test_plot_counts_match_rezolus(sections):
    assert {s.route: len(s.plots) for s in sections if s.source is None} == PLOT_COUNTS


def test_plot_ids_unique_per_section(sections):
    for s in sections:
        ids = [p.id for p in s.plots]
        assert len(ids) == len(set(ids)), s.route


def test_every_query_parses(sections):
    for s in sections:
        for p in s.plots:
            parse(p.query)  # raises PromQLError
            assert p.kind in KINDS and p.unit in UNITS


def test_every_group_has_a_name_and_plots(sections):
    for s in sections:
        assert s.groups, s.route
        for g in s.groups:
            assert g.name.strip() and g.plots, (s.route, g.name)


def test_overview_cpu_busy(sections):
    busy = plot(sections, "overview", "cpu-busy")
    assert busy.query == "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9"
    assert busy.kind == "line" and busy.unit == "percentage" and busy.range == (0.0, 1.0)


def test_overview_syscall_total_latency(sections):
    latency = plot(sections, "overview", "syscall-total-latency")
    assert latency.kind == "percentiles" and latency.query == "syscall_latency" and latency.unit == "time"
    assert latency.log


def test_percentile_plots_are_bare_histogram_selectors(sections):
    for s in sections:
        for p in s.plots:
            if p.kind == "percentiles":
                assert isinstance(parse(p.query), pp.VectorSelector), (s.route, p.id)
                # (a service also charts counts per request: tokens, descriptors)
                assert p.unit in ("time", "bytes") or (s.source and p.unit == "count"), (s.route, p.id)


def test_per_device_charts_are_heatmaps_of_by_id(sections):
    for s in sections:
        for p in s.plots:
            # ("pcie-rx-per-gpu" is Rezolus's id for the all-GPU total, so go by the title.)
            per_device = "(Per-" in p.title or p.id.endswith("-heatmap")
            if per_device:
                assert p.kind == "heatmap", (s.route, p.id)
            if p.kind == "heatmap":
                assert "by (id)" in p.query, (s.route, p.id)


def test_percentages_with_a_fixed_range_are_fractions(sections):
    for s in sections:
        for p in s.plots:
            if p.range is not None:
                assert p.unit == "percentage" and p.range == (0.0, 1.0), (s.route, p.id)


def test_syscall_ids_are_lowercase(sections):
    ids = [p.id for p in section(sections, "syscall").plots]
    assert ids == [i.lower() for i in ids]
    assert "syscall-read-latency" in ids and "syscall-ipc-mean" in ids and "syscall-total-rate" in ids


def test_cgroups_aggregate_and_individual_pairs(sections):
    plots = section(sections, "cgroups").plots
    aggregate = {p.id.removeprefix("aggregate-"): p for p in plots if p.id.startswith("aggregate-")}
    individual = {p.id.removeprefix("individual-"): p for p in plots if p.id.startswith("individual-")}
    assert aggregate.keys() == individual.keys() and len(aggregate) == 24
    for suffix, p in individual.items():
        assert p.kind == "multi" and p.top == 5 and "sum by (name)" in p.query, suffix
        assert aggregate[suffix].kind == "line" and "by (name)" not in aggregate[suffix].query, suffix
        assert aggregate[suffix].title == p.title and aggregate[suffix].unit == p.unit, suffix


def test_quirks_fixed(sections):
    # Running Time reads scheduler_running (2025 read scheduler_offcpu); L3 is a hit ratio.
    assert plot(sections, "scheduler", "running-time").query == "scheduler_running"
    assert plot(sections, "cpu", "l3-hit").query.startswith("1 - ")
    # BPF execution time: ns per run on a time axis, no stray /1e9.
    execution = plot(sections, "rezolus", "bpf-execution-time")
    assert execution.unit == "time" and "1e9" not in execution.query and "1000000000" not in execution.query


def test_no_prometheus_rate_over_short_recordings(sections):
    """rate(x[5m]) is a 5-minute average in rezgen (Prometheus semantics); Rezolus means the per-sample rate."""
    for s in sections:
        for p in s.plots:
            assert "rate(" not in p.query.replace("irate(", ""), (s.route, p.id)


@pytest.mark.parametrize("name", ["demo.parquet", "sglang_gemma3.parquet"])
def test_every_query_evaluates_on_a_real_recording(sections, name):
    from rezgen.recording.reader import open_recording

    rec = open_recording(shared_recording(name))
    start, end = rec.time_range
    with_data = 0
    for s in sections:
        for p in s.plots:
            expr = p.query if p.kind != "percentiles" else f"histogram_quantile(0.99, sum(irate({p.query}[5m])))"
            result = range_query(rec.store, expr, start, end, rec.interval_ns)
            with_data += bool(result.series)
    # Both are Rezolus agent recordings: the overview, memory, network, scheduler and most of the rest have data.
    assert with_data > 150


def test_overview_cpu_busy_on_demo(sections):
    from rezgen.recording.reader import open_recording

    rec = open_recording(shared_recording("demo.parquet"))
    start, end = rec.time_range
    result = range_query(rec.store, plot(sections, "overview", "cpu-busy").query, start, end, rec.interval_ns)
    assert len(result.series) == 1
    values = result.series[0].values
    assert len(values) > 100 and ((values >= 0) & (values <= 1.05)).all()


# --- loader errors ------------------------------------------------------------------------------------------------

GOOD = """
title = "Test"
route = "test"
order = 1

[[group]]
name = "G"

[[group.plot]]
id = "a"
title = "A"
query = "sum(irate(cpu_usage[5m]))"
"""


def write(tmp_path: Path, text: str, name: str = "test.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(DashboardError) as info:
        load_dashboards(path.parent)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_a_good_file_loads(tmp_path):
    write(tmp_path, GOOD)
    (only,) = load_dashboards(tmp_path)
    assert only.route == "test" and only.title == "Test" and [p.id for p in only.plots] == ["a"]
    assert only.plots[0].kind == "line" and only.plots[0].unit == "count" and only.plots[0].width == "half"


def test_invalid_toml(tmp_path):
    path = write(tmp_path, GOOD + "\nthis is not = = toml\n")
    expect_error(path, "invalid TOML")


def test_missing_plot_id(tmp_path):
    path = write(tmp_path, GOOD.replace('id = "a"\n', ""))
    expect_error(path, "'id'")


def test_duplicate_plot_id(tmp_path):
    path = write(tmp_path, GOOD + '\n[[group]]\nname = "H"\n\n[[group.plot]]\nid = "a"\ntitle = "B"\nquery = "up"\n')
    expect_error(path, "'a'", "twice")


def test_bad_kind(tmp_path):
    path = write(tmp_path, GOOD + 'kind = "pie"\n')
    expect_error(path, "kind", "pie")


def test_bad_unit(tmp_path):
    path = write(tmp_path, GOOD + 'unit = "furlongs"\n')
    expect_error(path, "unit", "furlongs")


def test_bad_query(tmp_path):
    path = write(tmp_path, GOOD.replace("sum(irate(cpu_usage[5m]))", "sum(irate(cpu_usage[5m])"))
    expect_error(path, "(a)")


def test_percentiles_needs_a_selector(tmp_path):
    path = write(tmp_path, GOOD + 'kind = "percentiles"\n')
    expect_error(path, "histogram selector")


def test_bad_range(tmp_path):
    path = write(tmp_path, GOOD + "range = [0]\n")
    expect_error(path, "range")


def test_missing_route(tmp_path):
    path = write(tmp_path, GOOD.replace('route = "test"\n', ""))
    expect_error(path, "'route'")


def test_duplicate_route_names_both_files(tmp_path):
    first = write(tmp_path, GOOD, "a.toml")
    second = write(tmp_path, GOOD, "b.toml")
    message = expect_error(second, "route 'test'")
    assert str(first) in message


def test_load_section_reports_a_missing_file(tmp_path):
    with pytest.raises(DashboardError, match="cannot read"):
        load_section(tmp_path / "absent.toml")


def test_empty_directory(tmp_path):
    with pytest.raises(DashboardError, match="no dashboard files"):
        load_dashboards(tmp_path)


# --- what a metric browser chart's unit is, for metrics that carry none ------------------------------------------

def test_prometheus_metrics_get_units_from_their_names_and_descriptions():
    """c16's vLLM metrics carry no unit: the Prometheus naming conventions and the help texts give it."""
    raw = RawRecording(shared_recording("c16.parquet"))
    descriptions = raw.descriptions()
    kinds = {"counter": Kind.COUNTER, "gauge": Kind.GAUGE, "histogram": Kind.HISTOGRAM}
    seen = {c.metric: (kinds[c.kind], c.meta.get("unit")) for c in raw.metric_columns}

    def unit(name: str) -> tuple[str, str]:
        kind, recorded = seen[name]
        assert recorded is None, name  # the point: nothing in the file says
        plot = metric_plot(name, kind, recorded, descriptions.get(name))
        return plot.unit, plot.query

    # ns (recording-format §2.7)
    assert unit("vllm_e2e_request_latency_seconds") == ("time", "vllm_e2e_request_latency_seconds")
    assert unit("vllm_request_prompt_tokens")[0] == "count"  # tokens: a plain number, never "B"
    assert unit("process_resident_memory_bytes")[0] == "bytes"
    assert unit("http_response_size_bytes_sum")[0] == "datarate"
    assert unit("vllm_prompt_tokens_total")[0] == "rate"
    assert unit("process_cpu_seconds_total")[0] == "seconds"
    assert unit("vllm_kv_cache_usage_perc")[0] == "percentage"  # "1 means 100 percent usage."
    assert metric_plot("disk_used_percent", Kind.GAUGE, None, None).query == "disk_used_percent / 100"
    assert metric_plot("cache_hit_ratio", Kind.GAUGE, None, None).unit == "percentage"
    assert metric_plot("cpu_usage", Kind.COUNTER, "nanoseconds", "in bytes").unit == "time"  # the file's unit wins


def test_other_can_be_dropped(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(textwrap.dedent("""
        title = "X"
        route = "x"
        [[group]]
        name = "G"
        [[group.plot]]
        id = "a"
        title = "A"
        query = "sum by (name) (irate(cgroup_cpu_instructions[5m])) / sum by (name) (irate(cgroup_cpu_cycles[5m]))"
        kind = "multi"
        other = false
        [[group.plot]]
        id = "b"
        title = "B"
        query = "cpu_cores"
    """))
    assert [p.other for p in load_section(path).plots] == [False, True]


def test_cgroup_ipc_drops_other(sections):
    assert plot(sections, "cgroups", "individual-ipc").other is False
