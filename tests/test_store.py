"""The store: tables of timestamps, row-aligned series (NaN = no sample), histograms, lazy loading and eviction.

Times are written in seconds for readability and stored as int64 nanoseconds (`S` = one second).
"""

from __future__ import annotations

import numpy as np
import pytest
from storebuilder import build_store, hist, parse_key

from rezgen.store.histograms import HistogramColumn
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels
from rezgen.store.store import BlockSeries, HistogramSeries, Series, Store, Table

S = 1_000_000_000


def gauge(name: str = "x", **labels: str) -> SeriesMeta:
    return SeriesMeta(SeriesKey(name, make_labels(labels)), Kind.GAUGE)


def histogram_meta(name: str = "h", g: int = 2, m: int = 5) -> SeriesMeta:
    return SeriesMeta(SeriesKey(name), Kind.HISTOGRAM, grouping_power=g, max_value_power=m)


def live(*names: str) -> tuple[Store, Table, list[Series]]:
    store = Store()
    table = store.add_table(Table("live"))
    series = [store.add_series(Series(gauge(n), table)) for n in names]
    return store, table, series


def points(series: Series, t_lo: float | None = None, t_hi: float | None = None) -> tuple[list[float], list[float]]:
    lo = None if t_lo is None else int(t_lo * S)
    hi = None if t_hi is None else int(t_hi * S)
    t, v = series.points(lo, hi)
    return (t / S).tolist(), v.tolist()


def capacity(grow_array) -> int:
    return grow_array._data.shape[0]


def dense(counts: dict[int, float], buckets: int = 16) -> np.ndarray:
    out = np.zeros(buckets)
    for index, count in counts.items():
        out[index] = count
    return out


# --- Table ------------------------------------------------------------------------------------------------------------

def test_append_row_returns_absolute_row_numbers():
    table = Table("t")
    assert [table.append_row(t * S) for t in (1, 2, 3)] == [0, 1, 2]


def test_timestamps_must_advance():
    table = Table("t")
    table.append_row(5 * S)
    with pytest.raises(ValueError):
        table.append_row(5 * S)
    with pytest.raises(ValueError):
        table.append_row(4 * S)


def test_rows_appended_at_once_are_written_as_whole_columns_of_the_block():
    store = Store()
    table = store.add_table(Table("live"))
    table.append_row(0)
    a, b = (store.add_series(BlockSeries(gauge(n), table)) for n in "ab")
    table.reserve(1000, 2)  # room taken once: appends and writes below grow nothing
    data = table.block._data
    assert table.extend_rows(np.array([1, 2, 3]) * S) == 1
    table.block.write_rows(np.array([a.slot, b.slot]), np.array([[1.0, 2.0, np.nan], [np.nan, np.nan, np.nan]]))
    assert table.block._data is data
    assert points(a) == ([1.0, 2.0], [1.0, 2.0]) and points(b) == ([], [])
    assert table.block.newest(a.slot) == 2 and table.block.newest(b.slot) == -1  # the newest row with a value
    table.evict_before(3 * S)
    assert not a.has_samples() and points(a) == ([], [])
    with pytest.raises(ValueError):
        table.extend_rows(np.array([3, 4]) * S)  # must advance past the last row


def test_rows_between_is_left_open_and_right_closed():
    table = Table("t", np.array([10, 20, 30, 40]) * S)
    assert table.rows_between(20 * S, 40 * S) == slice(2, 4)  # (20, 40] → rows of 30 and 40
    assert table.rows_between(19 * S, 39 * S) == slice(1, 3)  # (19, 39] → 20 and 30
    assert table.rows_between(None, 20 * S) == slice(0, 2)
    assert table.rows_between(30 * S, None) == slice(3, 4)
    assert table.rows_between(None, None) == slice(0, 4)


def test_rows_between_an_empty_interval():
    table = Table("t", np.array([10, 20]) * S)
    window = table.rows_between(40 * S, 30 * S)
    assert window.stop - window.start == 0
    window = table.rows_between(10 * S, 10 * S)
    assert window.stop - window.start == 0


def test_evict_before_drops_older_rows_and_keeps_absolute_numbers():
    table = Table("t")
    for t in range(5):
        table.append_row(t * S)
    assert table.evict_before(2 * S) == 2  # rows at 0 s and 1 s; the one at exactly 2 s stays
    assert (table.timestamps / S).tolist() == [2, 3, 4]
    assert table.first_row == 2
    assert table.append_row(5 * S) == 5


def test_evict_before_nothing_old():
    table = Table("t", np.array([10, 20]) * S)
    assert table.evict_before(5 * S) == 0
    assert table.first_row == 0


# --- Series: values, absent rows, windows -----------------------------------------------------------------------------

def test_points_skip_rows_without_a_sample():
    store = build_store({"x": [(1, 10), (2, None), (3, 30)], "y": [(2, 5)]})
    (x,) = store.series_of("x")
    assert points(x) == ([1, 3], [10, 30])


def test_points_window_is_t_lo_exclusive_t_hi_inclusive():
    store = build_store({"x": [(t, t * 10) for t in range(1, 6)]})
    (x,) = store.series_of("x")
    assert points(x, 2, 4) == ([3, 4], [30, 40])
    assert points(x, 1.5, 4.5) == ([2, 3, 4], [20, 30, 40])
    assert points(x, None, 2) == ([1, 2], [10, 20])
    assert points(x, 4, None) == ([5], [50])


def test_nan_means_absent():
    _store, table, (x,) = live("x")
    for t, value in [(1, 1.0), (2, float("nan")), (3, 3.0)]:
        x.set(table.append_row(t * S), value)
    assert points(x) == ([1, 3], [1.0, 3.0])


def test_rows_a_series_was_not_written_for_are_absent():
    _store, table, (x, y) = live("x", "y")
    for t in range(1, 5):
        row = table.append_row(t * S)
        x.set(row, t)
        if t == 2:
            y.set(row, 20)
    assert points(y) == ([2], [20])
    assert points(x) == ([1, 2, 3, 4], [1, 2, 3, 4])


def test_a_series_added_to_a_table_with_rows_starts_empty():
    store, table, (x,) = live("x")
    for t in range(1, 4):
        x.set(table.append_row(t * S), t)
    late = store.add_series(Series(gauge("late"), table))
    assert points(late) == ([], [])
    late.set(table.append_row(4 * S), 40)
    assert points(late) == ([4], [40])


def test_zero_is_a_value_not_an_absence():
    store = build_store({"x": [(1, 0), (2, 0)]})
    (x,) = store.series_of("x")
    assert points(x) == ([1, 2], [0, 0])


# --- eviction ---------------------------------------------------------------------------------------------------------

def test_eviction_drops_old_samples_of_every_series():
    store = build_store({"x": [(t, t) for t in range(1, 6)], "y": [(t, -t) for t in range(1, 6)]})
    store.evict_before(3 * S)
    (x,), (y,) = store.series_of("x"), store.series_of("y")
    assert points(x) == ([3, 4, 5], [3, 4, 5])
    assert points(y) == ([3, 4, 5], [-3, -4, -5])


def test_writing_after_eviction_lands_on_the_right_row():
    _store, table, (x,) = live("x")
    for t in range(1, 6):
        x.set(table.append_row(t * S), t)
    table.evict_before(4 * S)
    row = table.append_row(6 * S)
    assert row == 5
    x.set(row, 60)
    assert points(x) == ([4, 5, 6], [4, 5, 60])


def test_eviction_of_a_series_that_stopped_reporting():
    """The series' column is shorter than the table: eviction past its end must keep later writes aligned."""
    _store, table, (x, y) = live("x", "y")
    for t in range(1, 4):
        row = table.append_row(t * S)
        x.set(row, t)
        y.set(row, t)
    for t in range(4, 8):
        x.set(table.append_row(t * S), t)  # y is silent
    table.evict_before(6 * S)
    assert points(y) == ([], [])
    row = table.append_row(8 * S)
    y.set(row, 80)
    x.set(row, 8)
    assert points(y) == ([8], [80])
    assert points(x) == ([6, 7, 8], [6, 7, 8])


def test_store_evict_before_covers_every_table():
    store = Store()
    a, b = store.add_table(Table("a")), store.add_table(Table("b"))
    xa = store.add_series(Series(gauge("x", src="a"), a))
    xb = store.add_series(Series(gauge("x", src="b"), b))
    for t in range(1, 5):
        xa.set(a.append_row(t * S), t)
        xb.set(b.append_row(t * S + S // 2), t)
    store.evict_before(3 * S)
    assert points(xa) == ([3, 4], [3, 4])
    assert points(xb) == ([3.5, 4.5], [3, 4])


def test_memory_stays_bounded_across_many_append_and_evict_cycles():
    """A 60 s retention window over 3 000 one-second rows: capacities stop growing once the window is full."""
    store, table, (x, sparse) = live("x", "sparse")
    h = store.add_series(HistogramSeries(histogram_meta(), table))
    cumulative = np.zeros(16)

    def cycle(t: int) -> None:
        row = table.append_row(t * S)
        x.set(row, t)
        if t % 7 == 0:
            sparse.set(row, t)
        cumulative[t % 16] += 1
        h.set_cumulative(row, cumulative.copy())
        table.evict_before((t - 60) * S)

    def sizes() -> tuple[int, ...]:
        column = h._histogram()
        return (capacity(table._t), capacity(x._values), capacity(sparse._values), capacity(column._present),
                capacity(column._ends), capacity(column._index), capacity(column._count))

    for t in range(1, 300):
        cycle(t)
    settled = sizes()
    for t in range(300, 3_000):
        cycle(t)
    assert sizes() == settled
    assert max(settled) <= 4 * 61
    assert len(table.timestamps) == 61
    assert points(x, 2_997, None) == ([2_998, 2_999], [2_998, 2_999])
    assert points(sparse, None, None)[0] == [t for t in range(2_939, 3_000) if t % 7 == 0]
    t, totals = h.points()
    assert totals[-1] == 2_999  # one observation per row, none evicted from the cumulative counts


# --- histograms in the store ------------------------------------------------------------------------------------------

def test_histogram_points_are_cumulative_observation_counts():
    store = build_store(histograms={"h": hist(2, 5, [(1, {3: 1}), (2, {3: 1, 8: 2}), (3, None), (4, {3: 4, 8: 2})])})
    (h,) = store.series_of("h")
    t, totals = h.points()
    assert (t / S).tolist() == [1, 2, 4]
    assert totals.tolist() == [1, 3, 6]


def test_histogram_window_is_t_lo_exclusive_t_hi_inclusive():
    store = build_store(histograms={"h": hist(2, 5, [(t, {0: t}) for t in range(1, 6)])})
    (h,) = store.series_of("h")
    window = h.window(2 * S, 4 * S)
    assert (window.times / S).tolist() == [3, 4]
    np.testing.assert_array_equal(window.cumulative(np.arange(2)), np.stack([dense({0: 3}), dense({0: 4})]))


def test_histogram_cumulative_values_survive_eviction():
    store = build_store(histograms={"h": hist(2, 5, [(1, {1: 5}), (2, {1: 7, 9: 1}), (3, {1: 8, 9: 1}),
                                                     (4, {1: 8, 9: 3})])})
    store.evict_before(3 * S)
    (h,) = store.series_of("h")
    window = h.window()
    assert (window.times / S).tolist() == [3, 4]
    np.testing.assert_array_equal(window.cumulative(np.arange(2)), np.stack([dense({1: 8, 9: 1}),
                                                                             dense({1: 8, 9: 3})]))
    np.testing.assert_array_equal(window.increase(np.array([0]), np.array([1])), [dense({9: 2})])


def test_histogram_after_a_reset_and_eviction():
    samples = [(1, {1: 5}), (2, {1: 9}), (3, {1: 1}), (4, {1: 3, 2: 1}), (5, {1: 4, 2: 1})]
    store = build_store(histograms={"h": hist(2, 5, samples)})
    (h,) = store.series_of("h")
    window = h.window()
    # 5 → 9 (+4) → 1 (restart: +1) → 3 (+2) → 4 (+1): 8 in bucket 1; bucket 2: +1.
    np.testing.assert_array_equal(window.increase(np.array([0]), np.array([4])), [dense({1: 8, 2: 1})])
    store.evict_before(4 * S)  # the reset row goes
    window = h.window()
    np.testing.assert_array_equal(window.cumulative(np.arange(2)), np.stack([dense({1: 3, 2: 1}),
                                                                             dense({1: 4, 2: 1})]))


def test_histogram_absent_rows_then_eviction():
    store = build_store({"x": [(t, t) for t in range(1, 7)]},
                        histograms={"h": hist(2, 5, [(1, {0: 1}), (4, {0: 2}), (6, {0: 5})])})
    store.evict_before(3 * S)
    (h,) = store.series_of("h")
    t, totals = h.points()
    assert (t / S).tolist() == [4, 6]
    assert totals.tolist() == [2, 5]


def test_histogram_that_stopped_reporting_then_resumes_after_eviction():
    store, table, (x,) = live("x")
    h = store.add_series(HistogramSeries(histogram_meta(), table))
    for t in range(1, 3):
        row = table.append_row(t * S)
        x.set(row, t)
        h.set_cumulative(row, dense({2: t}))
    for t in range(3, 6):
        x.set(table.append_row(t * S), t)
    table.evict_before(5 * S)
    h.set_cumulative(table.append_row(6 * S), dense({2: 10}))
    t, totals = h.points()
    assert (t / S).tolist() == [6]
    assert totals.tolist() == [10]


# --- lazy loading -----------------------------------------------------------------------------------------------------

def test_a_lazy_series_loads_on_first_read_only():
    table = Table("rec", np.array([1, 2, 3]) * S)
    calls = []

    def loader() -> np.ndarray:
        calls.append(1)
        return np.array([10.0, np.nan, 30.0])

    series = Series(gauge(), table, loader=loader)
    assert not series.loaded
    assert calls == []
    assert points(series) == ([1, 3], [10, 30])
    assert series.loaded
    assert points(series, 1, 3) == ([3], [30])
    assert calls == [1]


def test_unload_forgets_values_and_reloads_on_demand():
    table = Table("rec", np.array([1, 2]) * S)
    calls = []

    def loader() -> np.ndarray:
        calls.append(1)
        return np.array([1.0, 2.0])

    series = Series(gauge(), table, loader=loader)
    points(series)
    series.unload(loader)
    assert not series.loaded
    assert points(series) == ([1, 2], [1, 2])
    assert len(calls) == 2


def test_provide_hands_over_values_without_calling_the_loader():
    table = Table("rec", np.array([1, 2]) * S)

    def loader() -> np.ndarray:
        raise AssertionError("must not be called")

    series = Series(gauge(), table, loader=loader)
    series.provide(np.array([5, 6]))
    assert series.loaded
    assert points(series) == ([1, 2], [5, 6])


def test_provide_does_not_replace_loaded_values():
    table = Table("rec", np.array([1]) * S)
    series = Series(gauge(), table, loader=lambda: np.array([1.0]))
    points(series)
    series.provide(np.array([99.0]))
    assert points(series) == ([1], [1])


def test_a_lazy_histogram_loads_on_first_read():
    table = Table("rec", np.array([1, 2]) * S)
    calls = []

    def loader() -> HistogramColumn:
        calls.append(1)
        column = HistogramColumn(16)
        column.append_cumulative(dense({4: 1}))
        column.append_cumulative(dense({4: 3, 5: 1}))
        return column

    h = HistogramSeries(histogram_meta(), table, loader=loader)
    assert not h.loaded
    _t, totals = h.points()
    assert h.loaded
    assert totals.tolist() == [1, 4]
    h.points()
    assert calls == [1]


def test_a_histogram_unloads_and_reloads_the_same_counts():
    table = Table("rec", np.array([1, 2]) * S)

    def loader() -> HistogramColumn:
        column = HistogramColumn(16)
        column.append_cumulative(dense({4: 1}))
        column.append_cumulative(dense({4: 3, 5: 1}))
        column.shrink()  # a complete column cut to size reads the same
        return column

    h = HistogramSeries(histogram_meta(), table, loader=loader)
    assert h.loaded_bytes == 0
    h.points()
    assert h.loaded_bytes == 3 * (2 + 8) + 2 * 10  # three non-zero bucket deltas (index, count) over two rows
    h.unload(loader)
    assert not h.loaded and h.loaded_bytes == 0
    assert h.points()[1].tolist() == [1, 4]


def test_an_unread_lazy_series_survives_queries_of_others():
    store = Store()
    table = store.add_table(Table("rec", np.array([1, 2]) * S))
    store.add_series(Series(gauge("a"), table, loader=lambda: np.array([1.0, 2.0])))
    b = store.add_series(Series(gauge("b"), table, loader=lambda: np.array([3.0, 4.0])))
    (a,) = store.series_of("a")
    points(a)
    assert a.loaded and not b.loaded


# --- Store ------------------------------------------------------------------------------------------------------------

def test_time_range_spans_all_tables():
    store = Store()
    a, b = store.add_table(Table("a")), store.add_table(Table("b"))
    for t in (5, 6, 7):
        a.append_row(t * S)
    for t in (3, 4):
        b.append_row(t * S)
    assert store.time_range() == (3 * S, 7 * S)


def test_time_range_of_an_empty_store_is_none():
    assert Store().time_range() is None
    store = Store()
    store.add_table(Table("empty"))
    assert store.time_range() is None


def test_time_range_follows_eviction():
    store = build_store({"x": [(t, t) for t in range(1, 6)]})
    store.evict_before(3 * S)
    assert store.time_range() == (3 * S, 5 * S)


def test_series_are_indexed_by_metric_and_key():
    store = build_store({'x{a="1"}': [(1, 1)], 'x{a="2"}': [(1, 2)], "y": [(1, 3)]})
    assert store.metrics() == ["x", "y"]
    assert sorted(s.key.label("a") for s in store.series_of("x")) == ["1", "2"]
    assert store.series_of("nope") == []
    assert len(list(store)) == 3
    table = store.tables[0]
    found = store.get(table, parse_key('x{a="2"}'))
    assert found is not None and points(found) == ([1], [2])
    assert store.get(table, parse_key('x{a="3"}')) is None


def test_remove_series():
    store = build_store({'x{a="1"}': [(1, 1)], 'x{a="2"}': [(1, 2)]})
    table = store.tables[0]
    gone = store.get(table, parse_key('x{a="1"}'))
    store.remove_series([gone])
    assert [s.key.label("a") for s in store.series_of("x")] == ["2"]
    assert store.get(table, gone.key) is None
    assert gone not in table.series
    store.remove_series(store.series_of("x"))
    assert store.metrics() == []


def test_series_key_helpers():
    key = parse_key('m{b="2",a="1"}')
    assert key.labels == (("a", "1"), ("b", "2"))  # sorted
    assert key.label("b") == "2" and key.label("c") is None
    assert key.prometheus_labels() == {"__name__": "m", "a": "1", "b": "2"}
    assert str(key) == 'm{a="1",b="2"}'
