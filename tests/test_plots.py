"""Plot payloads: resolution levels planned per plot, chunked evaluation equal to one evaluation, the percentile
fast path equal to the PromQL engine, and the numbers written to JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from shared import shared_recording

from rezgen.dashboards import Plot, load_dashboards
from rezgen.pages.catalog import default_query
from rezgen.plotdata import decimate, evaluation, levels, percentiles, plots
from rezgen.plotdata.plots import TimeRange, plot_data, round_significant
from rezgen.promql import engine
from rezgen.promql.engine import parse
from rezgen.promql.values import PromQLError
from rezgen.recording.reader import open_recording
from rezgen.store.model import Kind
from rezgen.timeparse import ceil_ms

# ---- levels -----------------------------------------------------------------------------------------------------


def test_a_series_of_at_most_1000_samples_is_one_full_resolution_level():
    for steps in (1, 361, 1000):
        base = decimate.finest_bucket(steps)
        assert base == 1 and decimate.plan(steps, base, rows=50) == [1]


def test_a_day_at_one_second_ships_a_coarse_level_of_about_1000_points_and_a_finer_one_for_one_line():
    steps = 86_400
    base = decimate.finest_bucket(steps)
    levels = decimate.plan(steps, base, rows=1)
    assert len(levels) == 2 and levels[0] > levels[1] == base
    assert 900 <= decimate.points(steps, levels[0]) <= 1000
    assert decimate.points(steps, levels[1]) <= decimate.PLOT_POINTS
    assert all(b % base == 0 for b in levels)


def test_many_series_share_the_budget_so_they_get_the_coarse_level_only():
    steps = 86_400
    assert len(decimate.plan(steps, decimate.finest_bucket(steps, 1), rows=16, per_bucket=1)) == 1
    assert len(decimate.plan(steps, decimate.finest_bucket(steps), rows=5)) == 1


def test_rows_fed_in_chunks_reduce_to_the_min_max_of_every_bucket():
    rng = np.random.default_rng(1)
    steps = 5003
    values = rng.normal(size=(3, steps))
    values[rng.random((3, steps)) < 0.1] = np.nan
    values[1, 1000:1300] = np.nan  # a whole bucket without values stays NaN
    base = 7
    rows = decimate.Reducer(3, steps, base)
    position = 0
    for size in rng.integers(1, 400, size=100):
        rows.feed(values[:, position : position + size])
        position += size
        if position >= steps:
            break
    rows.feed(values[:, position:])
    for bucket in (7, 21, 700):
        high, low = rows.level(bucket)
        for row in range(3):
            for i in range(math.ceil(steps / bucket)):
                cell = values[row, i * bucket : (i + 1) * bucket]
                if np.isnan(cell).all():
                    assert np.isnan(high[row, i]) and np.isnan(low[row, i])
                else:
                    assert high[row, i] == np.nanmax(cell) and low[row, i] == np.nanmin(cell)


def test_a_row_added_late_is_nan_before_it_starts():
    rows = decimate.Reducer(1, 10, 1)
    rows.feed(np.arange(4.0)[None, :])
    rows.add_rows(1)
    rows.feed(np.arange(12.0).reshape(2, 6))
    assert list(rows.values[0]) == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]
    assert np.isnan(rows.values[1, :4]).all() and list(rows.values[1, 4:]) == [6, 7, 8, 9, 10, 11]
    assert list(rows.empty) == [False, False]


def test_rows_are_taken_in_any_order_and_joined():
    rows = decimate.Reducer(3, 4, 2)
    rows.feed(np.array([[1.0, 2, 3, 4], [5, 6, 7, 8], [np.nan, np.nan, 9, 10]]))
    picked = rows.take([2, 0]).join(rows.take([1]))
    assert np.array_equal(picked.level(2)[0], [[np.nan, 10], [2, 4], [6, 8]], equal_nan=True)
    assert np.array_equal(picked.level(2)[1], [[np.nan, 9], [1, 3], [5, 7]], equal_nan=True)
    assert np.array_equal(decimate.level_values(picked, 4), [[9, 10], [1, 4], [5, 8]])


def test_a_chunks_rows_leave_out_series_without_points_and_merge_samples_that_share_labels():
    from rezgen.promql.values import Sample, Vector

    nan = np.nan
    a, b = (("op", "a"),), (("op", "b"),)
    vector = Vector([
        Sample(a, np.array([1.0, 2, 3, 4]), np.array([True, True, False, False])),
        Sample(b, np.array([9.0, 9, 9, 9]), np.zeros(4, dtype=bool)),  # no point: no row
        Sample(a, np.array([5.0, 6, 7, 8]), np.array([False, True, True, False])),  # the later one wins
    ])
    labels, values = evaluation.chunk_matrix(vector, 4)
    assert labels == [a]
    assert np.array_equal(values, [[1, 6, 7, nan]], equal_nan=True)


# ---- JSON numbers -----------------------------------------------------------------------------------------------


def test_rounded_values_print_with_at_most_seven_significant_digits():
    values = np.array([0.07512345678, 123456789.0, 1 / 3, 2.5e-9, -987654.321, 0.0, 1e300])
    rounded = round_significant(values, 7)
    for original, value in zip(values, rounded):
        assert math.isclose(original, value, rel_tol=5e-7)
        if 1e-20 < abs(original) < 1e20:
            digits = repr(float(value)).lower().split("e")[0].replace("-", "").replace(".", "").strip("0")
            assert len(digits) <= 7, value


def test_numbers_are_exact_at_full_resolution_and_whole_values_are_integers():
    row = np.array([1.0, 0.1 + 0.2, np.nan, np.inf, 3e15, 2.0**60])
    out = levels.numbers(row)
    assert out[0] == 1 and isinstance(out[0], int)
    assert out[1] == 0.1 + 0.2  # not rounded
    assert out[2] is None and out[3] is None
    assert isinstance(out[4], int) and out[4] == 3 * 10**15
    assert isinstance(out[5], float)  # beyond 2^53 stays a float
    json.dumps(out, allow_nan=False)


def test_numbers_of_rows_are_lists_of_lists_written_as_each_row_alone():
    rows = np.array([[1.0, 2.0, 3.0], [0.5, np.nan, 4.0], [0.25, 0.75, 1.5]])
    assert levels.numbers(rows) == [levels.numbers(row) for row in rows] == [[1, 2, 3], [0.5, None, 4],
                                                                              [0.25, 0.75, 1.5]]
    assert [type(v) for v in levels.numbers(rows)[1]] == [float, type(None), int]


# ---- plots of real recordings -------------------------------------------------------------------------------------


def _span(recording) -> TimeRange:
    start, end = recording.time_range
    return TimeRange(ceil_ms(start), end, recording.interval_ns)


@pytest.fixture(scope="module")
def demo():
    return open_recording(shared_recording("demo.parquet"))


@pytest.fixture(scope="module")
def c16():
    return open_recording(shared_recording("c16.parquet"))


def test_chunked_evaluation_gives_the_same_payload_as_one_chunk(demo, monkeypatch):
    span = _span(demo)
    chosen = [p for s in load_dashboards(None) for p in s.plots if p.kind in ("multi", "heatmap", "line")][:40]
    chosen.append(Plot(id="top", title="top", query="irate(softirq[5m])", unit="rate", kind="multi", width="full",
                       log=False, top=3, description=""))
    whole = [plot_data(demo.store, p, span) for p in chosen]
    monkeypatch.setattr(engine, "CHUNK_STEPS", 37)  # chunks that do not line up with anything
    monkeypatch.setattr(plots, "CACHE_CELLS", 100)  # top-k: the "Other" row from a second evaluation
    assert [plot_data(demo.store, p, span) for p in chosen] == whole
    assert whole[-1] is not None and whole[-1]["names"][-1] == plots.OTHER and len(whole[-1]["names"]) == 4


def _dense_rates(chunks, steps):
    """The (steps, buckets) bucket rates of `bucket_rates` chunks, and their layout."""
    layouts = {layout for *_, layout in chunks}
    assert len(layouts) == 1
    (layout,) = layouts
    dense = np.zeros((steps, layout.buckets))
    for first, times, used, rates, _ in chunks:
        dense[first : first + len(times), used] = rates
    return dense, layout


@pytest.mark.parametrize("query", ["syscall_latency", 'syscall_latency{op="read"}', "scheduler_runqueue_latency",
                                   "tcp_packet_latency"])
def test_percentile_rates_from_the_sparse_deltas_equal_the_general_path(c16, query):
    span = _span(c16)
    fast = list(percentiles.bucket_rates(c16.store, query, span, ()))
    # `by ()` keeps the engine off its own sparse fast path (the one percentile plots use) and sums the same series
    general = list(percentiles.engine_bucket_rates(c16.store, parse(f"sum by () (irate({query}[5m]))"), span, ()))
    assert fast and general
    steps = len(span.times)
    (dense_fast, fast_layout), (dense_general, general_layout) = _dense_rates(fast, steps), _dense_rates(general, steps)
    assert fast_layout == general_layout
    assert np.array_equal(dense_fast, dense_general)  # the same sums, bit for bit


@pytest.mark.parametrize("name", ["c16", "demo"])  # grouping powers 7 and 3
def test_percentiles_match_histogram_quantile_of_the_engine(name, request):
    from rezgen.promql.engine import range_query

    recording = request.getfixturevalue(name)
    span = _span(recording)
    plot = Plot(id="p", title="p", query="syscall_latency", unit="time", kind="percentiles", width="full", log=True,
                top=5, description="")
    payload = plot_data(recording.store, plot, span)
    (level,) = payload["levels"]
    for row, (_, q) in zip(level["values"], percentiles.QUANTILES):
        result = range_query(recording.store, f"histogram_quantile({q}, sum by () (irate(syscall_latency[5m])))",
                             span.start_ns, span.end_ns, span.step_ns)
        (series,) = result.series
        expected = dict(zip((series.times // 1_000_000).tolist(), series.values.tolist()))
        got = {t: v for t, v in zip(level["t"], row) if v is not None}
        assert got == {t: v for t, v in expected.items() if t in got} and len(got) > 250


# ---- the metric browser -------------------------------------------------------------------------------------------


def test_metric_browser_charts_counters_as_irate_and_quotes_names_that_are_not_identifiers():
    assert default_query("cpu_usage", Kind.COUNTER) == ("multi", "irate(cpu_usage[5m])")
    assert default_query("memory_free", Kind.GAUGE) == ("multi", "memory_free")
    assert default_query("syscall_latency", Kind.HISTOGRAM) == ("percentiles", "syscall_latency")
    _, query = default_query("ringline/bytes/received", Kind.COUNTER)
    assert query == 'irate({__name__="ringline/bytes/received"}[5m])'
    parse(query)


def test_metric_browser_charts_hold_one_level(c16):
    span = TimeRange(_span(c16).start_ns, _span(c16).end_ns, 100_000_000)  # 3,600 steps: would have two levels
    plot = Plot(id="m", title="m", query="irate(cpu_usage[5m])", unit="rate", kind="multi", width="full", log=False,
                top=10, description="")
    assert len(plot_data(c16.store, plot, span)["levels"]) >= 1
    (level,) = plot_data(c16.store, plot, span, coarse_only=True)["levels"]
    assert level["bucket"] > 1 and len(level["t"]) <= decimate.TARGET_POINTS


def _metric_charts(recording, kinds=(Kind.COUNTER, Kind.GAUGE), least=12):
    """The metric browser's charts of the metrics with at least `least` series."""
    from rezgen.pages.catalog import metric_plot

    names = sorted({s.key.metric for s in recording.store if s.kind in kinds})
    return [metric_plot(name, series[0].kind, series[0].meta.unit, None) for name in names
            if len(series := recording.store.series_of(name)) >= least]


def test_a_top_k_plot_evaluated_a_group_of_series_at_a_time_equals_one_evaluation(c16, monkeypatch):
    from rezgen.plotdata import groups

    span = _span(c16)
    chosen = _metric_charts(c16)
    chosen.append(Plot(id="no-other", title="t", query="irate(cgroup_cpu_usage[5m]) / 1e9", unit="rate",
                       kind="multi", width="full", log=False, top=4, description="", other=False))
    whole = [plot_data(c16.store, p, span) for p in chosen]
    monkeypatch.setattr(groups, "GROUP_BYTES", 8 * c16.rows * 5)  # groups of about five series
    released: list[list] = []
    grouped = [plot_data(c16.store, p, span, release=released.append) for p in chosen]
    assert len(released) > 2 * len(chosen)  # every plot was evaluated in several groups
    for plot, one, many in zip(chosen, whole, grouped):
        assert one is not None and many is not None, plot.query
        assert many["names"] == one["names"], plot.query
        for a, b in zip(one["levels"], many["levels"]):
            assert a["t"] == b["t"]
            np.testing.assert_allclose(np.array(b["values"], dtype=float), np.array(a["values"], dtype=float),
                                       rtol=1e-6, err_msg=plot.query)  # Other: the same sums in another order


def test_only_series_wise_queries_of_many_series_are_evaluated_in_groups(c16, monkeypatch):
    from rezgen.plotdata import groups

    monkeypatch.setattr(groups, "GROUP_BYTES", 8 * c16.rows * 5)
    for query in ("irate(cgroup_cpu_usage[5m])", "cgroup_cpu_usage / 100", "-(cgroup_cpu_usage)"):
        found = groups.series_groups(c16.store, parse(query), (), top=10)
        assert found is not None and len(found) > 2, query
        everything = c16.store.series_of("cgroup_cpu_usage")
        assert sorted(map(id, (s for g in found for s in g))) == sorted(map(id, everything))
    for query in ("sum by (name) (irate(cgroup_cpu_usage[5m]))", "cgroup_cpu_usage / on() group_left cpu_cores",
                  "rate(cgroup_cpu_usage[5m:1m])", "syscall_latency"):
        assert groups.series_groups(c16.store, parse(query), (), top=10) is None, query
    assert groups.series_groups(c16.store, parse("irate(cgroup_cpu_usage[5m])"), (), top=10_000) is None  # few


@pytest.mark.slow
def test_a_build_within_a_tiny_memory_budget_writes_the_same_data(tmp_path, monkeypatch):
    """Series released between plots (and decoded a column at a time) are decoded again to the same values."""
    from rezgen.site import budget
    from rezgen.site import build as site

    path = shared_recording("demo.parquet")
    site.build_site(open_recording(path), tmp_path / "plain")
    monkeypatch.setattr(budget, "LOADED_BUDGET", 1)
    monkeypatch.setattr(budget, "LOAD_GROUP_BYTES", 1)
    monkeypatch.setattr(budget, "CACHE_BYTES", 0)  # and evaluated pieces computed again each time
    site.build_site(open_recording(path), tmp_path / "budget")
    plain = sorted(p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain" / "data").rglob("*.js"))
    assert plain and plain == sorted(p.relative_to(tmp_path / "budget")
                                     for p in (tmp_path / "budget" / "data").rglob("*.js"))
    for name in plain:
        assert (tmp_path / "plain" / name).read_text() == (tmp_path / "budget" / name).read_text(), name


# -- a plot whose query fails on this recording ---------------------------------------------------------------------

@pytest.mark.parametrize("kind, query, reason", [
    ("line", "cpu_cores @ 1e30", "number too large"),  # ValueError from the parser's `@` (was a build's traceback)
    ("percentiles", "cpu_cores", "needs histogram series"),  # a gauge where buckets are needed (was AssertionError)
    ("line", "syscall_latency", "holds histograms"),
    ("line", "cpu_usage / on (id) cpu_usage", "many-to-many"),
])
def test_a_failing_query_gives_its_plot_an_error_payload_instead_of_raising(demo, kind, query, reason):
    plot = Plot(id="p", title="P", query=query, kind=kind)
    data = plot_data(demo.store, plot, _span(demo))
    assert data is not None and set(data) >= {"error", "query"}, data
    assert data["query"] == query and reason in data["error"] and "\n" not in data["error"]
    assert "levels" not in data and data["id"] == "p"


@pytest.mark.parametrize("query", ["cpu_cores @ 1e30", "syscall_latency", "cpu_usage / on (id) cpu_usage",
                                   "cpu_cores[5m]", 'label_replace(cpu_cores, "1x", "", "", "")'])
def test_a_plot_and_rezgen_query_give_the_same_error_line_for_the_same_query(demo, query):
    from rezgen.commands.query import query_recording

    data = plot_data(demo.store, Plot(id="p", title="P", query=query, kind="line"), _span(demo))
    with pytest.raises(PromQLError) as caught:
        query_recording(demo, query)
    assert data is not None and data["error"] == str(caught.value) and "\n" not in data["error"]


def test_memory_an_evaluation_runs_out_of_is_one_error_for_a_plot_and_for_rezgen_query(demo, monkeypatch):
    from rezgen.commands.query import query_recording
    from rezgen.promql.evaluator import Evaluator

    def exhausted(self, node):
        raise MemoryError

    monkeypatch.setattr(Evaluator, "eval", exhausted)
    data = plot_data(demo.store, Plot(id="p", title="P", query="cpu_cores", kind="line"), _span(demo))
    with pytest.raises(PromQLError) as caught:
        query_recording(demo, "cpu_cores")
    assert data is not None and data["error"] == str(caught.value) == engine.OUT_OF_MEMORY


def test_a_range_that_is_not_one_still_raises(demo):
    start, end = demo.time_range
    with pytest.raises(PromQLError):
        plot_data(demo.store, Plot(id="p", title="P", query="cpu_cores"), TimeRange(end, start, 1_000_000_000))
