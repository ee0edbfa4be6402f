"""rezgen reads every real sample recording correctly: checked end to end through the CLI against values computed
independently from the raw Parquet columns (tests/rawparquet.py: plain pyarrow + numpy, no rezgen code).

What "correct" means here (docs/recording-format.md §1–3, §6, and Prometheus 3 semantics):
- A range query evaluates at start + k·step; by default from the first timestamp (rounded up to a whole ms) to the
  last, step = `sampling_interval_ms`.
- A range selector at t covers (t − range, t] (left-open); an instant selector takes the newest sample in
  (t − 5 m, t]. Nulls are "no sample", never zero. All times are kept in integer nanoseconds.
- irate = (v_b − v_a) / (t_b − t_a) over the last two samples of the window, v_b / (t_b − t_a) when v_b < v_a.
- increase/rate = Prometheus's extrapolatedRate (implemented below from its published algorithm).
- histogram_quantile over per-interval histograms = upper edge of the bucket holding rank max(1, ceil(q·count)) of
  the bucket-wise delta, summed over series; no point when the count is 0 (format doc §2.5).

Every recording in tests/data is discovered with a glob, so a new sample is covered without editing this file.
Files without a metric still take part: the expected answer is then an empty result (not an error).
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from rawparquet import RawColumn, RawRecording, bucket_count, quantile_upper_edge, upper_edges
from shared import RECORDINGS, REPO_ROOT, shared_recording

NS = 1_000_000_000
FIVE_MINUTES = 300 * NS
PROVENANCE_KEYS = {"source", "endpoint", "node", "instance", "sampler"}  # format doc §1.6
REL = 1e-6

NAMES = sorted(p.name for p in RECORDINGS.glob("*.parquet")) or ["<no recordings found>"]


# -- running rezgen ---------------------------------------------------------------------------------------------

def rezgen(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rezgen", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=600)


def query(path: Path, expr: str, *options: object) -> list[dict]:
    proc = rezgen("query", path, expr, *options)
    assert proc.returncode == 0, f"rezgen query {expr!r} failed: {proc.stderr}"
    body = json.loads(proc.stdout)
    assert body["status"] == "success", body
    return body["data"]["result"]


def matrix_by_labels(result: list[dict]) -> dict[frozenset, dict[int, float]]:
    """{label set: {time in ms: value}} of a matrix result."""
    out: dict[frozenset, dict[int, float]] = {}
    for series in result:
        key = frozenset(series["metric"].items())
        assert key not in out, f"series {dict(key)} returned twice"
        out[key] = {round(float(t) * 1000): float(v) for t, v in series["values"]}
        assert len(out[key]) == len(series["values"]), "repeated timestamps"
    return out


def ms(t_ns: int) -> int:
    """A nanosecond time as Prometheus prints it: milliseconds."""
    return round(t_ns / 1e6)


def seconds_text(t_ns: int) -> str:
    """Exact decimal unix seconds of a nanosecond time (no float rounding)."""
    return f"{t_ns // NS}.{t_ns % NS:09d}"


def assert_series_match(expected: dict[frozenset, dict[int, float]], actual: dict[frozenset, dict[int, float]],
                        what: str, exact: bool = False) -> None:
    assert set(actual) == set(expected), f"{what}: label sets differ: expected {sorted(map(dict, expected))}, " \
                                         f"got {sorted(map(dict, actual))}"
    for key, points in expected.items():
        got = actual[key]
        missing, extra = sorted(set(points) - set(got)), sorted(set(got) - set(points))
        assert not missing and not extra, f"{what} {dict(key)}: timestamps differ: missing {missing[:5]} " \
                                          f"({len(missing)}), unexpected {extra[:5]} ({len(extra)})"
        bad = [(t, points[t], got[t]) for t in points
               if not (got[t] == points[t] if exact else math.isclose(got[t], points[t], rel_tol=REL, abs_tol=1e-9))]
        assert not bad, f"{what} {dict(key)}: {len(bad)} of {len(points)} values differ, e.g. (ms, expected, got) " \
                        f"{bad[:5]}"


# -- independent expectations -----------------------------------------------------------------------------------

@cache
def raw(name: str) -> RawRecording:
    return RawRecording(RECORDINGS / name)


def eval_times(rec: RawRecording) -> list[int]:
    """Evaluation times of `rezgen query` without --start/--end/--step: from the first timestamp rounded up to a
    whole millisecond (so that every printed time is exactly an evaluation time) to the last timestamp, every
    `sampling_interval_ms`."""
    first, last = int(rec.timestamps[0]), int(rec.timestamps[-1])
    start = -(-first // 1_000_000) * 1_000_000
    return list(range(start, last + 1, rec.interval_ns))


def samples(rec: RawRecording, column: RawColumn) -> tuple[np.ndarray, np.ndarray]:
    """Times and values of the non-null samples of a counter or gauge."""
    values = rec.values(column)
    keep = ~np.isnan(values)
    return rec.timestamps[keep], values[keep]


def window(times: np.ndarray, t: int, range_ns: int) -> np.ndarray:
    """Indices of the samples in (t - range, t]."""
    return np.flatnonzero((times > t - range_ns) & (times <= t))


def irate_at(times: np.ndarray, values: np.ndarray, t: int, range_ns: int = FIVE_MINUTES) -> float | None:
    idx = window(times, t, range_ns)
    if len(idx) < 2:
        return None
    a, b = idx[-2], idx[-1]
    change = values[b] - values[a] if values[b] >= values[a] else values[b]  # a decrease is a counter reset
    return change / ((times[b] - times[a]) / NS)


def latest_at(times: np.ndarray, values: np.ndarray, t: int) -> float | None:
    idx = window(times, t, FIVE_MINUTES)
    return float(values[idx[-1]]) if len(idx) else None


def extrapolated_rate(times: np.ndarray, values: np.ndarray, t: int, range_ns: int, *, is_rate: bool,
                      is_counter: bool = True) -> float | None:
    """Prometheus's extrapolatedRate (promql/functions.go, Prometheus 3; the order of the zero-point limit is the
    one fixed by prometheus/prometheus#13725), with durations in seconds from nanosecond timestamps."""
    idx = window(times, t, range_ns)
    if len(idx) < 2:
        return None
    ts, vs = times[idx], values[idx]
    result = float(vs[-1] - vs[0])
    if is_counter:
        for prev, cur in itertools.pairwise(vs):
            if cur < prev:  # counter reset: the counter restarted from zero
                result += float(prev)
    range_start, range_end = t - range_ns, t
    duration_to_start = (int(ts[0]) - range_start) / NS
    duration_to_end = (range_end - int(ts[-1])) / NS
    sampled_interval = (int(ts[-1]) - int(ts[0])) / NS
    average_between_samples = sampled_interval / (len(ts) - 1)
    threshold = average_between_samples * 1.1
    if duration_to_start >= threshold:
        duration_to_start = average_between_samples / 2
    if is_counter:
        duration_to_zero = duration_to_start
        if result > 0 and vs[0] >= 0:
            duration_to_zero = sampled_interval * (float(vs[0]) / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    if duration_to_end >= threshold:
        duration_to_end = average_between_samples / 2
    factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval
    if is_rate:
        factor /= range_ns / NS
    return result * factor


def expected_cpu_busy_fraction(rec: RawRecording) -> dict[frozenset, dict[int, float]]:
    """`sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9`."""
    usage = [samples(rec, c) for c in rec.select("cpu_usage")]
    cores = [samples(rec, c) for c in rec.select("cpu_cores")]
    points = {}
    for t in eval_times(rec):
        rates = [r for r in (irate_at(ts, vs, t) for ts, vs in usage) if r is not None]
        counts = [c for c in (latest_at(ts, vs, t) for ts, vs in cores) if c is not None]
        if rates and counts:
            points[ms(t)] = sum(rates) / sum(counts) / 1e9
    return {frozenset(): points} if points else {}


def expected_irate_by_id(rec: RawRecording) -> dict[frozenset, dict[int, float]]:
    """`sum by (id) (irate(cpu_usage[5m]))`."""
    groups: dict[frozenset, list] = defaultdict(list)
    for column in rec.select("cpu_usage"):
        key = frozenset({"id": column.labels["id"]}.items()) if "id" in column.labels else frozenset()
        groups[key].append(samples(rec, column))
    out = {}
    for key, members in groups.items():
        points = {}
        for t in eval_times(rec):
            rates = [r for r in (irate_at(ts, vs, t) for ts, vs in members) if r is not None]
            if rates:
                points[ms(t)] = sum(rates)
        if points:
            out[key] = points
    return out


def interval_delta(present: np.ndarray, dense: np.ndarray, times: np.ndarray, t: int) -> np.ndarray | None:
    """Bucket-wise delta between the last two samples of a histogram in (t - 5m, t]; a reset gives the later
    cumulative array itself."""
    rows = np.flatnonzero(present)
    idx = window(times[rows], t, FIVE_MINUTES)
    if len(idx) < 2:
        return None
    a, b = rows[idx[-2]], rows[idx[-1]]
    delta = dense[b] - dense[a]
    return dense[b].copy() if (delta < 0).any() else delta


def expected_summed_quantile(rec: RawRecording, metric: str, q: float) -> dict[frozenset, dict[int, float]]:
    """`histogram_quantile(q, sum(irate(metric[5m])))`: rank rule on the summed per-interval delta."""
    columns = rec.select(metric)
    if not columns:
        return {}
    layouts = {(c.grouping_power, c.max_value_power) for c in columns}
    assert len(layouts) == 1, f"{metric}: series with different layouts {layouts}"
    ((g, m),) = layouts
    edges = upper_edges(g, m)
    histograms = [rec.histogram(c) for c in columns]
    points = {}
    for t in eval_times(rec):
        total = None
        for present, dense in histograms:
            delta = interval_delta(present, dense, rec.timestamps, t)
            if delta is not None:
                total = delta if total is None else total + delta
        value = None if total is None else quantile_upper_edge(total, q, edges)
        if value is not None:
            points[ms(t)] = value
    return {frozenset(): points} if points else {}


def selector(column: RawColumn) -> str:
    """A selector matching exactly this column's series."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(column.labels.items()))
    return f"{column.metric}{{{inner}}}"


# -- inspect ----------------------------------------------------------------------------------------------------

def valid_histogram(column: RawColumn) -> bool:
    g, m = column.grouping_power, column.max_value_power
    return g is not None and m is not None and 0 <= g < m <= 64


@pytest.mark.parametrize("name", NAMES)
def test_inspect_reports_the_metrics_series_and_time_range_found_in_the_field_metadata(name):
    path = shared_recording(name)
    rec = raw(name)
    proc = rezgen("inspect", "--json", path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)

    columns = [c for c in rec.metric_columns if c.kind != "histogram" or valid_histogram(c)]
    identities = Counter(c.identity for c in columns)
    expected: dict[str, dict] = {}
    for c in columns:
        entry = expected.setdefault(c.metric, {"type": c.kind, "series": 0, "labels": defaultdict(set),
                                               "provenance": defaultdict(set)})
        assert entry["type"] == c.kind, f"{c.metric}: mixed kinds in one file"
        entry["series"] += 1
        labels = dict(c.labels)
        if identities[c.identity] > 1:  # same identity twice: rezgen keeps them apart with a `column` label
            labels["column"] = str(c.index)
        for k, v in labels.items():
            entry["provenance" if k in PROVENANCE_KEYS else "labels"][k].add(v)

    got = {m["name"]: m for m in info["metrics"]}
    assert len(info["metrics"]) == len(expected)
    assert sorted(got) == sorted(expected)
    for metric, entry in expected.items():
        assert got[metric]["type"] == entry["type"], metric
        assert got[metric]["series"] == entry["series"], metric
        assert got[metric]["labels"] == {k: len(v) for k, v in entry["labels"].items()}, metric
        assert got[metric]["provenance"] == {k: sorted(v) for k, v in entry["provenance"].items()}, metric
    assert sum(m["series"] for m in info["metrics"]) == len(columns)
    assert info["rows"] == len(rec.timestamps)
    assert info["start_ns"] == int(rec.timestamps[0])
    assert info["end_ns"] == int(rec.timestamps[-1])
    assert info["interval_ms"] == float(rec.footer["sampling_interval_ms"])


# -- the dashboard queries, every recording ------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_cpu_busy_fraction_matches_the_raw_counters(name):
    path = shared_recording(name)
    expected = expected_cpu_busy_fraction(raw(name))
    actual = matrix_by_labels(query(path, "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9"))
    assert_series_match(expected, actual, "busy fraction")
    for points in expected.values():  # sanity of the oracle itself: a fraction of the machine
        assert all(0 <= v <= 1.05 for v in points.values())


@pytest.mark.parametrize("name", NAMES)
def test_per_cpu_irate_matches_the_raw_counters(name):
    path = shared_recording(name)
    expected = expected_irate_by_id(raw(name))
    actual = matrix_by_labels(query(path, "sum by (id) (irate(cpu_usage[5m]))"))
    assert_series_match(expected, actual, "per-CPU irate")


@pytest.mark.parametrize("name", NAMES)
def test_summed_syscall_latency_p99_matches_the_raw_histograms(name):
    path = shared_recording(name)
    expected = expected_summed_quantile(raw(name), "syscall_latency", 0.99)
    actual = matrix_by_labels(query(path, "histogram_quantile(0.99, sum(irate(syscall_latency[5m])))"))
    assert_series_match(expected, actual, "p99 syscall latency", exact=True)


def test_histogram_quantile_of_a_rate_equals_that_of_the_interval_counts():
    """A percentile must not depend on the unit of time of the rate. demo.parquet has raw, jittered timestamps
    (Δt 0.9966-1.0030 s), so irate's counts are the interval's counts divided by a Δt slightly off 1 s; the rank
    rule of the format doc (§2.5) is defined on the interval's counts, which `idelta` gives unscaled."""
    path = shared_recording("demo.parquet")
    expected = expected_summed_quantile(raw("demo.parquet"), "syscall_latency", 0.99)
    per_interval = matrix_by_labels(query(path, "histogram_quantile(0.99, sum(idelta(syscall_latency[5m])))"))
    assert_series_match(expected, per_interval, "p99 of idelta", exact=True)
    per_second = matrix_by_labels(query(path, "histogram_quantile(0.99, sum(irate(syscall_latency[5m])))"))
    assert_series_match(per_interval, per_second, "p99 of irate vs p99 of idelta", exact=True)


# -- counters with resets and gaps (AB_base) ------------------------------------------------------------------------

def decreasing_series(rec: RawRecording) -> list[tuple[RawColumn, int]]:
    """(column, index among its non-null samples of the first one below its predecessor) for every counter that
    decreases; `cgroup_cpu_usage` first, as the format doc names cgroup counters as the ones that do."""
    out = []
    counters = [c for c in rec.metric_columns if c.kind == "counter"]
    for column in sorted(counters, key=lambda c: (c.metric != "cgroup_cpu_usage", c.index)):
        _, values = samples(rec, column)
        drops = np.flatnonzero(values[1:] < values[:-1])
        if len(drops):
            out.append((column, int(drops[0]) + 1))
    return out


@pytest.mark.slow
def test_ab_base_counter_resets_give_prometheus_irate_and_increase():
    path = shared_recording("AB_base.parquet")
    rec = raw("AB_base.parquet")
    found = decreasing_series(rec)
    assert found, "AB_base is documented to hold decreasing cgroup counters"
    for column, drop in found:
        times, values = samples(rec, column)
        assert values[drop] < values[drop - 1]
        labels = frozenset(column.labels.items())  # irate/increase drop only the metric name

        irate = {ms(t): v for t in eval_times(rec) if (v := irate_at(times, values, t)) is not None}
        # The step whose last two samples straddle the reset must be there, as the new value over Δt.
        after_reset = next(t for t in eval_times(rec) if window(times, t, FIVE_MINUTES)[-1] == drop)
        assert irate[ms(after_reset)] == pytest.approx(values[drop] / ((times[drop] - times[drop - 1]) / NS))
        assert_series_match({labels: irate}, matrix_by_labels(query(path, f"irate({selector(column)}[5m])")),
                            f"irate({column.metric}) across a reset")

        minute = 60 * NS
        increase = {ms(t): v for t in eval_times(rec)
                    if (v := extrapolated_rate(times, values, t, minute, is_rate=False)) is not None}
        assert_series_match({labels: increase},
                            matrix_by_labels(query(path, f"increase({selector(column)}[1m])")),
                            f"increase({column.metric}) across a reset")


def zero_point_steps(rec: RawRecording, times: np.ndarray, values: np.ndarray, range_ns: int) -> list[int]:
    """Steps where Prometheus 3 and Prometheus <= 2.51 extrapolate differently (prometheus/prometheus#13725): the
    first sample is too far from the window start (>= 1.1 average intervals, so the series is taken to start half
    an interval before it) and the zero point lies between that half interval and the 1.1 threshold. Older code
    capped at the zero point before applying the threshold and so extrapolated further back."""
    out = []
    for t in eval_times(rec):
        idx = window(times, t, range_ns)
        if len(idx) < 2:
            continue
        ts, vs = times[idx], values[idx]
        increase = vs[-1] - vs[0] + sum(p for p, c in itertools.pairwise(vs) if c < p)
        sampled = (ts[-1] - ts[0]) / NS
        average = sampled / (len(ts) - 1)
        to_start = (ts[0] - (t - range_ns)) / NS
        if increase > 0 and to_start >= 1.1 * average and average / 2 < sampled * vs[0] / increase < 1.1 * average:
            out.append(t)
    return out


def test_increase_of_a_counter_starting_inside_the_window_is_extrapolated_half_an_interval_back():
    """Prometheus 3 rule: a series that starts inside the window is extrapolated back half an average interval, and
    only then limited by its zero point. AB_base's cgroup_scheduler_context_switch{id="40"} appears at 2, then 5:
    increase over [1m] one step later is 3 * (1 + 0.5) / 1 = 4.5 (the old order gave 3 * (1 + 2/3) = 5)."""
    path = shared_recording("AB_base.parquet")
    rec = raw("AB_base.parquet")
    (column,) = rec.select("cgroup_scheduler_context_switch", id="40")
    times, values = samples(rec, column)
    minute = 60 * NS
    assert zero_point_steps(rec, times, values, minute), "this series no longer exercises the rule"
    expected = {ms(t): v for t in eval_times(rec)
                if (v := extrapolated_rate(times, values, t, minute, is_rate=False)) is not None}
    assert expected[ms(int(times[1]))] == pytest.approx(4.5)
    actual = matrix_by_labels(query(path, f"increase({selector(column)}[1m])"))
    assert_series_match({frozenset(column.labels.items()): expected}, actual, "increase of a starting counter")


def test_ab_base_irate_across_the_two_second_gap_uses_the_real_interval():
    path = shared_recording("AB_base.parquet")
    rec = raw("AB_base.parquet")
    gaps = np.flatnonzero(np.diff(rec.timestamps) > 1.5 * rec.interval_ns)
    assert len(gaps) == 1, "AB_base has one missing row"
    after = int(rec.timestamps[gaps[0] + 1])
    assert after - int(rec.timestamps[gaps[0]]) == 2 * NS
    expected = expected_cpu_busy_fraction(rec)
    result = matrix_by_labels(query(path, "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9",
                                    "--start", seconds_text(after), "--end", seconds_text(after)))
    assert result == {frozenset(): {ms(after): pytest.approx(expected[frozenset()][ms(after)], rel=REL)}}
    # The same change over 1 s would double the fraction: make sure the oracle saw a 2 s interval.
    usage = [samples(rec, c) for c in rec.select("cpu_usage")]
    change = sum(vs[window(ts, after, FIVE_MINUTES)[-1]] - vs[window(ts, after, FIVE_MINUTES)[-2]] for ts, vs in usage)
    cores = latest_at(*samples(rec, rec.select("cpu_cores")[0]), after)
    assert expected[frozenset()][ms(after)] == pytest.approx(change / 2.0 / cores / 1e9, rel=1e-12)


# -- the worked example of the format doc (§2.6, demo.parquet) -----------------------------------------------------

READ_LATENCY = 'syscall_latency{op="read"}'


def test_demo_read_latency_percentiles_between_rows_149_and_150_are_the_documented_ones():
    path = shared_recording("demo.parquet")
    rec = raw("demo.parquet")
    t150 = int(rec.timestamps[150])
    assert (int(rec.timestamps[149]), t150) == (1768956787001544632, 1768956788001171088)
    (column,) = rec.select("syscall_latency", op="read")
    _, dense = rec.histogram(column)
    edges = upper_edges(column.grouping_power, column.max_value_power)
    delta = dense[150] - dense[149]
    assert delta.sum() == 47
    for q, documented in ((0.5, 2559), (0.99, 65535)):
        assert quantile_upper_edge(delta, q, edges) == documented  # the oracle agrees with the doc
        result = query(path, f"histogram_quantile({q}, irate({READ_LATENCY}[5m]))", "--time", seconds_text(t150))
        assert [(r["metric"], float(r["value"][1])) for r in result] == [({"op": "read"}, documented)], q


@pytest.mark.slow
def test_demo_whole_recording_read_latency_percentiles_are_the_documented_ones():
    """Whole recording (row 0 -> row 301): p50 2559, p90 7167, p99 28671, p99.9 65535 (format doc §2.6).

    PromQL's only way to take one window's increase of a histogram is `increase(h[range])`, which extrapolates:
    it multiplies every bucket of (last - first) by one factor f = (sampled + to_start + to_end) / sampled. Here the
    instant query runs 1 ms after the last row with a range reaching 1-2 ms before the first row, so f - 1 is about
    1e-5: every sample is inside, and f cannot move a quantile unless a running bucket sum lies within q·T·(f - 1)
    (< 0.2) of the rank. The test computes the expected bucket both ways (plain delta and f-scaled delta with the
    exact Prometheus f), requires them to agree, and compares rezgen with that.
    """
    path = shared_recording("demo.parquet")
    rec = raw("demo.parquet")
    (column,) = rec.select("syscall_latency", op="read")
    present, dense = rec.histogram(column)
    assert present.all()
    edges = upper_edges(column.grouping_power, column.max_value_power)
    first, last = int(rec.timestamps[0]), int(rec.timestamps[-1])
    t = last + 1_000_000
    range_ms = (t - first) // 1_000_000 + 2  # whole milliseconds, reaching 1-2 ms before the first row
    range_ns = range_ms * 1_000_000
    assert len(window(rec.timestamps, t, range_ns)) == len(rec.timestamps)

    delta = dense[-1] - dense[0]
    assert delta.sum() == 15265
    # The factor comes from the total count, whose increase is extrapolated like any counter's would be, except that
    # the zero-point limit does not apply to a window with far more history before it than inside it.
    total = dense.sum(axis=1).astype(np.float64)
    factor = extrapolated_rate(rec.timestamps, total, t, range_ns, is_rate=False) / (total[-1] - total[0])
    assert 1 < factor < 1.0001
    for q, documented in ((0.5, 2559), (0.9, 7167), (0.99, 28671), (0.999, 65535)):
        assert quantile_upper_edge(delta, q, edges) == documented
        assert quantile_upper_edge(delta * factor, q, edges) == documented
        result = query(path, f"histogram_quantile({q}, increase({READ_LATENCY}[{range_ms}ms]))",
                       "--time", seconds_text(t))
        assert [(r["metric"], float(r["value"][1])) for r in result] == [({"op": "read"}, documented)], q


def test_demo_read_latency_histogram_total_equals_the_syscall_counter_every_interval():
    """The doc's cross-check (§2.6), through rezgen: histogram_count(irate(h)) == irate(syscall{op="read"})."""
    path = shared_recording("demo.parquet")
    counts = matrix_by_labels(query(path, f"histogram_count(irate({READ_LATENCY}[5m]))"))
    calls = matrix_by_labels(query(path, 'irate(syscall{op="read"}[5m])'))
    key = frozenset({"op": "read"}.items())
    assert len(counts[key]) >= 290  # one point per interval but the first
    assert_series_match(calls, counts, "histogram count vs counter")


# -- small files: a Prometheus capture and a trimmed report ------------------------------------------------------

@pytest.mark.parametrize("name, metric, range_s", [
    ("simple_capture.parquet", "http_requests_total", 5),
    ("mr2-report.parquet", "syscall", 60),
])
def test_rate_and_increase_follow_prometheus_extrapolation(name, metric, range_s):
    path = shared_recording(name)
    rec = raw(name)
    for function, is_rate in (("rate", True), ("increase", False)):
        expected = {}
        for column in rec.select(metric):
            times, values = samples(rec, column)
            points = {ms(t): v for t in eval_times(rec)
                      if (v := extrapolated_rate(times, values, t, range_s * NS, is_rate=is_rate)) is not None}
            if points:
                expected[frozenset(column.labels.items())] = points
        assert expected, "the oracle found no points: nothing would be tested"
        actual = matrix_by_labels(query(path, f"{function}({metric}[{range_s}s])"))
        assert_series_match(expected, actual, f"{function}({metric})")


def test_simple_capture_queue_depth_gauge_is_returned_as_recorded():
    path = shared_recording("simple_capture.parquet")
    rec = raw("simple_capture.parquet")
    (column,) = rec.select("queue_depth")
    times, values = samples(rec, column)
    expected = {frozenset({"__name__": "queue_depth", **column.labels}.items()):
                {ms(t): v for t in eval_times(rec) if (v := latest_at(times, values, t)) is not None}}
    assert_series_match(expected, matrix_by_labels(query(path, "queue_depth")), "queue_depth")


ABSENT = [
    ("simple_capture.parquet", "cpu_cores"),
    ("simple_capture.parquet", "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9"),
    ("simple_capture.parquet", "histogram_quantile(0.99, sum(irate(syscall_latency[5m])))"),
    ("simple_capture.parquet", 'http_requests_total{method="NOPE"}'),
    ("mr2-report.parquet", "cpu_cores"),
    ("mr2-report.parquet", "sum(irate(cpu_usage[5m])) / sum(cpu_cores)"),
    ("mr2-report.parquet", "rate(no_such_metric[1m])"),
]


@pytest.mark.parametrize("name, expr", ABSENT)
def test_queries_for_absent_metrics_give_an_empty_result_not_an_error(name, expr):
    path = shared_recording(name)
    rec = raw(name)
    assert query(path, expr) == []
    proc = rezgen("query", path, expr, "--time", seconds_text(int(rec.timestamps[-1])))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"status": "success", "data": {"resultType": "vector", "result": []}}


def test_the_raw_reader_computes_h2_bucket_edges_like_the_format_doc():
    """Guard for the oracle itself (format doc §2.3–2.4)."""
    assert bucket_count(2, 5) == 16 and bucket_count(3, 64) == 496 and bucket_count(7, 64) == 7424
    assert upper_edges(2, 5) == [0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 15, 19, 23, 27, 31]
    edges = upper_edges(3, 64)
    assert (edges[16], edges[24], edges[32], edges[48], edges[495]) == (17, 35, 71, 287, 2**64 - 1)
    counts = [0] * 16
    counts[3], counts[8], counts[12], counts[13], counts[15] = 1, 2, 5, 1, 1
    assert quantile_upper_edge(counts, 0.5, upper_edges(2, 5)) == 19
    assert quantile_upper_edge(counts, 0.99, upper_edges(2, 5)) == 31
