"""rezgen answers PromQL exactly as a real Prometheus does, over real recordings.

Each recording's counters and gauges are exported to a real Prometheus (see `prometheus_oracle.py`); every expression
below is then asked of both `python -m rezgen query` and Prometheus, with the same explicit times, and the answers
must agree series by series: same label sets, same timestamps, values within rel 1e-9 / abs 1e-9 (NaN = NaN). The
order of series is free; for `topk`/`bottomk` the members picked at each step must match (up to ties).

Evaluation times never coincide with sample times. rezgen follows Prometheus 3, whose range selectors and lookback
cover (t - range, t] (left-open); the Prometheus 2.42 that Debian ships covers [t - range, t]. The two only differ
when a sample sits exactly on t - range. Both recordings used here carry stamps on whole seconds (c16's are exact
multiples of 1e9 ns, so Prometheus's millisecond storage loses nothing), so every evaluation time is a whole second
plus 0.5 s (start = first sample + 0.5 s, integer-second steps, integer-second ranges): no window edge ever lands
on a sample.

What the recordings bring: c16.parquet (16 CPUs, node="rezolus", vLLM and llm-perf series with instance="0",
three indistinguishable `vllm_prompt_tokens_by_source_total` series that the oracle leaves out); AB_base.parquet
(8 CPUs, instance="0", a 2 s timestamp gap at 278 s, counter resets in `cgroup_syscall` and
`cgroup_scheduler_runqueue_wait`, cgroup and task series that start and end mid-recording).

Every test is marked `oracle` (left out of `make test-fast`). Without prometheus/promtool each skips, saying so, through
the `prometheus_for` fixture (installed with `apt-get install prometheus`); in CI (`CI` set) each fails instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_oracle import diff_results, format_time, membership_diff
from shared import REPO_ROOT, shared_recording

RECORDINGS = ["c16.parquet", "AB_base.parquet"]
STEP = "5s"


@dataclass(frozen=True)
class Case:
    name: str
    expr: str
    only: str | None = None  # the one recording that has the metrics
    membership: bool = False  # topk/bottomk: compare members per step, ties allowed

    def applies_to(self, recording: str) -> bool:
        return self.only is None or self.only == recording


CASES = [
    # Range-vector functions on counters: extrapolation, resets, gaps, series that start and end mid-recording.
    Case("rate", "rate(network_bytes[1m])"),
    Case("rate-resets", "rate(cgroup_scheduler_runqueue_wait[1m])"),
    Case("rate-short-lived", "rate(task_cpu_usage[30s])"),
    Case("irate", "irate(cpu_usage[5m])"),
    Case("increase", "increase(cgroup_cpu_usage[2m])"),
    Case("increase-resets", "increase(cgroup_syscall[2m])"),
    # Range-vector functions on gauges.
    Case("delta", "delta(memory_free[1m])"),
    Case("idelta", "idelta(memory_available[1m])"),
    Case("avg_over_time", "avg_over_time(memory_free[1m])"),
    Case("min_over_time", "min_over_time(memory_available[30s])"),
    Case("max_over_time", "max_over_time(memory_cached[30s])"),
    Case("sum_over_time", "sum_over_time(cpu_cores[1m])"),
    Case("count_over_time", "count_over_time(cpu_usage[1m])"),
    Case("last_over_time", "last_over_time(memory_free[1m])"),
    # Instant selectors: the 5 m lookback, the metric name kept.
    Case("selector", 'cpu_usage{state="user", id="0"}'),
    Case("selector-gauge", "memory_free"),
    # Aggregations.
    Case("cpu-busy-fraction", "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9"),
    Case("sum-by", "sum by (id) (irate(cpu_usage[5m]))"),
    Case("sum-by-regex", 'sum by (state) (rate(cpu_usage{id=~"1.*"}[30s]))'),
    Case("sum-by-trailing", "sum(rate(syscall[30s])) by (op)"),
    Case("sum-without", "sum without (state) (rate(cpu_usage[1m]))"),
    Case("avg", "avg(rate(cpu_usage[1m]))"),
    Case("avg-by", "avg by (state) (rate(cpu_usage[1m]))"),
    Case("min-by", "min by (state) (rate(cpu_usage[1m]))"),
    Case("max", "max(rate(network_packets[1m]))"),
    Case("count", "count(cpu_usage)"),
    Case("count-by", "count by (state) (cpu_usage)"),
    Case("count-by-name", "count by (name) (cgroup_cpu_usage)"),
    Case("topk", "topk(3, sum by (id) (rate(cpu_usage[1m])))", membership=True),
    Case("topk-raw", "topk(5, rate(syscall[1m]))", membership=True),
    Case("bottomk", "bottomk(2, sum by (id) (rate(cpu_usage[1m])))", membership=True),
    # Arithmetic with scalars, precedence.
    Case("scalar-arith", "2 * rate(network_bytes[1m]) + 1"),
    Case("scalar-left", "1 - memory_free / memory_total"),
    Case("percent-used", "(memory_total - memory_available) / memory_total * 100"),
    Case("power-unary", "-rate(network_packets[30s]) ^ 2"),
    Case("modulo", "rate(syscall[1m]) % 7"),
    # Comparisons: bool and filtering.
    Case("bool-brief", 'cpu_usage{state="user"} > bool 1e8'),
    Case("bool", "rate(cpu_usage[1m]) > bool 1e7", only="c16.parquet"),
    Case("bool", "rate(cpu_usage[1m]) > bool 4e8", only="AB_base.parquet"),
    Case("filter", "rate(syscall[1m]) > 1000"),
    Case("filter-less", 'rate(cpu_usage{state="system"}[1m]) < 1e6', only="c16.parquet"),
    Case("filter-less", 'rate(cpu_usage{state="system"}[1m]) < 3.6e8', only="AB_base.parquet"),
    Case("filter-vectors", "memory_free < memory_available"),
    Case("filter-eq-bool", "cpu_cores == bool 8"),
    # Vector matching.
    Case(
        "group-left-per-id",
        'sum by (id) (rate(cpu_usage[1m])) / on(id) group_left sum by (id) (rate(cpu_usage{state="user"}[1m]))',
    ),
    Case("group-left-many-to-one", "rate(cpu_usage[1m]) / on(id) group_left sum by (id) (rate(cpu_usage[1m]))"),
    Case("group-right", "sum by (id) (rate(cpu_usage[1m])) / on(id) group_right rate(cpu_usage[1m])"),
    Case("ignoring", 'rate(cpu_usage{state="user"}[1m]) / ignoring(state) rate(cpu_usage{state="system"}[1m])'),
    Case(
        "ignoring-group-left",
        "rate(cpu_usage[1m]) / ignoring(state) group_left sum without (state) (rate(cpu_usage[1m]))",
    ),
    Case("and", "rate(syscall[1m]) > 100 and rate(syscall[1m]) < 200000"),
    Case("or", "rate(network_bytes[1m]) or rate(tcp_bytes[1m])"),
    Case("unless", 'rate(cpu_usage[1m]) unless on(id) rate(cpu_usage{id="0"}[1m])'),
    # Functions.
    Case("label_replace", 'label_replace(rate(network_bytes[1m]), "dir", "$1-x", "direction", "(.*)")'),
    Case("abs", "abs(delta(memory_free[30s]))"),
    Case("clamp_min", "clamp_min(rate(network_bytes[30s]), 5.4e5)", only="c16.parquet"),
    Case("clamp_min", "clamp_min(rate(network_bytes[30s]), 1e8)", only="AB_base.parquet"),
    Case("clamp_max", "clamp_max(rate(network_bytes[30s]), 5.4e5)", only="c16.parquet"),
    Case("clamp_max", "clamp_max(rate(network_bytes[30s]), 1e8)", only="AB_base.parquet"),
    Case("scalar", "scalar(sum(cpu_cores))"),
    Case("divide-by-scalar", "rate(network_bytes[1m]) / scalar(sum(cpu_cores))"),
    Case("vector", "vector(1)"),
    Case("divide-by-vector", "sum(rate(cpu_usage[1m])) / vector(1e9)"),
    Case("vector-of-scalar", "vector(scalar(count(cpu_usage)))"),
    # Matchers.
    Case("not-regex", 'count(cpu_usage{state!~"user"})'),
    Case("not-equal", 'sum(rate(cpu_usage{id!="0"}[1m]))'),
    Case("regex-alternation", 'count by (op) (syscall{op=~"read|write"})'),
    Case("name-regex", 'count({__name__=~"memory_numa_.*"})'),
    # Thresholds and metrics that suit only one of the recordings.
    Case("vllm-by-reason", "sum by (finished_reason) (rate(vllm_request_success_total[1m]))", only="c16.parquet"),
    Case("vllm-tokens", "rate(vllm_generation_tokens_total[30s])", only="c16.parquet"),
    Case("llm-perf-requests", "sum by (status) (increase(requests[1m]))", only="c16.parquet"),
    Case("gpu-gauge", "avg_over_time(gpu_power_usage[30s])", only="c16.parquet"),
    Case("cachecannon-rate", "rate(responses_received[1m])", only="AB_base.parquet"),
    Case("cachecannon-gauge", "connections_active", only="AB_base.parquet"),
    Case("cachecannon-bits", "rate(bytes_rx[30s]) * 8", only="AB_base.parquet"),
    Case("cgroup-by-name", "sum by (name) (rate(cgroup_syscall[1m]))", only="AB_base.parquet"),
]

# Instant queries: a few expressions at times that probe the edges (first samples, the middle, the last sample, and
# 90 s after it, where only the 5 m lookback of instant selectors still reaches data).
INSTANT_CASES = [c for c in CASES if c.name in {
    "rate", "irate", "increase-resets", "selector", "sum-by", "topk", "group-left-per-id", "scalar", "avg_over_time",
}]


pytestmark = pytest.mark.oracle  # every test asks a real Prometheus (`prometheus_for`)


def rezgen_query(recording: Path, expr: str, *args: str) -> dict:
    """Run `python -m rezgen query` and return its JSON (it prints exactly a Prometheus API response)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "rezgen", "query", *args, "--", str(recording), expr],  # EXPR may start with "-"
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"rezgen query {expr!r} {' '.join(args)} exited with {result.returncode}:\n"
                    f"{result.stderr[-3000:]}", pytrace=False)
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"rezgen query {expr!r} printed no JSON:\n{result.stdout[:2000]}", pytrace=False)


def oracle_answer(response: dict, expr: str) -> dict:
    assert response.get("status") == "success", f"Prometheus rejected {expr!r}: {response}"
    return response["data"]


def assert_same(ours: dict, theirs: dict, case: Case, where: str) -> None:
    assert ours.get("status") == "success", f"rezgen failed on {case.expr!r}: {ours}"
    compare = membership_diff if case.membership else diff_results
    problems = compare(ours["data"], theirs)
    assert not problems, f"{case.expr}  ({where})\n  " + "\n  ".join(problems)


def cases_for(recordings: list[str], cases: list[Case]):
    for recording in recordings:
        for case in cases:
            if case.applies_to(recording):
                yield pytest.param(recording, case, id=f"{Path(recording).stem}-{case.name}")


@pytest.mark.parametrize(("recording", "case"), list(cases_for(RECORDINGS, CASES)))
def test_range_query_matches_prometheus(prometheus_for, recording, case):
    oracle = prometheus_for(recording)
    start, end = format_time(oracle.first_s + 0.5), format_time(oracle.last_s + 0.5)
    theirs = oracle_answer(oracle.query_range(case.expr, start, end, STEP), case.expr)
    assert theirs["result"], f"Prometheus returns nothing for {case.expr!r}: the case would test nothing"
    ours = rezgen_query(oracle.recording, case.expr, "--start", start, "--end", end, "--step", STEP)
    assert_same(ours, theirs, case, f"{recording}, {start} to {end} step {STEP}")


@pytest.mark.parametrize(("recording", "case"), list(cases_for(RECORDINGS, INSTANT_CASES)))
def test_instant_query_matches_prometheus(prometheus_for, recording, case):
    oracle = prometheus_for(recording)
    middle = oracle.first_s + ((oracle.last_s - oracle.first_s) // 2)
    for at in (oracle.first_s + 0.5, oracle.first_s + 45.5, middle + 0.5, oracle.last_s + 0.5, oracle.last_s + 90.5):
        theirs = oracle_answer(oracle.query(case.expr, format_time(at)), case.expr)
        ours = rezgen_query(oracle.recording, case.expr, "--time", format_time(at))
        assert_same(ours, theirs, case, f"{recording} at {format_time(at)}")


@pytest.mark.parametrize("recording", RECORDINGS)
def test_rfc3339_times_name_the_same_instants(prometheus_for, recording):
    oracle = prometheus_for(recording)
    start, end = oracle.first_s + 60.5, oracle.first_s + 120.5

    def rfc3339(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    case = Case("rfc3339", "sum by (state) (rate(cpu_usage[1m]))")
    theirs = oracle_answer(oracle.query_range(case.expr, start, end, "15s"), case.expr)
    ours = rezgen_query(oracle.recording, case.expr, "--start", rfc3339(start), "--end", rfc3339(end), "--step", "15s")
    assert_same(ours, theirs, case, f"{recording}, {rfc3339(start)} to {rfc3339(end)} step 15s")


# The oracle itself: Prometheus holds what the recording holds.


@pytest.mark.parametrize("recording", RECORDINGS)
def test_oracle_sees_the_recordings_cpus(prometheus_for, recording):
    import pyarrow.parquet as pq

    oracle = prometheus_for(recording)
    schema = pq.ParquetFile(shared_recording(recording)).schema_arrow
    cpu_usage_columns = sum(1 for f in schema if (f.metadata or {}).get(b"metric") == b"cpu_usage")
    cores = {"c16.parquet": 16, "AB_base.parquet": 8}[recording]
    at = format_time(oracle.last_s + 0.5)

    assert oracle.query("sum(cpu_cores)", at)["data"]["result"][0]["value"][1] == str(cores)
    assert oracle.query("count(cpu_usage)", at)["data"]["result"][0]["value"][1] == str(cpu_usage_columns)
    everything = oracle.server.api("series", {"match[]": '{__name__=~".+"}', "start": format_time(oracle.first_s),
                                              "end": format_time(oracle.last_s)})
    assert len(everything["data"]) == oracle.export.series



def test_the_comparison_notices_every_kind_of_difference(prometheus_for):
    oracle = prometheus_for("c16.parquet")
    expr = "rate(network_bytes[1m])"
    answer = oracle_answer(oracle.query_range(expr, oracle.first_s + 60.5, oracle.first_s + 90.5, "15s"), expr)
    assert len(answer["result"]) == 2 and diff_results(answer, answer) == []

    altered = json.loads(json.dumps(answer))
    first = altered["result"][0]["values"]
    first[0][1] = repr(float(first[0][1]) * (1 + 1e-6))  # a value off by a millionth
    first.pop()  # a point lost
    altered["result"].pop()  # a series lost
    problems = diff_results(altered, answer)

    assert len(problems) == 3, problems
    assert sum(": rezgen " in p and ", prometheus " in p for p in problems) == 1  # the value
    assert sum("missing series" in p for p in problems) == 1
    assert sum("missing point" in p for p in problems) == 1
