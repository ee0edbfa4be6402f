"""The data dir of live history (`rezgen.live.datadir`): segments per node named by their first and last sample,
an open segment journaled and encoded once when it spans `--segment`, recovery of what a killed run left, retention
by age and by size, and the writer's faults. Files are read back with plain pyarrow."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rezgen.agent.pieces import Entry, Snapshot
from rezgen.live.datadir import (
    CLOSING,
    OPEN,
    ROLLUPS,
    HistoryWriter,
    close_open,
    enforce_retention,
    list_segments,
    node_dir_name,
    parse_size,
    recover,
    segment_file_name,
)
from rezgen.live.segment_writer import write_part
from rezgen.store.histogram import Layout
from rezgen.store.model import SeriesKey

S = 1_000_000_000
T0 = (time.time_ns() // S - 3600) * S  # an hour ago: within retention


def snapshot(t_ns: int, counter: int, gauge: int = 7, histogram: list[int] | None = None) -> Snapshot:
    counters = [Entry("requests", SeriesKey("requests", (("op", "get"),)), counter, unit="requests")]
    gauges = [Entry("queue", SeriesKey("queue"), gauge)]
    histograms = [] if histogram is None else \
        [Entry("latency", SeriesKey("latency"), np.array(histogram, dtype=np.uint64), Layout(0, 2))]
    return Snapshot(2, t_ns, 1000, {}, counters, gauges, histograms)


def writer(root: Path, segment_s: int = 10, keep_s: int = 86_400, keep_bytes: int = 10**12) -> HistoryWriter:
    return HistoryWriter(root, 1000, {}, {"agent": "node-a"}, segment_ns=segment_s * S, keep_ns=keep_s * S,
                         keep_bytes=keep_bytes, flush_s=3600)


def test_node_directories_are_safe_file_names() -> None:
    assert node_dir_name("127.0.0.1:4241") == "127.0.0.1_4241"
    assert node_dir_name("../../etc") == "_.._etc"
    assert node_dir_name("..") == "_"
    assert "/" not in node_dir_name("a/b<script>")


def test_sizes_parse_in_decimal_and_binary_units() -> None:
    assert parse_size("10GB") == 10 * 10**9
    assert parse_size("500MB") == 500 * 10**6
    assert parse_size("1.5g") == 1_500_000_000
    assert parse_size("20GiB") == 20 * 2**30
    assert parse_size("4096") == 4096
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_segments_close_when_they_span_the_segment_length_and_are_named_by_their_samples(tmp_path: Path) -> None:
    w = writer(tmp_path, segment_s=10)
    for i in range(6):  # 0..5 s: not yet a segment
        w.add("agent", snapshot(T0 + i * S, 100 + i))
    w.rotate()
    node = tmp_path / "node-a"
    assert [p.name for p in node.glob("*.parquet")] == []
    assert len(list((node / OPEN).glob("*.parquet"))) == 1
    for i in range(6, 12):  # 6..11 s: the open segment spans 10 s with the row of 10 s, which closes it
        w.add("agent", snapshot(T0 + i * S, 100 + i, histogram=[0, i, i]))
    w.rotate()
    closed = sorted(node.glob("*.parquet"))
    assert [p.name for p in closed] == [segment_file_name(T0, T0 + 10 * S)]
    assert sorted(p.suffix for p in (node / OPEN).iterdir()) == [".journal", ".parquet"]  # 11 s: the next segment's
    table = pq.read_table(closed[0])
    assert table.column("timestamp").to_pylist() == [T0 + i * S for i in range(11)]
    assert table.column("requests").to_pylist() == [100 + i for i in range(11)]
    assert table.column("queue").to_pylist() == [7] * 11
    assert table.column("latency:buckets").to_pylist() == [None] * 6 + [[0, i, i] for i in range(6, 11)]
    assert table.schema.field("requests").metadata[b"op"] == b"get"
    assert table.schema.metadata[b"rezgen_segment"] == b"1"
    w.add("agent", snapshot(T0 + 12 * S, 112))
    w.close()  # the rest becomes a (short) segment of its own
    assert [p.name for p in sorted(node.glob("*.parquet"))] == [segment_file_name(T0, T0 + 10 * S),
                                                              segment_file_name(T0 + 11 * S, T0 + 12 * S)]
    assert not (node / OPEN).exists()
    assert pq.read_table(node / segment_file_name(T0 + 11 * S, T0 + 12 * S)).column("latency:buckets").to_pylist() \
        == [[0, 11, 11], None]
    spans = [(s.start_ns, s.end_ns, s.open) for s in list_segments(tmp_path)["node-a"]]
    assert spans == [(T0, T0 + 10 * S + 999_999, False), (T0 + 11 * S, T0 + 12 * S + 999_999, False)]


def test_recovery_merges_the_parts_a_killed_run_of_the_previous_layout_left_open(tmp_path: Path) -> None:
    node = tmp_path / "node-a"
    (node / OPEN).mkdir(parents=True)
    write_part(node / OPEN / "0000-000-000000.parquet", _rows([0, 1, 2]), None, 1000, {})
    write_part(node / OPEN / "0000-000-000001.parquet", _rows([3, 4]), None, 1000, {})
    (node / OPEN / ".0000-000-000002.parquet.x.tmp").write_bytes(b"half a part")  # a write cut short
    assert recover(tmp_path) == 5
    assert [p.name for p in node.iterdir()] == [segment_file_name(T0, T0 + 4 * S)]
    assert pq.read_table(node / segment_file_name(T0, T0 + 4 * S)).column("timestamp").to_pylist() == \
        [T0 + i * S for i in range(5)]


def test_a_killed_runs_journal_closes_at_recovery_into_the_rows_it_held(tmp_path: Path) -> None:
    w = writer(tmp_path, segment_s=3600)
    expected = {}
    for i in range(40):  # histograms that come and go and change a few buckets a row; a counter that appears
        buckets = [i // 3, 2 * i, 5] if i % 17 != 5 else None
        w.add("agent", snapshot(T0 + i * S, 2**63 + i, gauge=-i, histogram=buckets))
        expected[T0 + i * S] = buckets
    w.tick()  # the journal appended, as every second; then a kill -9: nothing else
    node = tmp_path / "node-a"
    assert [p.suffix for p in (node / OPEN).iterdir()] == [".journal"]
    assert recover(tmp_path) == 40
    closed = node / segment_file_name(T0, T0 + 39 * S)
    assert [p.name for p in node.iterdir()] == [closed.name]
    table = pq.read_table(closed)
    assert table.column("timestamp").to_pylist() == list(expected)
    assert table.column("requests").to_pylist() == [2**63 + i for i in range(40)]  # exact u64
    assert table.column("queue").to_pylist() == [-i for i in range(40)]
    assert table.column("latency:buckets").to_pylist() == list(expected.values())
    assert table.column("duration").to_pylist() == [1000] * 40


def test_a_journal_cut_short_recovers_its_whole_rows_and_a_foreign_one_is_left_aside(tmp_path: Path, caplog) -> None:
    w = writer(tmp_path, segment_s=3600)
    for i in range(5):
        w.add("agent", snapshot(T0 + i * S, i, histogram=[i, i, i]))
        w.tick()
    node = tmp_path / "node-a"
    [path] = (node / OPEN).glob("*.journal")
    path.write_bytes(path.read_bytes()[:-7])  # a kill during the append of the last row
    (node / OPEN / "0007-000000.journal").write_bytes(b"not a journal at all")
    assert recover(tmp_path) == 4
    assert pq.read_table(node / segment_file_name(T0, T0 + 3 * S)).column("latency:buckets").to_pylist() == \
        [[i, i, i] for i in range(4)]
    assert (node / OPEN / "0007-000000.journal.damaged").exists()
    assert any("skipping an open segment" in r.getMessage() and "not a journal" in r.getMessage()
               for r in caplog.records)


def test_a_read_writes_the_open_rows_as_parts_which_go_when_the_segment_closes(tmp_path: Path) -> None:
    w = writer(tmp_path, segment_s=10)
    node = tmp_path / "node-a"
    for i in range(3):
        w.add("agent", snapshot(T0 + i * S, i))
    w.rotate()
    w.rotate()  # nothing new: no part
    for i in range(3, 5):
        w.add("agent", snapshot(T0 + i * S, i))
    w.rotate()
    parts = sorted((node / OPEN).glob("*.parquet"))
    assert [pq.read_table(p).column("requests").to_pylist() for p in parts] == [[0, 1, 2], [3, 4]]
    assert [(s.start_ns, s.open) for s in list_segments(tmp_path)["node-a"]] == [(T0, True), (T0 + 3 * S, True)]
    for i in range(5, 11):
        w.add("agent", snapshot(T0 + i * S, i))
    w.tick()
    assert [p.name for p in node.iterdir()] == [segment_file_name(T0, T0 + 10 * S)]  # parts and journal gone
    assert pq.read_table(node / segment_file_name(T0, T0 + 10 * S)).column("requests").to_pylist() == list(range(11))


def test_a_segment_merged_but_not_yet_renamed_is_renamed_at_recovery(tmp_path: Path) -> None:
    node = tmp_path / "node-a"
    node.mkdir()
    write_part(node / CLOSING, _rows([7, 8]), None, 1000, {})
    assert close_open(node) == 0
    assert [p.name for p in node.iterdir()] == [segment_file_name(T0 + 7 * S, T0 + 8 * S)]


def test_retention_deletes_the_oldest_segments_by_age_then_by_size(tmp_path: Path) -> None:
    node = tmp_path / "node-a"
    node.mkdir()
    names = []
    for k in range(5):  # five one-hour segments, the newest ending an hour ago
        start = time.time_ns() - (6 - k) * 3600 * S
        names.append(segment_file_name(start, start + 3599 * S))
        write_part(node / names[-1], _rows([0, 1], start), None, 1000, {})
    sizes = {n: (node / n).stat().st_size for n in names}
    # Age: segments that ended more than 3.5 h ago go (those that ended 5 h and 4 h ago).
    deleted = enforce_retention(tmp_path, int(3.5 * 3600 * S), 10**12, time.time_ns())
    assert [p.name for p in deleted] == names[:2]
    # Size: the oldest go until the rest fit.
    deleted = enforce_retention(tmp_path, 86_400 * S, sizes[names[4]], time.time_ns())
    assert [p.name for p in deleted] == names[2:4]
    assert sorted(p.name for p in node.iterdir()) == [names[4]]


def test_a_segments_rollups_count_in_its_size_and_go_with_it(tmp_path: Path) -> None:
    node = tmp_path / "node-a"
    (node / ROLLUPS).mkdir(parents=True)
    names = []
    for k in range(3):
        start = time.time_ns() - (4 - k) * 3600 * S
        names.append(segment_file_name(start, start + 3599 * S))
        write_part(node / names[-1], _rows([0, 1], start), None, 1000, {})
        (node / ROLLUPS / f"{names[-1].removesuffix('.parquet')}.abc.rollup").write_bytes(b"x" * 100_000)
    segment_bytes = sum((node / n).stat().st_size for n in names)
    # Without their rollups all three segments would fit; with them only two do.
    deleted = enforce_retention(tmp_path, 86_400 * S, segment_bytes + 200_000, time.time_ns())
    assert [p.name for p in deleted] == names[:1]
    assert sorted(p.name for p in (node / ROLLUPS).iterdir()) == [f"{n.removesuffix('.parquet')}.abc.rollup"
                                                                   for n in names[1:]]


def test_the_writer_enforces_retention_as_it_starts_not_only_after_a_close(tmp_path: Path) -> None:
    node = tmp_path / "node-a"
    node.mkdir()
    old = time.time_ns() - 3 * 86_400 * S
    write_part(node / segment_file_name(old, old + S), _rows([0, 1], old), None, 1000, {})
    w = writer(tmp_path, segment_s=2, keep_s=86_400)
    w.tick()
    assert list(node.iterdir()) == []  # three days old: gone at the start
    for i in range(3):
        w.add("agent", snapshot(T0 + i * S, i))
    w.tick()
    assert [p.name for p in node.glob("*.parquet")] == [segment_file_name(T0, T0 + 2 * S)]
    w.close()


def test_retention_leaves_the_open_segment_alone(tmp_path: Path) -> None:
    node = tmp_path / "node-a"
    (node / OPEN).mkdir(parents=True)
    write_part(node / OPEN / "0000-000-000000.parquet", _rows([0, 1], T0), None, 1000, {})
    assert enforce_retention(tmp_path, S, 0, time.time_ns()) == []
    assert len(list((node / OPEN).iterdir())) == 1


def test_a_data_dir_that_is_a_file_is_a_fault_not_a_crash(tmp_path: Path, caplog) -> None:
    (tmp_path / "node-a").write_text("not a directory")
    w = writer(tmp_path)
    w.add("agent", snapshot(T0, 1))
    w.rotate()
    assert w.fault is not None and "could not write" in w.fault and "memory only" in w.fault
    said = sum("could not write" in r.getMessage() for r in caplog.records)
    w.add("agent", snapshot(T0 + S, 2))
    w.rotate()  # the same fault again: said once
    assert sum("could not write" in r.getMessage() for r in caplog.records) == said
    (tmp_path / "node-a").unlink()
    w.add("agent", snapshot(T0 + 2 * S, 3))
    w.rotate()  # writable again: the fault clears, and nothing already written was lost
    assert w.fault is None
    w.close()
    tables = [pq.read_table(s.path) for s in list_segments(tmp_path)["node-a"]]
    assert [t for table in tables for t in table.column("timestamp").to_pylist()] == [T0 + 2 * S]


def _rows(seconds: list[int], t0: int = T0) -> list:
    from rezgen.live.segment_writer import Row

    return [Row(t0 + s * S, 1000, [snapshot(0, 10 + s).scalars(0), snapshot(0, 0).scalars(1)], []) for s in seconds]
