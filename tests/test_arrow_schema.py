"""The `ARROW:schema` footer entry rezgen writes (`rezgen.recording.arrow_schema`): the same schema as Arrow's own
serialization decodes to, fields, types, nullability and every key/value pair, in a fraction of the bytes; and the
recordings written with it read back through plain pyarrow exactly as written."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from shared import shared_recording

from rezgen.recording.arrow_schema import KEY, encoded_schema
from rezgen.recording.writer import open_parquet

BUCKETS = pa.list_(pa.field("element", pa.uint64()))  # the child's name as Parquet readers give it back


def decoded(value: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(value)))


def test_a_real_recordings_schema_decodes_to_itself_in_under_a_third_of_arrows_bytes() -> None:
    schema = pq.read_schema(shared_recording("c16.parquet"))  # 2,112 columns, duplicate names, lists
    ours = encoded_schema(schema)
    again = decoded(ours)
    assert again.equals(schema, check_metadata=True)
    assert [f.metadata for f in again] == [f.metadata for f in schema]
    assert [f.nullable for f in again] == [f.nullable for f in schema]
    assert [str(f.type) for f in again] == [str(f.type) for f in schema]
    arrows = base64.b64encode(schema.serialize().to_pybytes())
    assert len(ours) < len(arrows) / 3, (len(ours), len(arrows))


def test_a_file_written_with_it_reads_back_as_written(tmp_path: Path) -> None:
    schema = pa.schema([
        pa.field("timestamp", pa.uint64(), False, {"metric_type": "timestamp", "unit": "nanoseconds"}),
        pa.field("duration", pa.uint64(), True, {"metric_type": "duration", "unit": "nanoseconds"}),
        pa.field("a", pa.uint64(), metadata={"metric": "cpu", "metric_type": "counter", "id": "0"}),
        pa.field("b", pa.uint64(), metadata={"metric": "cpu", "metric_type": "counter", "id": "1"}),
        pa.field("g", pa.int64(), metadata={"metric": "mem", "metric_type": "gauge"}),
        pa.field("h:buckets", BUCKETS, metadata={"metric": "lat", "metric_type": "histogram",
                                                               "grouping_power": "0", "max_value_power": "2"}),
    ], metadata={"sampling_interval_ms": "1000", "source": "rezolus", "descriptions": '{"cpu":"busy"}'})
    table = pa.table([pa.array([1, 2], pa.uint64()), pa.array([None, 5], pa.uint64()),
                      pa.array([2**64 - 1, 0], pa.uint64()), pa.array([3, None], pa.uint64()),
                      pa.array([-7, 7], pa.int64()), pa.array([[0, 1, 2], None], BUCKETS)],
                     schema=schema)
    path = tmp_path / "r.parquet"
    with open_parquet(path, schema) as writer:
        writer.write_table(table)
    file = pq.ParquetFile(path)
    assert file.schema_arrow.equals(schema, check_metadata=True)
    assert file.read().equals(table)
    raw = file.metadata.metadata
    assert decoded(raw[KEY]).equals(schema, check_metadata=True)
    assert raw[b"descriptions"] == b'{"cpu":"busy"}' and raw[b"source"] == b"rezolus"


def test_a_type_no_recording_has_is_written_by_arrows_own_schema(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("timestamp", pa.uint64(), False), pa.field("x", pa.float64())])
    path = tmp_path / "r.parquet"
    with open_parquet(path, schema) as writer:
        writer.write_table(pa.table([pa.array([1], pa.uint64()), pa.array([np.pi])], schema=schema))
    assert pq.ParquetFile(path).schema_arrow.equals(schema)
    assert pq.read_table(path).column("x").to_pylist() == [np.pi]
