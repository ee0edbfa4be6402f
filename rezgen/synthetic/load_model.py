"""The load model behind the synthetic recording (`rezgen.synthetic.sample`): per-row driving signals of a host.

A web service's demand follows a daily wave with bursts, idle spells and latency spikes; every metric family of
the sample derives its values from these few signals (plus the shared generator), so related series move
together. The helpers here draw from the generator in a fixed order: the same seed gives the same signals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rezgen.store.histogram import Layout


@dataclass
class Host:
    """Per-row driving signals for the whole recording (small: a few floats per row and CPU)."""

    timestamps: np.ndarray  # ns
    dt: np.ndarray  # seconds since the previous row (one interval for the first)
    t: np.ndarray  # seconds since the first row
    load: np.ndarray  # 0..1 demand on the web service
    slow_load: np.ndarray  # the same over minutes, for memory
    busy: np.ndarray  # (rows, cpus) busy fraction of each CPU
    user: np.ndarray  # user share of busy time
    net: np.ndarray  # 0..1 network demand
    spike: np.ndarray  # ≥ 1: latency multiplier
    writeback: np.ndarray  # 0..1 periodic dirty-page flushing
    trim: np.ndarray  # 0/1 while fstrim runs
    session: np.ndarray  # CPU share of the user session (0 before it starts)
    durations: np.ndarray  # ns the agent spent sampling


def simulate_host(rng: np.random.Generator, rows: int, cpus: int, interval_ms: int, start_ns: int) -> Host:
    """The driving signals of `rows` rows, one every `interval_ms` from `start_ns`, for a host with `cpus` CPUs."""
    interval = interval_ms / 1000
    # The agent samples a little after each tick: a few ms late at 1 s, proportionally less at shorter intervals.
    late = np.minimum(rng.gamma(2.0, 0.0004, rows), 0.004) * min(1.0, interval)
    timestamps = start_ns + np.rint((np.arange(rows) * interval + late) * 1e9).astype(np.int64)
    dt = np.diff(timestamps, prepend=timestamps[0] - interval_ms * 10**6) / 1e9
    t = (timestamps - timestamps[0]) / 1e9
    span = max(float(t[-1]), interval)
    hours = ((timestamps / 1e9) % 86_400) / 3600
    wave = 0.5 - 0.5 * np.cos(2 * np.pi * (hours - 4) / 24)  # quietest at 04:00 UTC, busiest at 16:00
    bursts = pulses(rng, t, rng.poisson(span / 180) + 1, (15, 90), (0.2, 0.5))
    idle = np.minimum(pulses(rng, t, 1 + int(span // 1800), (30, 120), (1, 1)), 1)
    spike = 1 + pulses(rng, t, 1 + int(span // 7200), (4, 15), (9, 39))
    noise = smooth(rng.normal(0, 0.05, rows), 7)
    load = np.clip(0.12 + 0.3 * wave + smooth(bursts, 5) + noise, 0.02, 0.95) * (1 - 0.85 * smooth(idle, 5))
    weights = rng.uniform(0.75, 1.15, cpus)
    busy = np.clip(load[:, None] * weights + smooth(rng.normal(0, 0.04, (rows, cpus)), 5) + 0.01, 0.005, 0.97)
    user = np.clip(0.72 + smooth(rng.normal(0, 0.03, rows), 9), 0.5, 0.9)
    net = np.clip(0.1 + 0.9 * load**1.2 + smooth(rng.normal(0, 0.03, rows), 5), 0.01, 1.0)
    writeback = np.where(t % 30 < 3, 1.0, 0.0)  # the kernel flushes dirty pages every 30 s
    trim = pulses(rng, t, 1, (15, 25), (1, 1))
    session_start = rng.uniform(0.3, 0.5) * span
    session = np.where(t >= session_start, 0.06 + 0.04 * np.cos(t / 40), 0.0)
    durations = np.rint(rng.gamma(2.0, 250e3, rows) * (1 + load))
    return Host(timestamps, dt, t, load, smooth(load, 121), busy, user, net, spike, writeback, trim, session,
                durations)


def pulses(rng: np.random.Generator, t: np.ndarray, count: int, lengths: tuple[float, float],
           heights: tuple[float, float]) -> np.ndarray:
    """Sum of `count` rectangular pulses at random times (kept inside the recording) with random length and height."""
    span = float(t[-1])
    starts = rng.uniform(0.1, 0.9, count) * span
    ends = starts + rng.uniform(*lengths, count)
    edges = np.zeros(len(t) + 1)
    height = rng.uniform(*heights, count)
    np.add.at(edges, np.searchsorted(t, starts), height)
    np.add.at(edges, np.searchsorted(t, ends), -height)
    return np.cumsum(edges[:-1])


def smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centered moving average along the first axis; near the ends it averages over the rows that exist."""
    sums = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
    rows = np.arange(len(x))
    low, high = np.maximum(rows - width // 2, 0), np.minimum(rows + width // 2 + 1, len(x))
    return ((sums[high] - sums[low]).T / (high - low)).T


def cpu_time(busy: np.ndarray, user: np.ndarray, dt: np.ndarray) -> dict[str, np.ndarray]:
    """ns of CPU time per state in each row."""
    return {"user": busy * user * dt * 1e9, "system": busy * (1 - user) * dt * 1e9}


def cpu_cycles(busy: np.ndarray, dt: np.ndarray, load: np.ndarray) -> np.ndarray:
    return busy * dt * 3.1e9 * (1 - 0.05 * load)  # clocks drop a little when every core is busy


def ipc(load: np.ndarray) -> np.ndarray:
    return 1.9 - 0.9 * load  # cores compete for caches and memory bandwidth


def latency_counts(
    rng: np.random.Generator, layout: Layout, events: np.ndarray, median: np.ndarray, tail: float, ratio: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row bucket counts (in `layout`) of `events` (expected) observations: a log-logistic body around `median`
    plus a `tail` share `ratio` times slower. Only buckets that can get any are drawn; returns (counts, bucket ids)."""
    low = layout.index_of(max(1, int(median.min() / 32)))
    high = layout.index_of(int(median.max() * ratio * 32)) + 1
    # Buckets low..high-1 are contiguous: bucket j covers [edge j, edge j+1).
    edges = np.log(np.append(np.maximum(layout.lows[low:high], 0.5), layout.highs[high - 1] + 1))
    centre = np.log(median)[:, None]

    def mass(shift: float, shape: float) -> np.ndarray:
        # Logistic CDF in log space, written with tanh so that it cannot overflow.
        return np.diff(0.5 * np.tanh(shape * (edges - centre - shift) / 2), axis=1)

    share = (1 - tail) * mass(0.0, 3.0) + tail * mass(np.log(ratio), 1.5)
    return rng.poisson(events[:, None] * share), np.arange(low, high)
