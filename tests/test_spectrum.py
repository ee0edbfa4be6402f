"""The quantile spectrum of a percentile plot: p1 … p100 and p99.01 … p100 over time, by the one percentile rule."""

from __future__ import annotations

import itertools

import pytest
from shared import shared_recording

from rezgen.dashboards import Plot
from rezgen.plotdata import spectrum
from rezgen.plotdata.plots import TimeRange, plot_data
from rezgen.promql.engine import range_query
from rezgen.recording.reader import open_recording
from rezgen.timeparse import ceil_ms


@pytest.fixture(scope="module")
def c16():
    return open_recording(shared_recording("c16.parquet"))


def _span(recording, step_ns: int | None = None) -> TimeRange:
    start, end = recording.time_range
    return TimeRange(ceil_ms(start), end, step_ns or recording.interval_ns)


def _values(payload: dict, name: str) -> dict[int, float]:
    row = payload["rows"][payload["names"].index(name)]
    return {t: payload["edges"][i] for t, i in zip(payload["t"], row) if i is not None}


def _engine(recording, q: float, query: str, span: TimeRange) -> dict[int, float]:
    result = range_query(recording.store, f"histogram_quantile({q}, sum by () (irate({query}[5m])))",
                         span.start_ns, span.end_ns, span.step_ns)
    (series,) = result.series
    return dict(zip((series.times // 1_000_000).tolist(), series.values.tolist()))


def test_the_modes_are_a_hundred_quantiles_each_ending_at_p100():
    assert [n for n, _ in spectrum.MODES["full"]][:3] == ["p1", "p2", "p3"]
    assert [n for n, _ in spectrum.MODES["tail"]][:2] == ["p99.01", "p99.02"]
    for mode in spectrum.MODES.values():
        assert len(mode) == 100 and mode[-1] == ("p100", 1.0)
        assert all(a[1] < b[1] for a, b in itertools.pairwise(mode))


@pytest.mark.parametrize("query", ["syscall_latency", "scheduler_runqueue_latency"])
def test_the_p99_row_is_the_p99_line_of_the_percentile_plot(c16, query):
    span = _span(c16)
    plot = Plot(id="p", title="p", query=query, unit="time", kind="percentiles", width="full", log=True, top=5,
                description="")
    line = plot_data(c16.store, plot, span)
    (level,) = line["levels"]
    p99 = {t: v for t, v in zip(level["t"], level["values"][line["names"].index("p99")]) if v is not None}
    payload = spectrum.spectrum(c16.store, query, span, (), "full")
    assert _values(payload, "p99") == p99 and len(p99) > 250


@pytest.mark.parametrize(("mode", "name", "q"), [("full", "p1", 0.01), ("full", "p50", 0.5), ("full", "p100", 1.0),
                                                 ("tail", "p99.5", 0.995), ("tail", "p99.99", 0.9999)])
def test_each_row_equals_histogram_quantile_of_the_engine(c16, mode, name, q):
    span = _span(c16)
    payload = spectrum.spectrum(c16.store, "syscall_latency", span, (), mode)
    got = _values(payload, name)
    expected = _engine(c16, q, "syscall_latency", span)
    assert got == {t: v for t, v in expected.items() if t in got} and len(got) > 250


def test_a_long_range_is_cut_into_columns_whose_values_come_from_their_summed_rates(c16, monkeypatch):
    monkeypatch.setattr(spectrum, "COLUMNS", 50)
    span = _span(c16)
    payload = spectrum.spectrum(c16.store, "syscall_latency", span, (), "full")
    stride = payload["stride"]
    assert stride == 8 and len(payload["t"]) == 46 == len(payload["rows"][0])
    # A column covering `stride` steps of irate is the distribution of their sum: the p100 of a column is the
    # highest of its steps' p100 (the largest bucket any of them has).
    p100 = _engine(c16, 1.0, "syscall_latency", span)
    times = sorted(p100)
    for t, v in _values(payload, "p100").items():
        inside = [p100[x] for x in times if t <= x < t + stride * 1000]
        assert v == max(inside)


def test_a_query_without_data_has_no_spectrum(c16):
    assert spectrum.spectrum(c16.store, 'syscall_latency{op="nope"}', _span(c16), (), "tail") is None
