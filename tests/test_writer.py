"""RecordingWriter writes Rezolus-format Parquet (docs/recording-format.md §1), checked here with plain pyarrow."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rezgen.recording.writer import RecordingWriter
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels

T0 = 1_767_225_600 * 10**9
SECOND = 10**9


def counter(metric: str, unit: str | None = None, description: str | None = None, **labels: str) -> SeriesMeta:
    return SeriesMeta(SeriesKey(metric, make_labels(labels)), Kind.COUNTER, unit, description)


def gauge(metric: str, unit: str | None = None, **labels: str) -> SeriesMeta:
    return SeriesMeta(SeriesKey(metric, make_labels(labels)), Kind.GAUGE, unit)


def histogram(metric: str, g: int = 3, m: int = 64, **labels: str) -> SeriesMeta:
    return SeriesMeta(SeriesKey(metric, make_labels(labels)), Kind.HISTOGRAM, "nanoseconds", None, g, m)


def stamps(rows: int, first: int = 0) -> np.ndarray:
    return T0 + (np.arange(rows, dtype=np.int64) + first) * SECOND


def field_metadata(field: pa.Field) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}


def footer(path) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in pq.ParquetFile(path).metadata.metadata.items()}


def write(path, columns, timestamps, values, durations=None, **options) -> None:
    options = {"interval_ms": 1000, "source": "rezolus", **options}
    with RecordingWriter(path, columns, **options) as writer:
        writer.write(timestamps, values, durations)


def test_writes_timestamp_and_duration_first_with_field_metadata(tmp_path):
    path = tmp_path / "r.parquet"
    write(path, [("0", counter("syscall", op="read"))], stamps(3), [np.array([1.0, 2, 3])], np.array([5e5, 6e5, 7e5]))
    schema = pq.ParquetFile(path).schema_arrow
    assert schema.names[:2] == ["timestamp", "duration"]
    assert schema.field(0).type == pa.uint64() and not schema.field(0).nullable
    assert field_metadata(schema.field(0)) == {"metric_type": "timestamp", "unit": "nanoseconds"}
    assert schema.field(1).type == pa.uint64() and schema.field(1).nullable
    assert field_metadata(schema.field(1)) == {"metric_type": "duration", "unit": "nanoseconds"}
    table = pq.ParquetFile(path).read()
    assert table.column(0).to_pylist() == stamps(3).tolist()
    assert table.column(1).to_pylist() == [500_000, 600_000, 700_000]


def test_writes_counters_as_uint64_with_field_metadata(tmp_path):
    path = tmp_path / "r.parquet"
    columns = [("cpu/user/3", counter("cpu_usage", "nanoseconds", id="3", state="user"))]
    write(path, columns, stamps(2), [np.array([10.0, 25.0])])
    field = pq.ParquetFile(path).schema_arrow.field(2)
    assert (field.name, field.type) == ("cpu/user/3", pa.uint64())
    assert field_metadata(field) == {
        "metric": "cpu_usage", "metric_type": "counter", "unit": "nanoseconds", "id": "3", "state": "user"
    }
    assert pq.ParquetFile(path).read().column(2).to_pylist() == [10, 25]


def test_counter_without_unit_has_no_unit_key(tmp_path):
    path = tmp_path / "r.parquet"
    write(path, [("c", counter("cpu_migrations", direction="to", id="0"))], stamps(1), [np.array([1.0])])
    assert "unit" not in field_metadata(pq.ParquetFile(path).schema_arrow.field(2))


def test_large_integer_counters_round_trip_exactly(tmp_path):
    path = tmp_path / "r.parquet"
    big = np.array([2**63 + 5, 2**64 - 1], dtype=np.uint64)  # beyond float64 precision
    write(path, [("c", counter("cycles"))], stamps(2), [big])
    assert pq.ParquetFile(path).read().column(2).to_pylist() == [2**63 + 5, 2**64 - 1]


def test_writes_gauges_as_int64_keeping_negative_values(tmp_path):
    path = tmp_path / "r.parquet"
    write(path, [("g", gauge("cgroup_cpu_bandwidth_quota", "nanoseconds", id="2"))], stamps(2), [np.array([-1, 7])])
    file = pq.ParquetFile(path)
    assert file.schema_arrow.field(2).type == pa.int64()
    assert field_metadata(file.schema_arrow.field(2))["metric_type"] == "gauge"
    assert file.read().column(2).to_pylist() == [-1, 7]


def test_writes_histograms_as_uint64_lists_named_buckets(tmp_path):
    path = tmp_path / "r.parquet"
    cells = np.zeros((2, 496))
    cells[0, 40], cells[1, 40], cells[1, 41] = 3, 5, 1
    write(path, [("syscall_latency/read", histogram("syscall_latency", op="read"))], stamps(2), [cells])
    file = pq.ParquetFile(path)
    field = file.schema_arrow.field(2)
    assert field.name == "syscall_latency/read:buckets"
    assert pa.types.is_list(field.type) and field.type.value_type == pa.uint64()
    assert field_metadata(field) == {
        "metric": "syscall_latency", "metric_type": "histogram", "unit": "nanoseconds", "op": "read",
        "grouping_power": "3", "max_value_power": "64",
    }
    rows = file.read().column(2).to_pylist()
    assert [len(row) for row in rows] == [496, 496]
    assert rows[1][40:42] == [5, 1] and sum(rows[1]) == 6


def test_histogram_length_follows_grouping_and_max_value_power(tmp_path):
    path = tmp_path / "r.parquet"
    write(path, [("h", histogram("ttft", g=7, m=64))], stamps(1), [np.zeros((1, 7424))])
    assert len(pq.ParquetFile(path).read().column(2)[0]) == 7424


def test_orders_counters_gauges_histograms_each_by_name_and_maps_values_by_the_callers_order(tmp_path):
    path = tmp_path / "r.parquet"
    columns = [
        ("h", histogram("lat")),
        ("b", gauge("memory_free")),
        ("z", counter("syscall")),
        ("a", gauge("memory_total")),
        ("y", counter("cpu_cycles")),
    ]
    values = [np.full((1, 496), 1.0), np.array([2.0]), np.array([3.0]), np.array([4.0]), np.array([5.0])]
    write(path, columns, stamps(1), values)
    table = pq.ParquetFile(path).read()
    assert table.schema.names == ["timestamp", "duration", "y", "z", "a", "b", "h:buckets"]
    assert [table.column(i)[0].as_py() for i in range(2, 6)] == [5, 3, 4, 2]


def test_nan_and_none_mean_no_sample(tmp_path):
    path = tmp_path / "r.parquet"
    cells = np.ones((3, 496))
    cells[0] = np.nan
    columns = [("c", counter("c", id="1")), ("g", gauge("g")), ("h", histogram("h"))]
    write(path, columns, stamps(3), [np.array([np.nan, np.nan, 4.0]), None, cells])
    table = pq.ParquetFile(path).read()
    assert table.column("duration").to_pylist() == [None, None, None]
    assert table.column("c").to_pylist() == [None, None, 4]
    assert table.column("g").to_pylist() == [None, None, None]
    assert table.column("h:buckets").to_pylist()[0] is None
    assert [len(row) for row in table.column("h:buckets").to_pylist()[1:]] == [496, 496]


def test_footer_has_interval_source_version_and_json_documents(tmp_path):
    path = tmp_path / "r.parquet"
    extra = {
        "systeminfo": {"hostname": "h1", "cpus": 4},
        "per_source_metadata": {"rezolus": {"first_sample_ns": int(T0)}},
        "events": {"events": [{"timestamp": int(T0), "description": "deploy"}]},
        "report": "trimmed",
    }
    columns = [("c", counter("syscall", description="The number of syscalls"))]
    write(path, columns, stamps(1), [np.array([1.0])], interval_ms=500, version="5.17.0", footer=extra)
    meta = footer(path)
    assert (meta["sampling_interval_ms"], meta["source"], meta["version"]) == ("500", "rezolus", "5.17.0")
    assert json.loads(meta["systeminfo"]) == {"hostname": "h1", "cpus": 4}
    assert json.loads(meta["per_source_metadata"]) == {"rezolus": {"first_sample_ns": int(T0)}}
    assert json.loads(meta["events"])["events"][0]["description"] == "deploy"
    assert meta["report"] == "trimmed"  # strings are stored as they are
    assert json.loads(meta["descriptions"]) == {"syscall": "The number of syscalls"}  # taken from the series


def test_footer_omits_version_and_descriptions_when_unknown(tmp_path):
    path = tmp_path / "r.parquet"
    write(path, [("c", counter("c"))], stamps(1), [np.array([1.0])])
    assert set(footer(path)) - {"ARROW:schema"} == {"sampling_interval_ms", "source"}


def test_given_descriptions_win_over_the_series_descriptions(tmp_path):
    path = tmp_path / "r.parquet"
    columns = [("c", counter("c", description="from the series"))]
    write(path, columns, stamps(1), [np.array([1.0])], footer={"descriptions": {"c": "from the agent"}})
    assert json.loads(footer(path)["descriptions"]) == {"c": "from the agent"}


def test_streams_rows_into_row_groups_of_at_most_1800(tmp_path):
    path = tmp_path / "r.parquet"
    rows = 4000
    columns = [("c", counter("c")), ("h", histogram("h"))]
    cumulative = np.cumsum(np.ones((rows, 496)), axis=0)
    with RecordingWriter(path, columns, interval_ms=1000, source="rezolus") as writer:
        for start in range(0, rows, 700):  # blocks that do not line up with row groups
            block = slice(start, start + 700)
            writer.write(stamps(rows)[block], [np.arange(rows, dtype=float)[block], cumulative[block]])
    file = pq.ParquetFile(path)
    assert [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)] == [1800, 1800, 400]
    table = file.read()
    assert table.column("timestamp").to_pylist() == stamps(rows).tolist()
    assert table.column("c").to_pylist() == list(range(rows))
    assert table.column("h:buckets")[3999].as_py() == [4000] * 496


def test_compresses_every_column_with_zstd(tmp_path):
    path = tmp_path / "r.parquet"
    write(path, [("c", counter("c")), ("h", histogram("h"))], stamps(2), [np.array([1.0, 2.0]), np.ones((2, 496))])
    group = pq.ParquetFile(path).metadata.row_group(0)
    assert {group.column(i).compression for i in range(group.num_columns)} == {"ZSTD"}


def test_delta_encodes_counters_and_gauges_and_keeps_statistics_for_the_timestamp_only(tmp_path):
    path = tmp_path / "r.parquet"
    columns = [("c", counter("c")), ("g", gauge("g")), ("h", histogram("h"))]
    write(path, columns, stamps(3), [np.array([1.0, 2.0, 5.0]), np.array([-1.0, 0.0, 1.0]), np.ones((3, 496))])
    file = pq.ParquetFile(path)
    group = file.metadata.row_group(0)
    chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert "DELTA_BINARY_PACKED" in chunks["c"].encodings and "DELTA_BINARY_PACKED" in chunks["g"].encodings
    assert "DELTA_BINARY_PACKED" not in chunks["h:buckets.list.element"].encodings
    assert [name for name, chunk in chunks.items() if chunk.is_stats_set] == ["timestamp"]
    assert (chunks["timestamp"].statistics.min, chunks["timestamp"].statistics.max) == (stamps(3)[0], stamps(3)[-1])
    table = file.read()
    assert table.column("c").to_pylist() == [1, 2, 5] and table.column("g").to_pylist() == [-1, 0, 1]


def test_file_appears_only_when_the_with_block_ends(tmp_path):
    path = tmp_path / "r.parquet"
    with RecordingWriter(path, [("c", counter("c"))], interval_ms=1000, source="rezolus") as writer:
        writer.write(stamps(2), [np.array([1.0, 2.0])])
        assert not path.exists()
    assert pq.ParquetFile(path).metadata.num_rows == 2
    assert [p.name for p in tmp_path.iterdir()] == ["r.parquet"]


def test_failed_write_leaves_previous_file_untouched(tmp_path):
    path = tmp_path / "r.parquet"
    write(path, [("c", counter("c"))], stamps(1), [np.array([1.0])])
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="source went away"), \
            RecordingWriter(path, [("c", counter("c"))], interval_ms=1000, source="rezolus") as writer:
        writer.write(stamps(5), [np.arange(5.0)])
        raise RuntimeError("source went away")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.parquet"]  # no temporary file left behind


def test_failed_first_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "r.parquet"
    with pytest.raises(ValueError), \
            RecordingWriter(path, [("h", histogram("h"))], interval_ms=1000, source="rezolus") as writer:
        writer.write(stamps(1), [np.zeros((1, 10))])  # wrong bucket count
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda w: w.write(stamps(2)[::-1], [np.ones(2)]), id="decreasing timestamps"),
        pytest.param(lambda w: (w.write(stamps(2), [np.ones(2)]), w.write(stamps(1), [np.ones(1)])), id="repeated"),
        pytest.param(lambda w: w.write(stamps(2).astype(float), [np.ones(2)]), id="float timestamps"),
        pytest.param(lambda w: w.write(stamps(2), [np.array([1.0, -1.0])]), id="negative counter"),
        pytest.param(lambda w: w.write(stamps(2), [np.ones(3)]), id="length mismatch"),
        pytest.param(lambda w: w.write(stamps(2), []), id="missing column"),
        pytest.param(lambda w: w.write(stamps(2), [np.ones(2)], np.ones(3)), id="durations mismatch"),
    ],
)
def test_rejects_malformed_rows(tmp_path, bad):
    with pytest.raises(ValueError), \
            RecordingWriter(tmp_path / "r.parquet", [("c", counter("c"))], interval_ms=1000, source="x") as writer:
        bad(writer)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "columns, options",
    [
        pytest.param(
            [("c", SeriesMeta(SeriesKey("c", make_labels({"unit": "x"})), Kind.COUNTER))], {}, id="label named unit"
        ),
        pytest.param([("h", SeriesMeta(SeriesKey("h"), Kind.HISTOGRAM))], {}, id="histogram without layout"),
        pytest.param([], {"footer": {"source": "other"}}, id="reserved footer key"),
        pytest.param([], {"row_group_size": 5000}, id="row groups above 1800"),
    ],
)
def test_rejects_malformed_columns_and_options(tmp_path, columns, options):
    with pytest.raises(ValueError):
        RecordingWriter(tmp_path / "r.parquet", columns, interval_ms=1000, source="rezolus", **options)
