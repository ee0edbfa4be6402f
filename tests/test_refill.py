"""Refilling the live window from a data dir's segments at start (rezgen.live.refill): what the window holds after
it is what pyarrow reads from the files (the newest retention of them), put in as whole columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rezgen.agent.pieces import Entry, Scalars, Snapshot
from rezgen.live.datadir import segment_file_name
from rezgen.live.ingest import Ingest
from rezgen.live.refill import refill
from rezgen.live.segment_writer import Row, write_part
from rezgen.store.histogram import Layout
from rezgen.store.model import SeriesKey
from rezgen.store.store import BlockSeries, HistogramSeries, Store

S = 1_000_000_000
T0 = 1_800_000_000 * S
LAYOUT = Layout(1, 3)  # 8 buckets


def snapshot(k: int, rng: np.random.Generator) -> Snapshot:
    """Second k: counters that grow, one that is missing now and then, a gauge, a histogram on most rows."""
    counters = [Entry(f"requests/{op}", SeriesKey("requests", (("op", op),)), 1000 * k + int(rng.integers(0, 900)),
                      unit="requests") for op in ("get", "put")]
    if k % 7:
        counters.append(Entry("errors", SeriesKey("errors"), k // 7))
    gauges = [Entry("queue", SeriesKey("queue"), int(rng.integers(-5, 50)))]
    histograms = [] if k % 5 == 3 else [Entry("latency", SeriesKey("latency"),
                                               np.cumsum(rng.integers(0, 4, LAYOUT.buckets)).astype(np.uint64) * k,
                                               LAYOUT)]
    return Snapshot(2, T0 + k * S, 1000, {}, counters, gauges, histograms)


def write_segments(node: Path, spans: list[range], seed: int = 1) -> list[Path]:
    rng = np.random.default_rng(seed)
    node.mkdir(parents=True)
    paths = []
    for span in spans:
        snaps = [snapshot(k, rng) for k in span]
        rows = [Row(s.timestamp_ns, s.duration_ns, [s.scalars(0), s.scalars(1)], s.histograms) for s in snaps]
        path = node / segment_file_name(rows[0].t_ns, rows[-1].t_ns)
        write_part(path, rows, None, 1000, {"rezgen_segment": "1"})
        paths.append(path)
    return paths


def cells(paths: list[Path], name: str, labels: dict[str, str], after_ns: int) -> list[tuple[int, object]]:
    """(timestamp, value) of the non-null cells later than `after_ns` of the column `name` with these labels in
    its field metadata (columns of one metric share a name), read with plain pyarrow."""
    found = []
    for path in paths:
        table = pq.read_table(path)
        matches = [i for i, f in enumerate(table.schema) if f.name == name
                   and all((f.metadata or {}).get(k.encode()) == v.encode() for k, v in labels.items())]
        assert len(matches) <= 1
        for index in matches:
            for t, value in zip(table.column(0).to_pylist(), table.column(index).to_pylist()):
                if value is not None and t > after_ns:
                    found.append((t, value))
    return found


def refilled(root: Path, retention_s: int) -> tuple[Ingest, int]:
    ingest = Ingest(Store(S), retention_s * S)
    ingest.add_agent("agent", None)
    return ingest, refill(ingest, root, {"agent": "node"})


def test_the_window_holds_the_newest_retention_of_the_segments_as_pyarrow_reads_them(tmp_path: Path) -> None:
    # The last segment is one row without `errors` and `latency` (second 133): columns differ between segments.
    paths = write_segments(tmp_path / "node", [range(0, 40), range(40, 100), range(100, 130), range(133, 134)])
    assert "errors" not in pq.read_schema(paths[-1]).names
    ingest, rows = refilled(tmp_path, 75)
    after = T0 + 133 * S - 75 * S  # the newest sample less the retention
    stamps = sorted(t for p in paths for t in pq.read_table(p).column(0).to_pylist() if t > after)
    table = ingest.agents()["agent"].table
    assert rows == len(stamps) == 72 and table.timestamps.tolist() == stamps
    assert ingest.seq == 72 and ingest.newest_ns == stamps[-1]
    store = ingest.store
    columns = [("requests/get", "requests", {"op": "get"}), ("requests/put", "requests", {"op": "put"}),
               ("errors", "errors", {}), ("queue", "queue", {})]
    for column, name, labels in columns:
        (series,) = [s for s in store.series_of(name) if dict(s.key.labels) == labels]
        assert isinstance(series, BlockSeries)
        expected = cells(paths, column, labels, after)
        times, values = series.points()
        assert len(expected) > 50 and times.tolist() == [t for t, _ in expected]
        assert values.tolist() == [float(v) for _, v in expected]  # type: ignore[arg-type]
    (latency,) = store.series_of("latency")
    assert isinstance(latency, HistogramSeries)
    window = latency.window()
    expected = cells(paths, "latency:buckets", {}, after)
    assert len(expected) == 57 and window.times.tolist() == [t for t, _ in expected]
    assert window.cumulative(np.arange(len(expected))).tolist() == [[float(x) for x in v] for _, v in expected]


def test_rows_already_refilled_from_an_overlapping_segment_are_not_added_twice(tmp_path: Path) -> None:
    paths = write_segments(tmp_path / "node", [range(0, 30), range(20, 50)])
    ingest, rows = refilled(tmp_path, 3600)
    first = pq.read_table(paths[0], columns=["timestamp"]).column(0).to_pylist()
    second = pq.read_table(paths[1], columns=["timestamp"]).column(0).to_pylist()
    assert rows == 50
    assert ingest.agents()["agent"].table.timestamps.tolist() == first + [t for t in second if t > first[-1]]


def test_a_segment_that_cannot_be_read_is_skipped_and_the_others_refill(tmp_path: Path, caplog) -> None:
    paths = write_segments(tmp_path / "node", [range(0, 20), range(20, 40), range(40, 60)])
    raw = bytearray(paths[1].read_bytes())
    raw[8 : len(raw) // 2] = b"\xff" * (len(raw) // 2 - 8)
    paths[1].write_bytes(bytes(raw))
    ingest, rows = refilled(tmp_path, 3600)
    good = cells([paths[0], paths[2]], "queue", {}, 0)
    assert rows == 40
    assert ingest.agents()["agent"].table.timestamps.tolist() == [t for t, _ in good]
    assert "skipping a segment" in caplog.text
    (queue,) = ingest.store.series_of("queue")
    assert queue.points()[1].tolist() == [float(v) for _, v in good]  # type: ignore[arg-type]


@pytest.mark.parametrize("bulk", [False, True])
def test_bulk_rows_and_snapshot_by_snapshot_rows_make_the_same_window(bulk: bool) -> None:
    rng = np.random.default_rng(3)
    snaps = [snapshot(k, rng) for k in range(200)]
    retention = 90 * S
    ingest = Ingest(Store(S), retention)
    ingest.add_agent("agent", None)
    if bulk:
        for lo in (0, 120):
            part = snaps[lo : lo + 120]
            # Entries differ between snapshots (`errors` comes and goes): columns of every key, NaN where absent.
            scalars = []
            for index in (0, 1):
                keys = sorted({e.key for s in part for e in s.scalars(index).entries()}, key=str)
                matrix = np.full((len(part), len(keys)), np.nan)
                for i, s in enumerate(part):
                    for e in s.scalars(index).entries():
                        matrix[i, keys.index(e.key)] = e.value
                identities = [({}, key, None) for key in keys]
                scalars.append(Scalars([str(k) for k in keys], identities, matrix))
            ingest.extend("agent", np.array([s.timestamp_ns for s in part]), scalars)
    else:
        for s in snaps:
            ingest.append("agent", Snapshot(2, s.timestamp_ns, None, {}, s.scalars(0).entries(),
                                            s.scalars(1).entries(), []))
    table = ingest.agents()["agent"].table
    assert table.timestamps[-1] == T0 + 199 * S
    assert table.timestamps[0] <= T0 + 199 * S - retention  # the window: at least the retention
    stamps = table.timestamps.tolist()
    for name, truth in [("queue", lambda s: s.scalars(1).entries()[0].value), ("errors", None)]:
        (series,) = ingest.store.series_of(name)
        times, values = series.points()
        by_time = {s.timestamp_ns: s for s in snaps}
        if truth is None:
            expected = [(t, float(e.value)) for t in stamps for e in by_time[t].scalars(0).entries()
                        if e.key == SeriesKey("errors")]
        else:
            expected = [(t, float(truth(by_time[t]))) for t in stamps]
        assert list(zip(times.tolist(), values.tolist())) == expected


def test_room_is_made_for_the_rows_at_the_segments_pace_not_at_the_polling_interval(tmp_path: Path) -> None:
    write_segments(tmp_path / "node", [range(0, 300), range(300, 600)])
    ingest = Ingest(Store(S // 10), 3600 * S)  # polled every 100 ms (this run), sampled every second (the files)
    ingest.add_agent("agent", None)
    assert refill(ingest, tmp_path, {"agent": "node"}) == 600
    block = ingest.agents()["agent"].table.block
    assert 600 <= block._data.shape[1] <= 600 * 1.3 + 64  # not the 36,000 rows an hour at 100 ms would be
