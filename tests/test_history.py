"""Reading a range of the data dir back as one store (`rezgen.live.history`): a table per node whose rows are the
segments' rows in time order, series joined across segments (absent where a segment lacks them), rows repeated in
two segments kept once, and a long range read at every k-th row. Expectations from the rows written."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from rezgen.agent.pieces import Entry, Snapshot
from rezgen.live import history
from rezgen.live.datadir import segment_file_name
from rezgen.live.history import history_store
from rezgen.live.segment_writer import Row, write_part
from rezgen.store.histogram import Layout
from rezgen.store.model import SeriesKey

S = 1_000_000_000
T0 = (time.time_ns() // S - 3600) * S


def rows(seconds: range, with_gauge: bool = True) -> list[Row]:
    out = []
    for s in seconds:
        counters = [Entry("requests", SeriesKey("requests"), 1000 + 10 * s)]
        gauges = [Entry("queue", SeriesKey("queue"), s % 7)] if with_gauge else []
        hist = [Entry("latency", SeriesKey("latency"), np.array([s, 2 * s, 3 * s], dtype=np.uint64), Layout(0, 2))]
        snap = Snapshot(2, T0 + s * S, None, {}, counters, gauges, hist)
        out.append(Row(snap.timestamp_ns, None, [snap.scalars(0), snap.scalars(1)], snap.histograms))
    return out


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    node = tmp_path / "host-a"
    node.mkdir()
    for part, with_gauge in ((range(0, 10), True), (range(8, 20), False), (range(20, 30), True)):  # 8, 9 twice
        write_part(node / segment_file_name(T0 + part[0] * S, T0 + part[-1] * S), rows(part, with_gauge), None,
                   1000, {})
    return tmp_path


def test_segments_join_into_one_table_per_node(data_dir: Path) -> None:
    store = history_store(data_dir, T0 + 3 * S, T0 + 25 * S, S, lookback_ns=2 * S)
    assert store is not None and [t.name for t in store.tables] == ["host-a"]
    assert store.tables[0].timestamps.tolist() == [T0 + s * S for s in range(1, 26)]
    [requests] = store.series_of("requests")
    assert requests.points()[1].tolist() == [1000 + 10 * s for s in range(1, 26)]
    [queue] = store.series_of("queue")  # absent in the middle segment (and its rows 8, 9 came from the first)
    times, values = queue.points()
    assert times.tolist() == [T0 + s * S for s in [*range(1, 10), *range(20, 26)]]
    assert values.tolist() == [s % 7 for s in [*range(1, 10), *range(20, 26)]]
    [latency] = store.series_of("latency")
    times, counts = latency.points()  # observations (cumulative, summed over buckets) per row
    assert counts.tolist() == [6 * s for s in range(1, 26)]


def test_a_long_range_is_read_at_every_kth_row(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(history, "MAX_ROWS", 10)
    store = history_store(data_dir, T0, T0 + 29 * S, S, lookback_ns=0)
    assert store is not None
    assert store.tables[0].timestamps.tolist() == [T0 + s * S for s in range(0, 30, 3)]
    assert store.series_of("requests")[0].points()[1].tolist() == [1000 + 10 * s for s in range(0, 30, 3)]
    assert store.series_of("latency")[0].points()[1].tolist() == [6 * s for s in range(0, 30, 3)]


def test_only_the_metrics_asked_for_are_read(data_dir: Path) -> None:
    store = history_store(data_dir, T0, T0 + 29 * S, S, lookback_ns=0, metrics={"queue", "latency"})
    assert store is not None
    assert store.metrics() == ["latency", "queue"]


def test_nothing_on_disk_is_no_store(tmp_path: Path) -> None:
    assert history_store(tmp_path, T0, T0 + S, S) is None
