"""The quantile spectrum of a percentile plot: p1 … p100 and p99.01 … p100 over time, by the one percentile rule."""

from __future__ import annotations

import itertools

import numpy as np
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


def _dense(payload: dict) -> tuple[list[int], np.ndarray]:
    """(each column's time, [quantile][column] edge index or NaN) of a payload: its columns' runs laid out."""
    n = len(payload["columns"])
    times = payload["t"] if "t" in payload else [payload["start"] + k * payload["step"] for k in range(n)]
    cells = np.full((100, n), np.nan)
    for k, runs in enumerate(payload["columns"]):
        if runs:
            cells[:, k] = np.repeat([np.nan if i is None else i for i in runs[::2]], runs[1::2])
    return times, cells


def _values(payload: dict, name: str) -> dict[int, float]:
    times, cells = _dense(payload)
    row = cells[[n for n, _ in spectrum.MODES[payload["mode"]]].index(name)]
    return {t: payload["edges"][int(i)] for t, i in zip(times, row) if not np.isnan(i)}


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
    assert stride == 8 and len(payload["columns"]) == 46 and payload["step"] == 8000
    # A column covering `stride` steps of irate is the distribution of their sum: the p100 of a column is the
    # highest of its steps' p100 (the largest bucket any of them has).
    p100 = _engine(c16, 1.0, "syscall_latency", span)
    times = sorted(p100)
    for t, v in _values(payload, "p100").items():
        inside = [p100[x] for x in times if t <= x < t + stride * 1000]
        assert v == max(inside)


def test_a_query_without_data_has_no_spectrum(c16):
    assert spectrum.spectrum(c16.store, 'syscall_latency{op="nope"}', _span(c16), (), "tail") is None


def test_each_column_ships_as_runs_that_lay_out_to_its_cells():
    rng = np.random.default_rng(7)
    cells = np.sort(rng.integers(0, 12, (100, 40)), axis=0).astype(float)  # each column non-decreasing
    cells[:, 3] = np.nan  # a column without a point
    cells[:10, 5] = np.nan  # and one with a hole at its bottom, which a run of null carries
    cells[:, 7] = 4  # one run
    got = spectrum.runs(cells)
    assert got[3] == [] and got[5][:2] == [None, 10] and got[7] == [4, 100]
    assert sum(len(c) for c in got) < cells.size / 4  # runs, not cells
    laid_out = _dense({"mode": "full", "start": 0, "step": 1, "columns": got})[1]
    assert np.array_equal(laid_out, cells, equal_nan=True)


def test_the_payload_holds_the_runs_of_every_quantile_of_the_engine_and_the_grid_as_start_and_step(c16):
    span = _span(c16)
    payload = spectrum.spectrum(c16.store, "syscall_latency", span, (), "tail")
    assert set(payload) == {"mode", "start", "step", "stride", "edges", "columns"}  # names, q and t follow
    times, cells = _dense(payload)
    assert times == (span.times // 1_000_000).tolist() and payload["step"] == c16.interval_ns // 1_000_000
    for row, (_, q) in zip(cells, spectrum.MODES["tail"], strict=True):
        expected = _engine(c16, q, "syscall_latency", span)
        got = {t: payload["edges"][int(i)] for t, i in zip(times, row) if not np.isnan(i)}
        assert got == {t: v for t, v in expected.items() if t in got} and len(got) > 250


def test_columns_not_a_whole_millisecond_apart_ship_each_time(c16):
    span = _span(c16, c16.interval_ns + 500)
    payload = spectrum.spectrum(c16.store, "syscall_latency", span, (), "full")
    assert "start" not in payload and payload["t"] == (span.times // 1_000_000).tolist()
