"""The synthetic sample recording looks and behaves like a Rezolus agent recording; checked with plain pyarrow."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rezgen.synthetic.sample import generate_sample

START = 1_767_225_600 * 10**9  # the default start, 2026-01-01T00:00:00Z


class Recording:
    """A recording read with pyarrow only: per column its field metadata and values (NaN for null)."""

    def __init__(self, path) -> None:
        self.file = pq.ParquetFile(path)
        self.table = self.file.read()
        self.footer = {k.decode(): v.decode() for k, v in self.file.metadata.metadata.items()}
        self.timestamps = self.table.column(0).to_numpy().astype(np.int64)
        self.fields = [{k.decode(): v.decode() for k, v in (f.metadata or {}).items()} for f in self.file.schema_arrow]

    def columns(self, metric: str, **labels: str) -> list[int]:
        return [
            i for i, meta in enumerate(self.fields)
            if meta.get("metric") == metric and all(meta.get(k) == v for k, v in labels.items())
        ]

    def values(self, i: int) -> np.ndarray:
        return pc.cast(self.table.column(i), pa.float64()).to_numpy(zero_copy_only=False)

    def buckets(self, i: int) -> np.ndarray:
        """(rows, buckets) cumulative counts of a histogram column without nulls."""
        cells = self.table.column(i).combine_chunks()
        assert cells.null_count == 0
        return cells.values.to_numpy().reshape(len(cells), -1).astype(np.int64)

    def rate(self, i: int) -> np.ndarray:
        return np.diff(self.values(i)) / (np.diff(self.timestamps) / 1e9)


@pytest.fixture(scope="module")
def sample_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "sample.parquet"
    generate_sample(path)
    return path


@pytest.fixture(scope="module")
def sample(sample_path) -> Recording:
    return Recording(sample_path)


def test_sample_is_deterministic(tmp_path, sample_path):
    generate_sample(tmp_path / "again.parquet")
    generate_sample(tmp_path / "other.parquet", seed=1)
    assert (tmp_path / "again.parquet").read_bytes() == sample_path.read_bytes()
    assert (tmp_path / "other.parquet").read_bytes() != sample_path.read_bytes()


def test_sample_of_ten_minutes_on_eight_cpus_takes_under_two_seconds(tmp_path):
    started = time.perf_counter()
    generate_sample(tmp_path / "timed.parquet", duration_s=600, cpus=8)
    assert time.perf_counter() - started < 2.0


def test_sample_footer_describes_a_rezolus_host(sample):
    footer = sample.footer
    assert footer["source"] == "rezolus"
    assert footer["sampling_interval_ms"] == "1000"
    assert footer["version"]
    info = json.loads(footer["systeminfo"])
    assert {"hostname", "kernel", "cpu_model", "cores", "memory_total_bytes"} <= info.keys()
    assert info["cpus"] == 8 and len(info["cpu_topology"]) == 8
    (memory_total,) = sample.columns("memory_total")
    assert info["memory_total_bytes"] == sample.values(memory_total)[0]
    metrics = {meta["metric"] for meta in sample.fields[2:]}
    assert set(json.loads(footer["descriptions"])) == metrics
    sources = json.loads(footer["per_source_metadata"])
    assert sources["rezolus"]["first_sample_ns"] == sample.timestamps[0]


def test_sample_columns_follow_the_rezolus_layout(sample):
    kinds = {pa.uint64(): "counter", pa.int64(): "gauge"}
    order = {"counter": 0, "gauge": 1, "histogram": 2}
    schema = sample.file.schema_arrow
    assert schema.names[:2] == ["timestamp", "duration"]
    seen = []
    for field, meta in zip(list(schema)[2:], sample.fields[2:]):
        kind = "histogram" if pa.types.is_list(field.type) else kinds[field.type]
        assert meta["metric_type"] == kind
        assert field.name.endswith(":buckets") == (kind == "histogram")
        seen.append((order[kind], field.name))
    assert seen == sorted(seen)
    assert len(set(schema.names)) == len(schema.names)


# metric → (Arrow type, unit or None, label keys) as the Rezolus agent records them
EXPECTED = {
    "cpu_usage": ("counter", "nanoseconds", {"id", "state"}),
    "cpu_cores": ("gauge", None, set()),
    "cpu_migrations": ("counter", None, {"id", "direction"}),
    "cpu_cycles": ("counter", "cycles", {"id"}),
    "cpu_instructions": ("counter", "instructions", {"id"}),
    "network_bytes": ("counter", "bytes", {"direction"}),
    "network_packets": ("counter", "packets", {"direction"}),
    "network_drop": ("counter", "packets", set()),
    "tcp_retransmit": ("counter", "packets", set()),
    "tcp_packet_latency": ("histogram", "nanoseconds", set()),
    "scheduler_runqueue_latency": ("histogram", "nanoseconds", set()),
    "scheduler_offcpu": ("histogram", "nanoseconds", set()),
    "scheduler_running": ("histogram", "nanoseconds", set()),
    "scheduler_context_switch": ("counter", None, {"id", "kind"}),
    "scheduler_runqueue_wait": ("counter", "nanoseconds", {"id"}),
    "syscall": ("counter", "syscalls", {"op"}),
    "syscall_latency": ("histogram", "nanoseconds", {"op"}),
    "softirq": ("counter", "interrupts", {"id", "kind"}),
    "softirq_time": ("counter", "nanoseconds", {"id", "kind"}),
    "blockio_bytes": ("counter", "bytes", {"op"}),
    "blockio_operations": ("counter", "operations", {"op"}),
    "blockio_latency": ("histogram", "nanoseconds", {"op"}),
    "blockio_size": ("histogram", "bytes", {"op"}),
    "memory_total": ("gauge", "bytes", set()),
    "memory_available": ("gauge", "bytes", set()),
    "memory_free": ("gauge", "bytes", set()),
    "memory_buffers": ("gauge", "bytes", set()),
    "memory_cached": ("gauge", "bytes", set()),
    "cgroup_cpu_usage": ("counter", "nanoseconds", {"id", "name", "state"}),
    "cgroup_syscall": ("counter", "syscalls", {"id", "name", "op"}),
    "cgroup_cpu_instructions": ("counter", "instructions", {"id", "name"}),
    "cgroup_cpu_cycles": ("counter", "cycles", {"id", "name"}),
    "rezolus_cpu_usage": ("counter", "nanoseconds", {"state"}),
    "rezolus_memory_usage_resident_set_size": ("gauge", "bytes", set()),
}


def test_sample_has_the_agent_metrics_with_their_types_units_and_labels(sample):
    found = defaultdict(set)
    for meta in sample.fields[2:]:
        labels = frozenset(meta) - {"metric", "metric_type", "unit", "grouping_power", "max_value_power"}
        found[meta["metric"]].add((meta["metric_type"], meta.get("unit"), labels))
    for metric, (kind, unit, labels) in EXPECTED.items():
        assert found[metric] == {(kind, unit, frozenset(labels))}, metric


def test_sample_label_values_match_the_agent(sample):
    def values(metric: str, label: str) -> set[str]:
        return {sample.fields[i][label] for i in sample.columns(metric)}

    assert values("cpu_usage", "id") == {str(c) for c in range(8)}
    assert values("cpu_usage", "state") == {"user", "system"}
    assert values("network_bytes", "direction") == {"transmit", "receive"}
    assert values("blockio_operations", "op") == {"read", "write", "flush", "discard"}
    assert {"read", "write", "poll", "socket", "lock", "sleep"} <= values("syscall", "op")
    assert len(values("syscall", "op")) == 16 and values("syscall_latency", "op") == values("syscall", "op")
    assert {"net_rx", "net_tx", "timer", "sched", "rcu"} <= values("softirq", "kind")
    assert "/system.slice/rezolus.service" in values("cgroup_cpu_instructions", "name")


def test_sample_timestamps_jitter_a_few_ms_around_the_interval(sample):
    steps = np.diff(sample.timestamps) / 1e6
    assert len(sample.timestamps) == 601
    assert 0 <= sample.timestamps[0] - START < 10**7
    assert steps.min() > 995 and steps.max() < 1005
    assert steps.std() > 0.1  # raw agent clock, not a quantized grid
    durations = sample.table.column("duration").to_numpy()
    assert 1e4 < np.median(durations) < 5e6


def test_histograms_have_496_buckets_for_grouping_power_3_and_max_value_power_64(sample):
    histograms = [i for i, meta in enumerate(sample.fields) if meta.get("metric_type") == "histogram"]
    assert len(histograms) >= 28
    for i in histograms:
        assert (sample.fields[i]["grouping_power"], sample.fields[i]["max_value_power"]) == ("3", "64")
        assert sample.buckets(i).shape == (601, 496)


def test_cumulative_series_never_decrease(sample):
    for i, meta in enumerate(sample.fields):
        if meta.get("metric_type") == "counter":
            values = sample.values(i)
            present = values[~np.isnan(values)]
            assert (np.diff(present) >= 0).all(), meta
        elif meta.get("metric_type") == "histogram":
            assert (np.diff(sample.buckets(i), axis=0) >= 0).all(), meta


def per_cpu_busy(recording: Recording) -> dict[str, np.ndarray]:
    """ns of CPU time per second, per CPU, summed over the states."""
    busy = defaultdict(float)
    for i in recording.columns("cpu_usage"):
        busy[recording.fields[i]["id"]] = busy[recording.fields[i]["id"]] + recording.rate(i)
    return busy


def test_sample_per_cpu_busy_never_exceeds_one_core(sample):
    for cpu, ns_per_s in per_cpu_busy(sample).items():
        assert ns_per_s.min() > 0 and ns_per_s.max() <= 1e9, cpu


def test_sample_per_cpu_busy_never_exceeds_one_core_at_peak_load(tmp_path):
    path = tmp_path / "peak.parquet"
    generate_sample(path, duration_s=900, cpus=4, start_ns=START + 16 * 3600 * 10**9)  # 16:00, the daily peak
    busy = per_cpu_busy(Recording(path))
    assert max(ns_per_s.max() for ns_per_s in busy.values()) > 0.95e9  # the load does saturate some CPU
    for cpu, ns_per_s in busy.items():
        assert ns_per_s.max() <= 1e9, cpu


def test_histogram_count_matches_syscall_counter(sample):
    for i in sample.columns("syscall"):
        op = sample.fields[i]["op"]
        (h,) = sample.columns("syscall_latency", op=op)
        calls = np.diff(sample.values(i))
        observations = np.diff(sample.buckets(h).sum(axis=1))
        assert np.array_equal(calls, observations), op
        assert calls.sum() > 0, op


def test_block_io_operations_match_latency_and_size_histograms_and_bytes(sample):
    def power_of_two_start(bucket: int) -> bool:  # g=3: bucket 16 + 8j starts exactly at 2^(j+4)
        return bucket == 0 or (bucket >= 16 and (bucket - 16) % 8 == 0)

    lows = np.array([0 if b == 0 else 2 ** ((b - 16) // 8 + 4) if power_of_two_start(b) else -1 for b in range(496)])
    for op in ("read", "write", "flush"):
        (ops,) = sample.columns("blockio_operations", op=op)
        (latency,) = sample.columns("blockio_latency", op=op)
        (size,) = sample.columns("blockio_size", op=op)
        (nbytes,) = sample.columns("blockio_bytes", op=op)
        per_interval = np.diff(sample.values(ops))
        assert np.array_equal(per_interval, np.diff(sample.buckets(latency).sum(axis=1)))
        sizes = np.diff(sample.buckets(size), axis=0)
        assert np.array_equal(per_interval, sizes.sum(axis=1))
        used = np.flatnonzero(sizes.sum(axis=0))
        assert all(power_of_two_start(b) for b in used), used  # request sizes are whole powers of two (or 0)
        assert np.array_equal(np.diff(sample.values(nbytes)), sizes[:, used] @ lows[used])


def test_cgroup_that_appears_mid_recording_has_leading_nulls_only(sample):
    late = [i for i in sample.columns("cgroup_cpu_usage") if np.isnan(sample.values(i)[0])]
    assert late, "no cgroup starts mid-recording"
    for i in late:
        present = ~np.isnan(sample.values(i))
        first = np.argmax(present)
        assert 60 < first < 540 and present[first:].all()
    names = {sample.fields[i]["name"] for i in late}
    always = {sample.fields[i]["name"] for i in sample.columns("cgroup_cpu_usage") if i not in late}
    assert "/system.slice/rezolus.service" in always and not names & always


def test_memory_gauges_add_up(sample):
    def gauge(metric: str) -> np.ndarray:
        (i,) = sample.columns(metric)
        return sample.values(i)

    total, available, free = gauge("memory_total"), gauge("memory_available"), gauge("memory_free")
    assert (free > 0).all() and (free <= available).all() and (available < total).all()
    assert (free + gauge("memory_buffers") + gauge("memory_cached") < total).all()


def test_sample_load_has_bursts_idle_spells_and_a_latency_spike(sample):
    busy = sum(sample.rate(i) for i in sample.columns("cpu_usage")) / 8e9
    assert busy.min() < 0.1 < 0.4 < busy.max()
    (tcp,) = sample.columns("tcp_packet_latency")
    per_interval = np.diff(sample.buckets(tcp), axis=0)
    mean_bucket = (per_interval * np.arange(496)).sum(axis=1) / per_interval.sum(axis=1)
    # A spike moves the typical latency up by more than two powers of two (16 buckets at g=3).
    assert mean_bucket.max() - np.median(mean_bucket) > 16


@pytest.mark.slow
def test_long_sample_spans_row_groups_and_stays_continuous(tmp_path):
    path = tmp_path / "long.parquet"
    generate_sample(path, duration_s=2000, cpus=2)
    recording = Recording(path)
    groups = recording.file.metadata
    assert [groups.row_group(i).num_rows for i in range(groups.num_row_groups)] == [1800, 201]
    for i in recording.columns("syscall") + recording.columns("cpu_usage"):
        assert (np.diff(recording.values(i)) >= 0).all()
    (h,) = recording.columns("syscall_latency", op="read")
    assert (np.diff(recording.buckets(h), axis=0) >= 0).all()


def test_parameters_shape_the_sample(tmp_path):
    path = tmp_path / "small.parquet"
    start = 1_700_000_000 * 10**9
    generate_sample(path, duration_s=30, cpus=3, interval_ms=500, start_ns=start)
    recording = Recording(path)
    assert len(recording.timestamps) == 61 and 0 <= recording.timestamps[0] - start < 10**7
    assert np.median(np.diff(recording.timestamps)) == pytest.approx(5e8, rel=0.01)
    assert recording.footer["sampling_interval_ms"] == "500"
    assert {recording.fields[i]["id"] for i in recording.columns("cpu_usage")} == {"0", "1", "2"}
    (cores,) = recording.columns("cpu_cores")
    assert set(recording.values(cores)) == {3}
    assert json.loads(recording.footer["systeminfo"])["cpus"] == 3


@pytest.mark.parametrize("arguments", [{"duration_s": 0}, {"cpus": 0}, {"interval_ms": 0}])
def test_rejects_empty_samples(tmp_path, arguments):
    with pytest.raises(ValueError):
        generate_sample(tmp_path / "x.parquet", **arguments)
    assert list(tmp_path.iterdir()) == []
