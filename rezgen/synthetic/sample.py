"""A deterministic synthetic Rezolus host recording, for demos, tests and benchmarks.

The host runs a web service whose load follows a daily wave with bursts, idle spells and one or more latency
spikes; a user session (its own cgroup) starts part-way through (these driving signals are `load_model`'s).
Metric names, labels, units and types follow what the Rezolus agent records; related series agree with each other
as in real data (`syscall` increases by exactly the count of `syscall_latency`, `blockio_bytes` is the sum of
`blockio_size`, per-CPU busy time stays below one core). Everything derives from one seeded generator, so the
same arguments give the same bytes."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from rezgen.recording.writer import MAX_ROW_GROUP_SIZE, RecordingWriter
from rezgen.store.histogram import Layout
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels
from rezgen.synthetic.load_model import Host, cpu_cycles, cpu_time, ipc, latency_counts, simulate_host, smooth

START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
AGENT_VERSION = "5.17.0"
UPTIME_S = 86_400  # counters start as if the agent had been running for a day
H2 = Layout(3, 64)  # the agent's histogram layout
MEMORY_TOTAL = 8_137_504 * 4096
GIB = 2**30

# op: (calls per second at full load, median latency in ns); the latency of the I/O-bound ones suffers in spikes
SYSCALLS = {
    "read": (6000, 1800), "write": (3500, 3000), "poll": (1200, 40_000), "socket": (900, 4000), "lock": (1500, 6000),
    "time": (2500, 250), "sleep": (150, 1_100_000), "memory": (400, 2500), "filesystem": (500, 7000),
    "event": (600, 25_000), "ipc": (30, 9000), "process": (12, 60_000), "query": (150, 1200), "timer": (200, 1500),
    "yield": (80, 900), "other": (250, 2000),
}
SPIKY_SYSCALLS = frozenset({"read", "write", "poll", "socket", "lock", "filesystem"})
# kind: (per-CPU events per second, idle and busy, and ns per event)
SOFTIRQS = {"timer": (50, 250, 1500), "hrtimer": (5, 40, 800), "sched": (20, 300, 3000), "rcu": (15, 120, 1200)}
# op: (median latency in ns, {request size in bytes: share})
BLOCKIO = {
    "read": (180_000, {4096: 0.45, 8192: 0.15, 16384: 0.1, 65536: 0.15, 131072: 0.15}),
    "write": (60_000, {4096: 0.3, 8192: 0.1, 32768: 0.1, 131072: 0.2, 524288: 0.2, 1048576: 0.1}),
    "flush": (1_200_000, {0: 1.0}),
    "discard": (800_000, {1048576: 0.3, 4194304: 0.7}),
}
# (id, name, instructions per cycle relative to the host)
CGROUPS = (
    ("1", "/", 0.8), ("17", "/system.slice/sshd.service", 1.1), ("41", "/system.slice/webapp.service", 1.0),
    ("49", "/system.slice/rezolus.service", 1.4), ("88", "/user.slice/user-1000.slice/session-3.scope", 1.6),
)
DESCRIPTIONS = {
    "cpu_usage": "CPU time spent in each state", "cpu_cores": "Logical CPUs that are online",
    "cpu_cycles": "Elapsed CPU cycles", "cpu_instructions": "Instructions retired",
    "cpu_migrations": "Tasks migrated from or to each CPU", "network_bytes": "Bytes moved over the network",
    "network_packets": "Packets moved over the network", "network_drop": "Packets dropped in the network stack",
    "tcp_retransmit": "TCP packets retransmitted",
    "tcp_packet_latency": "Time from a socket becoming readable until userspace reads it",
    "scheduler_runqueue_latency": "Time tasks waited in the runqueue",
    "scheduler_offcpu": "Time tasks spent off-CPU", "scheduler_running": "Time tasks ran on-CPU before switching",
    "scheduler_context_switch": "Involuntary context switches", "scheduler_runqueue_wait": "Runqueue time per CPU",
    "syscall": "System calls by class", "syscall_latency": "System call latency by class",
    "softirq": "Soft interrupts handled", "softirq_time": "Time spent in soft interrupt handlers",
    "blockio_bytes": "Bytes moved by block device requests", "blockio_operations": "Completed block device requests",
    "blockio_latency": "Block device request latency", "blockio_size": "Block device request size",
    "memory_total": "Total memory", "memory_available": "Memory available for allocation",
    "memory_free": "Memory not in use", "memory_buffers": "Memory used for buffers",
    "memory_cached": "Memory used by the page cache", "cgroup_cpu_usage": "CPU time per cgroup and state",
    "cgroup_syscall": "System calls per cgroup", "cgroup_cpu_cycles": "CPU cycles per cgroup",
    "cgroup_cpu_instructions": "Instructions retired per cgroup", "rezolus_cpu_usage": "CPU time used by Rezolus",
    "rezolus_memory_usage_resident_set_size": "Resident memory of Rezolus",
}


def generate_sample(
    path: str | os.PathLike[str],
    *,
    duration_s: int = 600,
    cpus: int = 8,
    interval_ms: int = 1000,
    seed: int = 0,
    start_ns: int | None = None,
    scale: dict[str, float] | None = None,
) -> None:
    """Write a synthetic recording of `duration_s` seconds (one row per interval, both ends included).

    `scale` multiplies the named counters' increases (or gauges' values) by a factor: a known change injected into
    an otherwise identical recording (the same seed), for trying and testing `rezgen diff`."""
    if duration_s < 1 or cpus < 1 or interval_ms < 1:
        raise ValueError("duration_s, cpus and interval_ms must be positive")
    rng = np.random.default_rng(seed)
    rows = duration_s * 1000 // interval_ms + 1
    host = simulate_host(rng, rows, cpus, interval_ms, START_NS if start_ns is None else start_ns)
    out = _Columns(UPTIME_S * 1000 // interval_ms, scale or {})
    blocks = [slice(a, min(a + MAX_ROW_GROUP_SIZE, rows)) for a in range(0, rows, MAX_ROW_GROUP_SIZE)]
    first = _block(rng, host, blocks[0], out)  # the first block also settles the column list
    footer = {
        "systeminfo": _systeminfo(cpus),
        "per_source_metadata": {
            "rezolus": {"first_sample_ns": int(host.timestamps[0]), "last_sample_ns": int(host.timestamps[-1])}
        },
    }
    with RecordingWriter(path, out.columns, interval_ms=interval_ms, source="rezolus", version=AGENT_VERSION,
                         footer=footer) as writer:
        writer.write(host.timestamps[blocks[0]], first, host.durations[blocks[0]])
        for block in blocks[1:]:
            writer.write(host.timestamps[block], _block(rng, host, block, out), host.durations[block])


class _Columns:
    """One block's column values in a fixed order, plus the cumulative totals carried from block to block."""

    def __init__(self, uptime_rows: int, scale: dict[str, float] | None = None) -> None:
        self._scale = scale or {}
        self.columns: list[tuple[str, SeriesMeta]] = []
        self.values: list[np.ndarray] = []
        self._uptime_rows = uptime_rows  # rows the agent ran before the recording started
        self._totals: dict[SeriesKey, Any] = {}  # last cumulative value of each series

    def counter(
        self, metric: str, labels: dict[str, str], unit: str | None, deltas: np.ndarray, fresh: bool = False
    ) -> None:
        """`deltas`: increase per row; a `fresh` series starts at zero instead of with the agent's history."""
        key = SeriesKey(metric, make_labels(labels))
        deltas = np.rint(deltas * self._scale[metric] if metric in self._scale else deltas)
        start = self._totals.get(key, 0.0 if fresh else deltas.sum() * self._repeats(len(deltas)))
        total = start + np.cumsum(deltas)
        self._totals[key] = total[-1]
        if "id" in labels:  # the agent leaves out per-CPU and per-cgroup group members while they are zero
            total = np.where(total > 0, total, np.nan)
        self._add(SeriesMeta(key, Kind.COUNTER, unit, DESCRIPTIONS[metric]), labels, total)

    def gauge(self, metric: str, unit: str | None, values: np.ndarray) -> None:
        if metric in self._scale:
            values = values * self._scale[metric]
        self._add(SeriesMeta(SeriesKey(metric), Kind.GAUGE, unit, DESCRIPTIONS[metric]), {}, values)

    def histogram(
        self, metric: str, labels: dict[str, str], unit: str, counts: np.ndarray, buckets: np.ndarray
    ) -> None:
        """`counts[:, j]`: observations per row in bucket `buckets[j]`."""
        key = SeriesKey(metric, make_labels(labels))
        state = self._totals.get(key)
        if state is None:
            state = np.zeros(H2.buckets, dtype=np.uint64)
            state[buckets] = counts.sum(axis=0) * self._repeats(len(counts))
        dense = np.broadcast_to(state, (len(counts), H2.buckets)).copy()
        dense[:, buckets] += np.cumsum(counts, axis=0).astype(np.uint64)
        self._totals[key] = dense[-1]
        meta = SeriesMeta(key, Kind.HISTOGRAM, unit, DESCRIPTIONS[metric], H2.grouping_power, H2.max_value_power)
        self._add(meta, labels, dense)

    def _repeats(self, rows: int) -> int:
        """The agent's history before the first row: the first block repeated this many times. An integer factor
        keeps each counter equal to the total of its histogram."""
        return max(1, self._uptime_rows // rows)

    def _add(self, meta: SeriesMeta, labels: dict[str, str], values: np.ndarray) -> None:
        if len(self.values) == len(self.columns):  # only during the first block
            self.columns.append((_column_name(meta.key.metric, labels), meta))
        self.values.append(values)


def _column_name(metric: str, labels: dict[str, str]) -> str:
    """The 2025 agent's readable name: metric, then name/op/state/direction, other labels, and id last."""
    leading = ("name", "op", "state", "direction")
    parts = [labels[k] for k in leading if k in labels]
    parts += [labels[k] for k in sorted(labels) if k not in leading and k != "id"]
    return "/".join([metric, *parts, *([labels["id"]] if "id" in labels else [])])


def _block(rng: np.random.Generator, host: Host, rows: slice, out: _Columns) -> list[np.ndarray]:
    out.values = []
    for family in _FAMILIES:
        family(rng, host, rows, out)
    return out.values


def _cpu(rng: np.random.Generator, h: Host, r: slice, out: _Columns) -> None:
    busy, dt, load, spike = h.busy[r], h.dt[r, None], h.load[r, None], h.spike[r, None]
    usage = cpu_time(busy, h.user[r, None], dt)
    cycles = cpu_cycles(busy, dt, load)
    instructions = cycles * np.clip(ipc(load) + smooth(rng.normal(0, 0.05, busy.shape), 3), 0.4, 3.0)
    migrations = {direction: rng.poisson((4 + 60 * busy) * dt) for direction in ("from", "to")}
    switches = rng.poisson((30 + 900 * busy**2) * dt)
    waiting = busy**3 * 1.8e8 * np.sqrt(spike) * dt
    for c in range(busy.shape[1]):
        cpu = {"id": str(c)}
        for state, ns in usage.items():
            out.counter("cpu_usage", {**cpu, "state": state}, "nanoseconds", ns[:, c])
        out.counter("cpu_cycles", cpu, "cycles", cycles[:, c])
        out.counter("cpu_instructions", cpu, "instructions", instructions[:, c])
        for direction, moved in migrations.items():
            out.counter("cpu_migrations", {**cpu, "direction": direction}, None, moved[:, c])
        out.counter("scheduler_context_switch", {**cpu, "kind": "involuntary"}, None, switches[:, c])
        out.counter("scheduler_runqueue_wait", cpu, "nanoseconds", waiting[:, c])
    out.gauge("cpu_cores", None, np.full(len(busy), busy.shape[1], dtype=np.int64))


def _softirq(rng: np.random.Generator, h: Host, r: slice, out: _Columns) -> None:
    busy, dt, net = h.busy[r], h.dt[r, None], h.net[r, None]
    cpus = busy.shape[1]
    queues = max(1, cpus // 2)  # the NIC's receive queues interrupt the first half of the CPUs
    rates = {kind: idle + (full - idle) * busy for kind, (idle, full, _) in SOFTIRQS.items()}
    rates["net_rx"] = np.where(np.arange(cpus) < queues, 12_000 / queues * net, 0.0)
    rates["net_tx"] = np.broadcast_to(600 / cpus * net, busy.shape)
    rates["tasklet"] = np.where(np.arange(cpus) == 0, 2.0, 0.0) * np.ones_like(busy)
    cost = {**{kind: ns for kind, (_, _, ns) in SOFTIRQS.items()}, "net_rx": 4000, "net_tx": 1000, "tasklet": 2000}
    for c in range(cpus):
        for kind in sorted(rates):
            if not rates[kind][:, c].any():
                continue  # never raised on this CPU, so the agent never reports it
            events = rng.poisson(rates[kind][:, c] * dt[:, 0])
            out.counter("softirq", {"id": str(c), "kind": kind}, "interrupts", events)
            spent = events * cost[kind] * (1 + 0.5 * h.load[r]) * rng.lognormal(0, 0.1, len(events))
            out.counter("softirq_time", {"id": str(c), "kind": kind}, "nanoseconds", spent)


def _network(rng: np.random.Generator, h: Host, r: slice, out: _Columns) -> None:
    dt, net, surge = h.dt[r], h.net[r], h.spike[r] - 1
    for direction, bandwidth, size in (("receive", 1.1e8, 600), ("transmit", 1.6e8, 1300)):
        nbytes = bandwidth * net * dt * rng.lognormal(0, 0.05, len(dt))
        out.counter("network_bytes", {"direction": direction}, "bytes", nbytes)
        out.counter("network_packets", {"direction": direction}, "packets", nbytes / size)
    out.counter("network_drop", {}, "packets", rng.poisson((0.02 + 3 * surge) * dt))
    out.counter("tcp_retransmit", {}, "packets", rng.poisson((4 * net + 5 * surge) * dt))
    median = 12_000 * (1 + 1.5 * h.load[r]) * h.spike[r] ** 0.7
    segments = 1.1e8 / 600 * 0.9 * net * dt  # most received packets are TCP
    out.histogram("tcp_packet_latency", {}, "nanoseconds", *latency_counts(rng, H2, segments, median, 0.03, 15))


def _scheduler(rng: np.random.Generator, h: Host, r: slice, out: _Columns) -> None:
    busy, load = h.busy[r].mean(axis=1), h.load[r]
    switches = h.busy.shape[1] * (400 + 4000 * busy) * h.dt[r]
    for metric, median, tail, ratio in (
        ("scheduler_runqueue_latency", 3000 * (1 + 8 * load**2) * h.spike[r], 0.04, 30),
        ("scheduler_running", 400_000 * (0.5 + 2 * load), 0.05, 10),
        ("scheduler_offcpu", 4_000_000 * (1.6 - load), 0.08, 40),
    ):
        out.histogram(metric, {}, "nanoseconds", *latency_counts(rng, H2, switches, median, tail, ratio))


def _syscalls(rng: np.random.Generator, h: Host, r: slice, out: _Columns) -> None:
    load = h.load[r]
    for op, (rate, median) in SYSCALLS.items():
        slowdown = (1 + 0.6 * load) * (h.spike[r] ** 0.8 if op in SPIKY_SYSCALLS else 1)
        counts, buckets = latency_counts(rng, H2, rate * (0.15 + load) * h.dt[r], median * slowdown, 0.02, 20)
        out.counter("syscall", {"op": op}, "syscalls", counts.sum(axis=1))
        out.histogram("syscall_latency", {"op": op}, "nanoseconds", counts, buckets)


def _blockio(rng: np.random.Generator, h: Host, r: slice, out: _Columns) -> None:
    load, dt = h.load[r], h.dt[r]
    rates = {"read": 300 * (0.2 + load), "write": 80 + 1500 * h.writeback[r], "flush": 2 + 40 * h.writeback[r],
             "discard": 400 * h.trim[r]}
    for op, (median, sizes) in BLOCKIO.items():
        latency, buckets = latency_counts(rng, H2, rates[op] * dt, median * (1 + load), 0.02, 8)
        ops = latency.sum(axis=1)
        # Every request has one size and one latency: split the same requests over the sizes.
        by_size = rng.multinomial(ops, list(sizes.values()))
        out.counter("blockio_operations", {"op": op}, "operations", ops)
        out.counter("blockio_bytes", {"op": op}, "bytes", by_size @ np.array(list(sizes), dtype=np.float64))
        out.histogram("blockio_latency", {"op": op}, "nanoseconds", latency, buckets)
        out.histogram("blockio_size", {"op": op}, "bytes", by_size, np.array([H2.index_of(s) for s in sizes]))


def _memory(rng: np.random.Generator, h: Host, r: slice, out: _Columns) -> None:
    t, slow = h.t[r], h.slow_load[r]
    anon = 2.5 * GIB + 9 * GIB * slow + 1.5 * GIB * (h.session[r] > 0) + 40e6 * t / 3600
    buffers = 180e6 + 60e6 * slow
    cached = 5 * GIB + 8 * GIB * (1 - np.exp(-t / 7200)) + 0.3 * GIB * np.sin(t / 300) ** 2
    unused = MEMORY_TOTAL - 0.7 * GIB - anon - buffers  # the kernel keeps 0.7 GiB for itself
    cached = np.minimum(cached, unused - 0.6 * GIB)  # reclaim keeps 0.6 GiB free
    free = unused - cached
    pages = {"memory_total": np.full(len(t), MEMORY_TOTAL), "memory_available": free + 0.85 * cached + buffers,
             "memory_free": free, "memory_buffers": buffers, "memory_cached": cached}
    for metric, value in pages.items():
        out.gauge(metric, "bytes", _pages(value))
    rss = 38e6 + 6e6 * (1 - np.exp(-t / 600)) + rng.integers(0, 64, len(t)) * 4096
    out.gauge("rezolus_memory_usage_resident_set_size", "bytes", _pages(rss))


def _pages(values: np.ndarray) -> np.ndarray:
    return (np.asarray(values) // 4096).astype(np.int64) * 4096


def _cgroups(rng: np.random.Generator, h: Host, r: slice, out: _Columns) -> None:
    """The agent's own CPU time, and the host's CPU time, cycles and syscalls split over the cgroups."""
    busy, dt, load = h.busy[r].sum(axis=1), h.dt[r], h.load[r]
    agent = {"user": (2.2e6 + 1.5e6 * load) * dt, "system": (1.6e6 + 1.0e6 * load) * dt}
    for state, ns in agent.items():
        out.counter("rezolus_cpu_usage", {"state": state}, "nanoseconds", ns)
    usage = cpu_time(busy, h.user[r], dt)
    shares = {
        "1": np.full(len(dt), 0.03),
        "17": 0.002 + 0.01 * (h.session[r] > 0),  # sshd works for the user's session
        "49": (agent["user"] + agent["system"]) / (busy * dt * 1e9),
        "88": h.session[r],
    }
    shares["41"] = 1 - sum(shares.values())  # the web service gets the rest
    cycles = cpu_cycles(busy, dt, load)
    for cgroup, name, ipc_factor in CGROUPS:
        labels, share, fresh = {"id": cgroup, "name": name}, shares[cgroup], cgroup == "88"  # 88 starts late
        for state, ns in usage.items():
            out.counter("cgroup_cpu_usage", {**labels, "state": state}, "nanoseconds", ns * share, fresh)
        out.counter("cgroup_cpu_cycles", labels, "cycles", cycles * share, fresh)
        out.counter("cgroup_cpu_instructions", labels, "instructions", cycles * share * ipc(load) * ipc_factor, fresh)
        for op, (rate, _) in SYSCALLS.items():
            calls = rng.poisson(rate * (0.15 + load) * share * dt)
            out.counter("cgroup_syscall", {**labels, "op": op}, "syscalls", calls, fresh)


def _systeminfo(cpus: int) -> dict:
    return {
        "os": "linux", "arch": "x86_64", "hostname": "rezgen-sample-01",
        "kernel": "Linux version 6.8.0-1021-aws (buildd@lcy02-amd64-040) #23-Ubuntu SMP Mon Jan  5 10:12:31 UTC 2026",
        "cpu_model": "AMD EPYC 9R14", "cpu_vendor": "AuthenticAMD", "cpus": cpus, "cores": cpus, "packages": 1,
        "smt": False, "memory_total_bytes": MEMORY_TOTAL, "numa_nodes": 1,
        "cpu_topology": [{"cpu": c, "core": c, "die": 0, "package": 0, "numa_node": 0} for c in range(cpus)],
        "caches": [
            {"level": "L1d", "size": "32K", "instances": cpus, "shared_cpus": [[c] for c in range(cpus)]},
            {"level": "L2", "size": "1024K", "instances": cpus, "shared_cpus": [[c] for c in range(cpus)]},
            {"level": "L3", "size": "32768K", "instances": 1, "shared_cpus": [list(range(cpus))]},
        ],
        "nics": [{"name": "ens5", "speed": None, "numa_node": 0, "driver": "ena"}],
        "gpus": [],
    }


_FAMILIES: tuple[Callable[[np.random.Generator, Host, slice, _Columns], None], ...] = (
    _cpu, _softirq, _network, _scheduler, _syscalls, _blockio, _memory, _cgroups,
)
