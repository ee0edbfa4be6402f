"""Small synthetic Rezolus recordings for the site tests, written with `RecordingWriter`.

- `write_two_hosts`: what `rezolus parquet combine` makes of two agents. Every column carries `node=<host>` and
  `source=rezolus` and is named `<host>::<n>`, so the same series of the two hosts differ only in `node`; the
  footer lists the nodes under `per_source_metadata.rezolus`. Host `alpha` has 4 CPUs at about 70 % busy, host `beta`
  2 CPUs at about 20 %, so a chart that mixes the hosts up cannot pass for either. The file has a 20 s hole
  (no rows at all), `beta` misses a few samples of its own (null cells), and one of `alpha`'s CPU counters
  restarts from zero.
- `write_hostile_cgroups`: one agent whose cgroup `name` labels are HTML/script payloads (`HOSTILE_NAMES`).
- `write_recording`: the shared low-level helper (columns of per-row values → a file).

Values are deterministic (seeded), timestamps are jittered by a few ms like a real agent's, and the first one is
not on a whole millisecond.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rezgen.recording.writer import RecordingWriter
from rezgen.store.histogram import Layout
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels

NS = 1_000_000_000
START_NS = 1_767_225_600 * NS + 1_234_567  # 2026-01-01T00:00:00.001234567Z: not on a whole millisecond
INTERVAL_MS = 1000
H2 = Layout(3, 64)  # the agent's histogram layout

HOSTS = {"alpha": 4, "beta": 2}  # host -> CPUs
BUSY = {"alpha": 0.7, "beta": 0.2}  # host -> typical busy fraction of each CPU
CGROUPS = {
    "alpha": (("1", "/"), ("12", "/system.slice/web.service"), ("13", "/system.slice/db.service")),
    "beta": (("1", "/"), ("21", "/system.slice/batch.service")),
}
SYSCALL_OPS = ("read", "write")

# The markup payloads: each sets window.__xss or opens a dialog if it is ever parsed as HTML.
HOSTILE_NAMES = (
    "<img src=x onerror=alert(1)>",
    '<img src=x onerror="window.__xss=1">',
    "</script><script>window.__xss=2;alert(2)</script>",
)


@dataclass
class Written:
    path: Path
    timestamps: np.ndarray  # ns of the rows in the file


class Columns:
    """Columns under construction: per-row values (NaN = no sample) with their series description."""

    def __init__(self, common: dict[str, str] | None = None, prefix: str = "") -> None:
        self.common = common or {}
        self.prefix = prefix
        self.columns: list[tuple[str, SeriesMeta]] = []
        self.values: list[np.ndarray] = []

    def _add(self, kind: Kind, metric: str, labels: dict[str, str], unit: str | None, values: np.ndarray,
             layout: Layout | None = None) -> None:
        key = SeriesKey(metric, make_labels({**labels, **self.common}))
        meta = SeriesMeta(key, kind, unit, grouping_power=layout and layout.grouping_power,
                          max_value_power=layout and layout.max_value_power)
        name = f"{self.prefix}{len(self.columns)}" if self.prefix else "/".join([metric, *labels.values()])
        self.columns.append((name, meta))
        self.values.append(values)

    def counter(self, metric: str, labels: dict[str, str], unit: str | None, totals: np.ndarray) -> None:
        self._add(Kind.COUNTER, metric, labels, unit, np.asarray(totals, dtype=np.float64))

    def gauge(self, metric: str, labels: dict[str, str], unit: str | None, values: np.ndarray) -> None:
        self._add(Kind.GAUGE, metric, labels, unit, np.asarray(values, dtype=np.float64))

    def histogram(self, metric: str, labels: dict[str, str], unit: str, cumulative: np.ndarray) -> None:
        self._add(Kind.HISTOGRAM, metric, labels, unit, cumulative, H2)


def timestamps(rng: np.random.Generator, rows: int, hole: tuple[int, int] | None = None) -> np.ndarray:
    """Row times: one per interval, each up to 4 ms late; `hole` = (first row, rows) left out of the file."""
    ticks = np.arange(rows + (hole[1] if hole else 0))
    if hole:
        ticks = np.delete(ticks, np.arange(hole[0], hole[0] + hole[1]))
    late = rng.integers(0, 4_000_000, len(ticks))
    late[0] = 0
    return START_NS + ticks * INTERVAL_MS * 1_000_000 + late


def write_recording(path: Path, stamps: np.ndarray, parts: Iterable[Columns], footer: dict | None = None,
                    source: str = "rezolus") -> Written:
    columns = [c for part in parts for c in part.columns]
    values = [v for part in parts for v in part.values]
    with RecordingWriter(path, columns, interval_ms=INTERVAL_MS, source=source, footer=footer) as writer:
        writer.write(stamps, values)
    return Written(Path(path), stamps)


def _cpu_usage(rng: np.random.Generator, out: Columns, stamps: np.ndarray, cpus: int, busy: float,
               missing: np.ndarray | None = None, reset: tuple[int, int] | None = None) -> np.ndarray:
    """cpu_usage{id,state} and cpu_cores; returns the busy ns per row and CPU (for the cgroups)."""
    dt = np.diff(stamps, prepend=stamps[0] - INTERVAL_MS * 1_000_000)
    fraction = np.clip(busy + rng.normal(0, 0.05, (len(stamps), cpus)), 0.01, 0.99)
    used = fraction * dt[:, None]
    for cpu in range(cpus):
        for state, share in (("user", 0.7), ("system", 0.3)):
            totals = 10**12 * (cpu + 1) + np.cumsum(np.rint(used[:, cpu] * share))
            if reset is not None and reset[0] == cpu and state == "user":
                totals[reset[1]:] -= totals[reset[1] - 1] - 1000  # the agent restarted: the counter starts over
            if missing is not None:
                totals[missing] = np.nan
            out.counter("cpu_usage", {"id": str(cpu), "state": state}, "nanoseconds", totals)
    cores = np.full(len(stamps), float(cpus))
    if missing is not None:
        cores[missing] = np.nan
    out.gauge("cpu_cores", {}, None, cores)
    return used


def _syscalls(rng: np.random.Generator, out: Columns, rows: int, rate: float) -> None:
    for op, median in zip(SYSCALL_OPS, (2_000, 9_000)):
        observed = rng.poisson(rate, rows)
        counts = np.zeros((rows, H2.buckets))
        spread = [H2.index_of(median // 2), H2.index_of(median), H2.index_of(median * 8)]
        shares = rng.multinomial(observed, [0.3, 0.65, 0.05])
        for j, bucket in enumerate(spread):
            counts[:, bucket] += shares[:, j]
        out.histogram("syscall_latency", {"op": op}, "nanoseconds", np.cumsum(counts, axis=0) + 10**6)
        out.counter("syscall", {"op": op}, "syscalls", np.cumsum(observed) + H2.buckets * 10**6)


def _cgroups(out: Columns, used: np.ndarray, cgroups: tuple[tuple[str, str], ...], weights: Iterable[float]) -> None:
    busy = used.sum(axis=1)
    for (cgroup, name), weight in zip(cgroups, weights):
        for state, share in (("user", 0.7), ("system", 0.3)):
            out.counter("cgroup_cpu_usage", {"id": cgroup, "name": name, "state": state}, "nanoseconds",
                        np.cumsum(np.rint(busy * weight * share)))


def write_two_hosts(path: Path, rows: int = 301, seed: int = 1) -> Written:
    """A combined recording of hosts alpha (4 CPUs, busy) and beta (2 CPUs, mostly idle); see the module doc."""
    rng = np.random.default_rng(seed)
    stamps = timestamps(rng, rows, hole=(150, 20))
    parts, members = [], {}
    for host, cpus in HOSTS.items():
        out = Columns({"node": host, "source": "rezolus"}, prefix=f"{host}::")
        missing = np.isin(np.arange(len(stamps)), [40, 41, 42, 200]) if host == "beta" else None
        reset = (3, 100) if host == "alpha" else None
        used = _cpu_usage(rng, out, stamps, cpus, BUSY[host], missing, reset)
        _syscalls(rng, out, len(stamps), 4000 if host == "alpha" else 300)
        cgroups = CGROUPS[host]
        _cgroups(out, used, cgroups, [0.05] + [0.95 / (len(cgroups) - 1)] * (len(cgroups) - 1))
        parts.append(out)
        members[host] = {"node": host, "version": "5.17.0", "systeminfo": {"hostname": host, "cpus": cpus}}
    footer = {"per_source_metadata": {"rezolus": {"first_sample_ns": int(stamps[0]),
                                                  "last_sample_ns": int(stamps[-1]), **members}}}
    return write_recording(path, stamps, parts, footer, source='["rezolus"]')


def write_hostile_cgroups(path: Path, rows: int = 121, seed: int = 2) -> Written:
    """One 2-CPU agent whose busiest cgroups are named with the `HOSTILE_NAMES` markup (plus one ordinary one)."""
    rng = np.random.default_rng(seed)
    stamps = timestamps(rng, rows)
    out = Columns()
    used = _cpu_usage(rng, out, stamps, 2, 0.5)
    cgroups = (*((str(10 + i), name) for i, name in enumerate(HOSTILE_NAMES)), ("1", "/"))
    _cgroups(out, used, cgroups, (0.3, 0.3, 0.3, 0.1))
    return write_recording(path, stamps, [out], source="rezolus")


def write_nodes(path: Path, nodes: Iterable[str], rows: int = 31) -> Written:
    """A tiny combined recording with the given node names (one 1-CPU agent each)."""
    rng = np.random.default_rng(3)
    stamps = timestamps(rng, rows)
    parts = []
    for node in nodes:
        out = Columns({"node": node, "source": "rezolus"}, prefix=f"{len(parts)}::")
        _cpu_usage(rng, out, stamps, 1, 0.5)
        parts.append(out)
    return write_recording(path, stamps, parts, source='["rezolus"]')
