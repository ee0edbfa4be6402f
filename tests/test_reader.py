"""The recording reader's contract (format doc §1, §2.3, §6), on small synthetic recordings written here with plain
pyarrow: no shared files needed.

Each test writes a Parquet file shaped like one hazard of the format doc's checklist, then asks rezgen about it,
end to end through `python -m rezgen` (inspect --json / query) or through `open_recording` where that is simpler.
Values are chosen so that a mix-up (wrong column, wrong row order, wrong row group) changes the answer.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from shared import REPO_ROOT, shared_recording

from rezgen.recording.reader import RecordingError, open_recording

NS = 1_000_000_000
T0 = 1_700_000_000 * NS  # whole seconds: every time below is exact as a decimal


# -- writing synthetic recordings -----------------------------------------------------------------------------

def counter(name: str, values: list, **meta: str) -> tuple[pa.Field, pa.Array]:
    return pa.field(name, pa.uint64(), metadata={"metric_type": "counter", **meta}), pa.array(values, pa.uint64())


def gauge(name: str, values: list, **meta: str) -> tuple[pa.Field, pa.Array]:
    return pa.field(name, pa.int64(), metadata={"metric_type": "gauge", **meta}), pa.array(values, pa.int64())


def histogram(name: str, rows: list, child: str = "item", g: int | None = 2, m: int | None = 5,
              **meta: str) -> tuple[pa.Field, pa.Array]:
    """A list<uint64> column (cumulative per-bucket counts); g=2, m=5 gives 16 buckets."""
    props = {"metric_type": "histogram", **meta}
    if g is not None:
        props["grouping_power"] = str(g)
    if m is not None:
        props["max_value_power"] = str(m)
    kind = pa.list_(pa.field(child, pa.uint64()))
    return pa.field(name, kind, metadata=props), pa.array(rows, kind)


def buckets(**counts: int) -> list[int]:
    """16 cumulative bucket counts (g=2, m=5) with the given `b<index>=count` entries."""
    out = [0] * 16
    for key, value in counts.items():
        out[int(key[1:])] = value
    return out


def write(path: Path, columns: list[tuple[pa.Field, pa.Array]], timestamps: list[int] | None = None,
          footer: dict[str, str] | None = None, row_group_size: int | None = None) -> Path:
    rows = len(columns[0][1]) if columns else len(timestamps or [])
    timestamps = timestamps if timestamps is not None else [T0 + i * NS for i in range(rows)]
    fields = [pa.field("timestamp", pa.uint64(), nullable=False,
                       metadata={"metric_type": "timestamp", "unit": "nanoseconds"}),
              pa.field("duration", pa.uint64(), metadata={"metric_type": "duration", "unit": "nanoseconds"})]
    arrays = [pa.array(timestamps, pa.uint64()), pa.array([1000] * len(timestamps), pa.uint64())]
    for f, a in columns:
        fields.append(f)
        arrays.append(a)
    meta = {"sampling_interval_ms": "1000", "source": "rezolus", "version": "5.0.0"}
    meta.update(footer or {})
    meta = {k: v for k, v in meta.items() if v is not None}
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))
    pq.write_table(table, path, row_group_size=row_group_size, use_compliant_nested_type=False)
    return path


# -- running rezgen ---------------------------------------------------------------------------------------------

def rezgen(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rezgen", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)


def inspect(path: Path) -> dict:
    proc = rezgen("inspect", "--json", path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def query(path: Path, expr: str, *options: object) -> list[dict]:
    proc = rezgen("query", path, expr, *options)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["status"] == "success"
    return body["data"]["result"]


def points(result: list[dict]) -> dict[frozenset, list[tuple[float, float]]]:
    """{labels: [(seconds after T0, value), ...]} of a matrix result."""
    return {frozenset(s["metric"].items()): [(round(float(t) - T0 / NS, 3), float(v)) for t, v in s["values"]]
            for s in result}


def metric_info(info: dict, name: str) -> dict:
    found = [m for m in info["metrics"] if m["name"] == name]
    assert len(found) == 1, f"{name} listed {len(found)} times in {[m['name'] for m in info['metrics']]}"
    return found[0]


def labels(**pairs: str) -> frozenset:
    return frozenset(pairs.items())


# -- columns: names, metadata, types ----------------------------------------------------------------------------

def test_duplicate_column_names_are_read_as_separate_series_with_their_own_values(tmp_path):
    path = write(tmp_path / "dup.parquet", [
        counter("0::4", [0, 10, 20, 30], metric="requests", instance="0", source="vllm"),
        counter("0::4", [0, 1000, 2000, 3000], metric="requests", instance="0", source="llm-perf"),
        counter("0::9", [0, 5, 10, 15], metric="prompt_tokens", instance="0"),
        counter("0::9", [0, 7, 14, 21], metric="prompt_tokens", instance="0"),  # identical identity
    ])
    info = inspect(path)
    assert metric_info(info, "requests")["series"] == 2
    assert metric_info(info, "prompt_tokens")["series"] == 2
    got = points(query(path, "irate(requests[5s])"))
    assert got == {labels(instance="0", source="vllm"): [(1.0, 10.0), (2.0, 10.0), (3.0, 10.0)],
                   labels(instance="0", source="llm-perf"): [(1.0, 1000.0), (2.0, 1000.0), (3.0, 1000.0)]}
    # Same metric and labels twice: kept apart by the column's schema position (after timestamp, duration).
    got = points(query(path, "irate(prompt_tokens[5s])"))
    assert got == {labels(instance="0", column="4"): [(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)],
                   labels(instance="0", column="5"): [(1.0, 7.0), (2.0, 7.0), (3.0, 7.0)]}


def test_a_column_without_a_metric_key_is_named_after_the_column_without_buckets_suffix(tmp_path):
    path = write(tmp_path / "nometric.parquet", [
        counter("requests", [1, 2, 3], description="Requests sent"),
        histogram("tpot:buckets", [buckets(b3=1), buckets(b3=1, b9=2), buckets(b3=2, b9=2)]),
    ])
    info = inspect(path)
    assert sorted(m["name"] for m in info["metrics"]) == ["requests", "tpot"]
    requests = metric_info(info, "requests")
    assert (requests["type"], requests["series"], requests["description"]) == ("counter", 1, "Requests sent")
    assert requests["labels"] == {}  # `description` is a property, not a label
    assert metric_info(info, "tpot")["type"] == "histogram"
    # Buckets 3 (exactly 3) and 9 (10-11) of the g=2, m=5 layout: the last interval holds one value 3.
    got = points(query(path, "histogram_quantile(0.5, irate(tpot[5s]))"))
    assert got == {frozenset(): [(1.0, 11.0), (2.0, 3.0)]}


def test_histogram_lists_with_item_or_element_children_read_alike(tmp_path):
    rows = [buckets(b8=1), buckets(b8=1, b12=4), buckets(b8=1, b12=4, b15=10)]
    path = write(tmp_path / "children.parquet", [
        histogram("a:buckets", rows, child="item", metric="latency", op="a"),
        histogram("b:buckets", rows, child="element", metric="latency", op="b"),
    ])
    types = {str(f.type) for f in pq.ParquetFile(path).schema_arrow}
    assert {"list<item: uint64>", "list<element: uint64>"} <= types
    assert metric_info(inspect(path), "latency")["series"] == 2
    got = points(query(path, "histogram_quantile(0.5, irate(latency[5s]))"))
    expected = [(1.0, 19.0), (2.0, 31.0)]  # bucket 12 = 16-19, bucket 15 = 28-31
    assert got == {labels(op="a"): expected, labels(op="b"): expected}


def test_a_metrics_decoded_size_counts_each_bucket_of_a_histogram_row(tmp_path):
    path = write(tmp_path / "r.parquet", [
        counter("a", [0, 1, 2], metric="requests", op="a"),
        counter("b", [0, 1, 2], metric="requests", op="b"),
        gauge("c", [5, 5, 5], metric="memory"),
        histogram("d:buckets", [[0] * 16] * 3, metric="latency"),  # g=2, m=5: 16 buckets
    ])
    assert open_recording(path).metric_cells() == {"requests": 2 * 3, "memory": 3, "latency": 16 * 3}


def test_histogram_without_grouping_power_is_skipped_with_a_warning(tmp_path):
    path = write(tmp_path / "nog.parquet", [
        counter("ok", [0, 1, 2]),
        histogram("broken:buckets", [buckets(b1=1)] * 3, g=None, metric="broken"),
    ])
    info = inspect(path)
    assert [m["name"] for m in info["metrics"]] == ["ok"]
    assert any("broken" in w for w in info["warnings"]), info["warnings"]
    assert query(path, "histogram_quantile(0.5, irate(broken[5s]))") == []


def test_histogram_with_the_wrong_number_of_buckets_is_skipped_with_a_warning(tmp_path):
    # g=2, m=5 means 16 buckets; these rows have 12.
    path = write(tmp_path / "short.parquet", [
        counter("ok", [0, 1, 2]),
        histogram("short:buckets", [[0] * 12, [1] * 12, [2] * 12], metric="short"),
    ])
    info = inspect(path)
    assert [m["name"] for m in info["metrics"]] == ["ok"]
    assert any("short" in w for w in info["warnings"]), info["warnings"]
    assert query(path, "histogram_quantile(0.5, irate(short[5s]))") == []
    assert query(path, "irate(ok[5s])") != []


# -- nulls, row groups, row order -------------------------------------------------------------------------------

@pytest.mark.slow
def test_leading_trailing_and_all_null_columns(tmp_path):
    path = write(tmp_path / "nulls.parquet", [
        counter("late", [None, None, 10, 13, 19, 20], metric="late"),
        counter("gone", [5, 6, 8, None, None, None], metric="gone"),
        counter("never", [None] * 6, metric="never"),
        gauge("depth", [None, 4, 5, 6, None, None], metric="depth"),
    ])
    inspect(path)  # no error
    assert points(query(path, "irate(late[3s])")) == {frozenset(): [(3.0, 3.0), (4.0, 6.0), (5.0, 1.0)]}
    # The window (t - 3s, t] of the last rows holds fewer than two samples: the series ends.
    assert points(query(path, "irate(gone[3s])")) == {frozenset(): [(1.0, 1.0), (2.0, 2.0), (3.0, 2.0)]}
    assert query(path, "irate(never[3s])") == []
    assert query(path, "never") == []
    assert points(query(path, "depth")) == {labels(__name__="depth"): [(1.0, 4.0), (2.0, 5.0), (3.0, 6.0),
                                                                       (4.0, 6.0), (5.0, 6.0)]}


def test_several_row_groups_are_concatenated_in_order(tmp_path):
    rows = 10
    path = write(tmp_path / "groups.parquet", [
        counter("c", [i * i for i in range(rows)], metric="c"),
        histogram("h:buckets", [buckets(b0=i, b15=i * i) for i in range(rows)], metric="h"),
    ], row_group_size=3)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    info = inspect(path)
    assert (info["rows"], info["row_groups"]) == (rows, 4)
    assert info["start_ns"] == T0 and info["end_ns"] == T0 + (rows - 1) * NS
    assert points(query(path, "irate(c[5s])")) == {frozenset(): [(float(i), float(2 * i - 1)) for i in range(1, rows)]}
    # Per interval: 1 value 0 and 2i-1 values 28-31; p50 is 31 from i = 2 on, 0 at i = 1 (1 and 1).
    got = points(query(path, "histogram_quantile(0.5, irate(h[5s]))"))
    assert got == {frozenset(): [(1.0, 0.0)] + [(float(i), 31.0) for i in range(2, rows)]}


def test_unsorted_timestamps_are_sorted_and_repeats_keep_the_last_row(tmp_path):
    # Written order: t = 2, 0, 3, 1, 3 (seconds after T0); the second t = 3 row wins.
    order = [2, 0, 3, 1, 3]
    value = {0: 0, 1: 10, 2: 30, 3: 60}
    cells = [value[t] for t in order]
    cells[2] = 999  # the first t = 3 row, superseded by the last one
    path = write(tmp_path / "unsorted.parquet", [
        counter("c", cells, metric="c"),
        histogram("h:buckets", [buckets(b4=v) if v != 999 else buckets(b15=999) for v in cells], metric="h"),
    ], timestamps=[T0 + t * NS for t in order])
    info = inspect(path)
    assert (info["rows"], info["start_ns"], info["end_ns"]) == (4, T0, T0 + 3 * NS)
    assert any("sorted" in w for w in info["warnings"]), info["warnings"]
    assert points(query(path, "irate(c[5s])")) == {frozenset(): [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]}
    assert points(query(path, "histogram_count(irate(h[5s]))")) == {
        frozenset(): [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]}
    recording = open_recording(path)
    assert recording.time_range == (T0, T0 + 3 * NS)


def test_missing_sampling_interval_is_inferred_from_the_timestamps(tmp_path):
    path = write(tmp_path / "nointerval.parquet", [counter("c", [0, 1, 2, 3, 4], metric="c")],
                 timestamps=[T0, T0 + 2 * NS, T0 + 4 * NS, T0 + 6 * NS, T0 + 8 * NS],
                 footer={"sampling_interval_ms": None})
    assert inspect(path)["interval_ms"] == 2000.0
    got = points(query(path, "irate(c[5s])"))
    assert got == {frozenset(): [(2.0, 0.5), (4.0, 0.5), (6.0, 0.5), (8.0, 0.5)]}


# -- footer ---------------------------------------------------------------------------------------------------

def test_source_footer_as_a_json_array_lists_every_source(tmp_path):
    path = write(tmp_path / "sources.parquet", [counter("c", [1, 2], metric="c")],
                 footer={"source": '["llm-perf","rezolus","vllm"]', "version": None})
    assert inspect(path)["sources"] == ["llm-perf", "rezolus", "vllm"]
    path = write(tmp_path / "one.parquet", [counter("c", [1, 2], metric="c")],
                 footer={"source": "localhost-4241", "version": "5.11.0"})
    info = inspect(path)
    assert info["sources"] == ["localhost-4241"] and info["versions"] == {"localhost-4241": "5.11.0"}


PER_SOURCE_SHAPES = {
    "mr2-report": ({"localhost-4241": {"first_sample_ns": 1, "last_sample_ns": 2}}, {}, {}),
    "vllm": ({"rezolus": {"version": "5.8.3-alpha.0"}, "vllm": {"version": "0.15.1"},
              "llm-bench": {"version": "0.1.1"}},
             {"rezolus": "5.8.3-alpha.0", "vllm": "0.15.1", "llm-bench": "0.1.1"}, {}),
    "cachecannon": ({"rezolus": {"rezolus-client": {"node": "rezolus-client", "systeminfo": {}, "version": "5.9.1"},
                                 "rezolus-server": {"node": "rezolus-server", "systeminfo": {}, "version": "5.9.1"}},
                     "cachecannon": {"0": {"instance": "0", "version": "0.0.12-alpha.0"}}},
                    {"rezolus": "5.9.1", "cachecannon": "0.0.12-alpha.0"},
                    {"rezolus": {"rezolus-client", "rezolus-server"}, "cachecannon": {"0"}}),
    "c16": ({"rezolus": {"first_sample_ns": 1, "last_sample_ns": 2,
                         "rezolus": {"node": "rezolus", "systeminfo": {}, "version": "5.11.0"}},
             "vllm": {"0": {"instance": "0"}, "first_sample_ns": 1, "last_sample_ns": 2, "role": "server"},
             "llm-perf": {"0": {"instance": "0", "version": "0.1.17-alpha.0"}}},
            {"rezolus": "5.11.0", "llm-perf": "0.1.17-alpha.0"},
            {"rezolus": {"rezolus"}, "vllm": {"0"}, "llm-perf": {"0"}}),
}


@pytest.mark.parametrize("shape", sorted(PER_SOURCE_SHAPES))
def test_per_source_metadata_shapes_give_versions_and_members(tmp_path, shape):
    document, versions, members = PER_SOURCE_SHAPES[shape]
    sources = json.dumps(sorted(document))
    path = write(tmp_path / f"{shape}.parquet", [counter("c", [1, 2], metric="c")],
                 footer={"source": sources, "version": None, "per_source_metadata": json.dumps(document)})
    info = inspect(path)
    assert info["versions"] == versions
    assert info["warnings"] == []
    footer = open_recording(path).footer
    assert {name: set(source.members) for name, source in footer.per_source.items() if source.members} == members
    if shape == "c16":
        assert footer.per_source["vllm"].role == "server"


def test_descriptions_are_found_for_prometheus_suffixed_names(tmp_path):
    path = write(tmp_path / "desc.parquet", [
        counter("0", [1, 2], metric="http_requests_total"),
        counter("1", [1, 2], metric="vllm_prompt_tokens_created"),
        counter("2", [1, 2], metric="cpu_usage"),
        counter("3", [1, 2], metric="plain_total"),
        counter("4", [1, 2], metric="own", description="From the column"),
    ], footer={"descriptions": json.dumps({
        "http_requests": "Total HTTP requests", "vllm_prompt_tokens": "Prompt tokens",
        "cpu_usage": "CPU time", "plain_total": "Exact name wins", "plain": "Family name loses",
        "own": "From the footer"})})
    info = inspect(path)
    described = {m["name"]: m["description"] for m in info["metrics"]}
    assert described == {"http_requests_total": "Total HTTP requests", "vllm_prompt_tokens_created": "Prompt tokens",
                         "cpu_usage": "CPU time", "plain_total": "Exact name wins", "own": "From the column"}


def test_events_in_the_footer_are_counted(tmp_path):
    events = {"events": [
        {"timestamp": T0 + NS, "description": "deploy", "kind": "marker"},
        {"timestamp": T0 + 2 * NS, "description": "restart", "duration_ns": 5, "node": "a"},
        {"description": "no timestamp: not an event"},
    ]}
    path = write(tmp_path / "events.parquet", [counter("c", [1, 2, 3], metric="c")],
                 footer={"events": json.dumps(events)})
    assert inspect(path)["events"] == 2
    assert [e["description"] for e in open_recording(path).footer.events] == ["deploy", "restart"]


def test_a_footer_key_that_is_not_valid_json_is_a_warning_not_an_error(tmp_path):
    path = write(tmp_path / "badjson.parquet", [counter("c", [1, 2], metric="c")],
                 footer={"descriptions": "{not json", "source": "[broken"})
    info = inspect(path)
    assert len(info["warnings"]) == 2, info["warnings"]
    assert metric_info(info, "c")["series"] == 1


# -- files that are not recordings ----------------------------------------------------------------------------

def broken_files(tmp_path: Path) -> dict[str, Path]:
    good = write(tmp_path / "good.parquet", [counter("c", list(range(50)), metric="c")])
    data = good.read_bytes()
    files = {
        "missing": tmp_path / "does-not-exist.parquet",
        "empty": tmp_path / "empty.parquet",
        "text": tmp_path / "notes.parquet",
        "truncated": tmp_path / "truncated.parquet",
        "no timestamp": tmp_path / "plain.parquet",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("timestamp,value\n1,2\n")
    files["truncated"].write_bytes(data[: len(data) // 2])
    pq.write_table(pa.table({"x": [1, 2, 3]}), files["no timestamp"])
    return files


BROKEN = ["missing", "empty", "text", "truncated", "no timestamp"]


@pytest.mark.parametrize("kind", BROKEN)
@pytest.mark.parametrize("command", [["inspect", "--json"], ["query", "@", "up"]])
def test_unreadable_files_fail_with_one_rezgen_line_and_no_traceback(tmp_path, kind, command):
    path = broken_files(tmp_path)[kind]
    args = [path if a == "@" else a for a in command]
    if command[0] == "inspect":
        args.append(path)
    proc = rezgen(*args)
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rezgen: ") and str(path) in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("kind", BROKEN)
def test_open_recording_raises_recording_error_for_unreadable_files(tmp_path, kind):
    path = broken_files(tmp_path)[kind]
    with pytest.raises(RecordingError) as excinfo:
        open_recording(path)
    assert "\n" not in str(excinfo.value)


def test_a_recording_with_no_rows_is_an_error(tmp_path):
    path = write(tmp_path / "norows.parquet", [counter("c", [], metric="c")], timestamps=[])
    with pytest.raises(RecordingError):
        open_recording(path)
    proc = rezgen("inspect", path)
    assert proc.returncode != 0 and proc.stderr.startswith("rezgen: ") and len(proc.stderr.splitlines()) == 1


def test_valid_recording_round_trip_sanity(tmp_path):
    """Guard for the writer used above: a plain file reads back with its values and metadata."""
    path = write(tmp_path / "plain.parquet", [gauge("g", [3, 4], metric="g", unit="bytes", node="a")])
    info = inspect(path)
    g = metric_info(info, "g")
    assert (g["type"], g["unit"], g["provenance"]) == ("gauge", "bytes", {"node": ["a"]})
    assert info["nodes"] == ["node=a"]
    assert math.isclose(info["duration_s"], 1.0)
    assert points(query(path, "g")) == {labels(__name__="g", node="a"): [(0.0, 3.0), (1.0, 4.0)]}


# -- bad timestamps, footers and column types in a real recording ---------------------------------------------------
# A copy of c16 with one thing corrupted; rezgen runs under a 2 GB address-space limit (a grid over the years a bad
# timestamp spans needs tens of GB) and must finish well within the subprocess timeout.

MEMORY_LIMIT = 2 * 2**30


def limited_rezgen(*args: object) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run([sys.executable, "-m", "rezgen", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60, preexec_fn=limit, check=False)


def corrupted_c16(path: Path, timestamps: pa.Array | None = None, footer: dict[str, str] | None = None,
                  column: tuple[int, pa.Field, pa.Array] | None = None) -> Path:
    """c16 with its timestamp column, footer keys or one column replaced."""
    table = pq.ParquetFile(shared_recording("c16.parquet")).read()
    if timestamps is not None:
        index = table.schema.get_field_index("timestamp")
        field = pa.field("timestamp", timestamps.type, metadata=table.schema.field(index).metadata)
        table = table.set_column(index, field, timestamps)
    if column is not None:
        table = table.set_column(*column)
    if footer is not None:
        keys = {k.encode(): v.encode() for k, v in footer.items()}
        table = table.replace_schema_metadata({**table.schema.metadata, **keys})
    pq.write_table(table, path, use_compliant_nested_type=False)
    return path


def c16_timestamps() -> np.ndarray:
    return pq.read_table(shared_recording("c16.parquet"), columns=["timestamp"]).column(0).to_numpy()


def warnings_of(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert "Traceback" not in stderr and all(line.startswith("rezgen: warning: ") for line in lines), stderr
    return lines


SIX_YEARS = 6 * 365 * 86_400 * NS


def _zero(ts: np.ndarray) -> pa.Array:
    ts = ts.copy()
    ts[100] = 0
    return pa.array(ts, pa.uint64())


def _six_years_early(ts: np.ndarray) -> pa.Array:
    ts = ts.copy()
    ts[0] -= SIX_YEARS
    return pa.array(ts, pa.uint64())


def _nan(ts: np.ndarray) -> pa.Array:
    values = ts.astype(np.float64)
    values[50] = np.nan
    return pa.array(values, pa.float64())


def _past_int64(ts: np.ndarray) -> pa.Array:
    ts = ts.copy()
    ts[-1] = 2**63 + 5
    return pa.array(ts, pa.uint64())


@pytest.mark.slow
@pytest.mark.parametrize("corrupt, row, shown", [
    (_zero, 100, "1970-01-01T00:00:00Z"),
    (_six_years_early, 0, "2020-05-20T02:00:29Z"),
    (_nan, 50, "nan"),
    (_past_int64, 360, str(2**63 + 5)),
])
def test_a_row_with_a_bad_timestamp_is_dropped_and_named_on_stderr(tmp_path, corrupt, row, shown):
    good = c16_timestamps()
    path = corrupted_c16(tmp_path / "bad.parquet", timestamps=corrupt(good))
    expected = np.delete(good.astype(np.int64), row)  # the other rows, as the file has them (already in order)

    done = limited_rezgen("query", path, "sum(cpu_cores)")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = warnings_of(done.stderr)
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and "dropped 1 of 361 rows" in lines[0] and f"row {row}: {shown}" in lines[0], lines[0]
    series = json.loads(done.stdout)["data"]["result"]
    assert len(series) == 1
    times = [float(t) for t, _ in series[0]["values"]]
    first_ms = -(-int(expected[0]) // 1_000_000)  # steps start at the first timestamp rounded up to a whole ms
    assert times[0] == first_ms / 1000 and times[-1] <= expected[-1] / NS
    assert len(times) == (int(expected[-1]) - first_ms * 1_000_000) // NS + 1  # one step per second, no more

    info = json.loads(limited_rezgen("inspect", "--json", path).stdout)
    assert (info["rows"], info["start_ns"], info["end_ns"]) == (360, int(expected[0]), int(expected[-1]))


@pytest.mark.slow
def test_a_bad_timestamp_does_not_exhaust_a_build(tmp_path):
    path = corrupted_c16(tmp_path / "zero.parquet", timestamps=_zero(c16_timestamps()))
    done = limited_rezgen("build", "-q", path, "-o", tmp_path / "site")
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(warnings_of(done.stderr)) == 1
    assert (tmp_path / "site" / "index.html").is_file()


def test_genuine_gaps_are_kept_a_missing_row_and_pauses_of_hours(tmp_path):
    # A pause of 3 h near the end and one of 20 h after the first rows: both are real data, not outliers.
    t = [T0 + i * NS for i in range(10)] + [T0 + 20 * 3600 * NS + i * NS for i in range(180)]
    t += [t[-1] + 3 * 3600 * NS + i * NS for i in range(10)]
    path = write(tmp_path / "pauses.parquet", [counter("c", list(range(len(t))), metric="c")], timestamps=t)
    done = rezgen("inspect", "--json", path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    info = json.loads(done.stdout)
    assert (info["rows"], info["start_ns"], info["end_ns"]) == (200, t[0], t[-1])
    assert info["warnings"] == []

    ab = rezgen("inspect", "--json", shared_recording("AB_base.parquet"))  # one row missing: a 2 s gap
    assert ab.returncode == 0 and ab.stderr == "", ab.stderr
    assert json.loads(ab.stdout)["rows"] == 300


def test_a_timestamp_column_that_is_not_a_number_is_one_line(tmp_path):
    table = pa.table({"timestamp": pa.array(["a", "b"]), "c": pa.array([1, 2], pa.uint64())})
    pq.write_table(table, tmp_path / "text.parquet")
    done = rezgen("query", tmp_path / "text.parquet", "c")
    assert done.returncode != 0 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"rezgen: {tmp_path / 'text.parquet'}: the timestamp column is of type string, not integer nanoseconds"]


def test_a_recording_whose_every_timestamp_is_invalid_is_one_line(tmp_path):
    table = pa.table({"timestamp": pa.array([float("nan"), -1.0, None], pa.float64()),
                      "c": pa.array([1, 2, 3], pa.uint64())})
    pq.write_table(table, tmp_path / "nan.parquet")
    done = rezgen("inspect", tmp_path / "nan.parquet")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "no row has a usable timestamp" in lines[0], lines


@pytest.mark.parametrize("interval", ["1e300", "nan", "inf", "0", "-5", "1e-300", "soon"])
def test_a_sampling_interval_out_of_range_is_ignored_with_a_warning(tmp_path, interval):
    path = write(tmp_path / "interval.parquet", [counter("c", [0, 10, 30, 60], metric="c")],
                 footer={"sampling_interval_ms": interval})
    done = rezgen("query", path, "irate(c[5s])")
    assert done.returncode == 0, done.stderr
    lines = warnings_of(done.stderr)
    assert len(lines) == 1 and f"sampling_interval_ms {interval!r}" in lines[0], lines
    got = points(json.loads(done.stdout)["data"]["result"])  # steps at the rows' own spacing, 1 s
    assert got == {frozenset(): [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]}


@pytest.mark.slow
def test_a_sampling_interval_far_finer_than_the_rows_is_replaced_by_their_spacing(tmp_path):
    path = corrupted_c16(tmp_path / "fine.parquet", footer={"sampling_interval_ms": "0.001"})
    done = limited_rezgen("query", path, "sum(cpu_cores)")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = warnings_of(done.stderr)
    assert len(lines) == 1 and "using the spacing" in lines[0], lines
    assert len(json.loads(done.stdout)["data"]["result"][0]["values"]) == 361


@pytest.mark.slow
def test_a_histogram_column_stored_as_plain_numbers_leaves_its_metric_out(tmp_path):
    schema = pq.read_schema(shared_recording("c16.parquet"))
    latency = [i for i, f in enumerate(schema) if (f.metadata or {}).get(b"metric") == b"syscall_latency"]
    assert len(latency) > 1  # the metric has other, well-formed columns: they go too
    bad = schema.field(latency[0])
    rows = pq.ParquetFile(shared_recording("c16.parquet")).metadata.num_rows
    path = corrupted_c16(tmp_path / "plain.parquet", column=(
        latency[0], pa.field(bad.name, pa.uint64(), metadata=bad.metadata), pa.array(np.arange(rows), pa.uint64())))

    done = rezgen("inspect", "--json", path)
    assert done.returncode == 0, done.stderr
    lines = warnings_of(done.stderr)
    assert len(lines) == 1 and repr(bad.name) in lines[0] and "'syscall_latency' left out" in lines[0], lines
    names = {m["name"] for m in json.loads(done.stdout)["metrics"]}
    assert "syscall_latency" not in names and "cpu_usage" in names

    percentile = json.loads(rezgen("query", path, "histogram_quantile(0.99, sum(irate(syscall_latency[5m])))").stdout)
    assert percentile["data"]["result"] == []
