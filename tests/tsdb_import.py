"""A real VictoriaMetrics holding a recording, for the TSDB backend's tests: the recording's data written into it
the way issue 11's remote write names it.

Counters and gauges go in under their metric name with their labels plus `node`; a histogram becomes cumulative
`NAME_bucket{le=...}` series (and `le="+Inf"`), `NAME_count`, and per-interval percentile gauges
`NAME{quantile="0.5|0.9|0.99|0.999|0.9999"}` (the Rezolus rule over each interval's bucket deltas; an interval
without observations gets no gauge sample). Buckets outside the range the series of a metric ever use are left
out (their cumulative counts say nothing the written ones do not; all series of a metric share one set of `le`
bounds, so that sums across series by `le` stay whole). Data goes in through VictoriaMetrics's own JSON import.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import requests
from prometheus_oracle import free_port
from shared import unavailable

from rezgen.recording.reader import Recording
from rezgen.store.histogram import Layout, quantiles
from rezgen.store.store import HistogramSeries

QUANTILES = (0.5, 0.9, 0.99, 0.999, 0.9999)


def binary() -> str | None:
    return shutil.which("victoria-metrics")


class VictoriaMetrics:
    """`victoria-metrics` on a free loopback port with its data in `data_dir`; a context manager."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> VictoriaMetrics:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        exe = binary()
        if exe is None:
            unavailable("victoria-metrics is not installed (apt-get install victoria-metrics)")
            return
        self.process = subprocess.Popen(
            [exe, f"-storageDataPath={self.data_dir}", f"-httpListenAddr=127.0.0.1:{self.port}",
             "-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=ERROR"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"victoria-metrics exited with {self.process.returncode}")
            time.sleep(0.1)
        self.stop()
        raise AssertionError("victoria-metrics did not become healthy")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def load(self, lines: Iterator[dict]) -> int:
        """Import JSON lines (`/api/v1/import`) and make them searchable; how many samples went in."""
        samples = 0
        batch: list[bytes] = []

        def send() -> None:
            requests.post(f"{self.url}/api/v1/import", data=b"\n".join(batch), timeout=120).raise_for_status()
            batch.clear()

        for line in lines:
            samples += len(line["values"])
            batch.append(json.dumps(line).encode())
            if len(batch) >= 500:
                send()
        if batch:
            send()
        requests.get(f"{self.url}/internal/force_flush", timeout=60).raise_for_status()
        return samples


def backfill(data_dir: Path, lines: Iterator[dict]) -> int:
    """Write import lines into a Prometheus data dir as TSDB blocks (`promtool tsdb create-blocks-from
    openmetrics`), for a Prometheus started on it afterwards; how many samples went in."""
    families: dict[str, list[str]] = {}  # OpenMetrics keeps a metric's samples together
    samples = 0
    for line in lines:
        metric = dict(line["metric"])
        name = metric.pop("__name__")
        labels = ",".join(f'{k}="{_escaped(v)}"' for k, v in sorted(metric.items()))
        rows = families.setdefault(name, [])
        for value, ms in zip(line["values"], line["timestamps"]):
            rows.append(f"{name}{{{labels}}} {float(value)!r} {ms / 1000:.3f}")
        samples += len(line["values"])
    text = data_dir.parent / "backfill.om"
    text.write_text("".join(row + "\n" for rows in families.values() for row in rows) + "# EOF\n")
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(text), str(data_dir)],
                   check=True, capture_output=True, timeout=600)
    text.unlink()
    return samples


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _line(name: str, labels: dict[str, str], times_ns: np.ndarray, values: np.ndarray) -> dict:
    keep = ~np.isnan(values)
    return {"metric": {"__name__": name, **labels}, "values": values[keep].tolist(),
            "timestamps": (times_ns[keep] // 1_000_000).tolist()}


def recording_lines(recording: Recording, node: str, *, shift_ns: int = 0, scale: float = 1.0,
                    metrics: set[str] | None = None, grouping_power: int | None = None) -> Iterator[dict]:
    """The recording's series as import lines for host `node` (times moved by `shift_ns`; counters and gauges
    multiplied by `scale`, to make hosts that differ), optionally only the `metrics` named, and buckets
    downsampled to `grouping_power` (as remote write's `--histogram-grouping-power`; None: as recorded)."""
    spans: dict[str, tuple[int, int]] = {}  # a histogram metric's used buckets, over all its series
    for series in recording.store:
        if isinstance(series, HistogramSeries) and (metrics is None or series.key.metric in metrics):
            used = np.flatnonzero(_counts(series).any(axis=0))
            if len(used):
                lo, hi = spans.get(series.key.metric, (int(used[0]), int(used[-1])))
                spans[series.key.metric] = (min(lo, int(used[0])), max(hi, int(used[-1])))
    for series in recording.store:
        name = series.key.metric
        if metrics is not None and name not in metrics:
            continue
        labels = {k: v for k, v in series.key.labels if k != "node"} | {"node": node}
        if isinstance(series, HistogramSeries):
            yield from _histogram_lines(series, name, labels, shift_ns, spans.get(name), grouping_power)
            continue
        times, values = series.points()
        if len(times):
            yield _line(name, labels, times + shift_ns, np.asarray(values, dtype=np.float64) * scale)


def _counts(series: HistogramSeries) -> np.ndarray:
    """(samples, buckets) bucket counters."""
    window = series.window()
    return window.cumulative(np.arange(len(window.times))).astype(np.float64)


def _histogram_lines(series: HistogramSeries, name: str, labels: dict[str, str], shift_ns: int,
                     used: tuple[int, int] | None, grouping_power: int | None) -> Iterator[dict]:
    times = series.window().times + shift_ns
    if len(times) == 0:
        return
    counts = _counts(series)
    highs = series.layout.highs
    if used is not None:
        running = np.cumsum(counts, axis=1)
        # A coarser layout's upper edges are edges of the finer one: its cumulative counts are the finer ones'
        # at those edges (up to the first coarse edge at or above the used range).
        kept = range(used[0], used[1] + 1)
        if grouping_power is not None and grouping_power < series.layout.grouping_power:
            coarse = Layout(grouping_power, series.layout.max_value_power).highs
            top = coarse[np.searchsorted(coarse, highs[used[1]])]
            edges = set(coarse.tolist())
            kept = [b for b in range(used[0], int(np.searchsorted(highs, top)) + 1) if highs[b] in edges]
        for bucket in kept:
            yield _line(f"{name}_bucket", labels | {"le": _le(highs[bucket])}, times, running[:, bucket])
    total = counts.sum(axis=1)
    yield _line(f"{name}_bucket", labels | {"le": "+Inf"}, times, total)
    yield _line(f"{name}_count", labels, times, total)
    deltas = np.diff(counts, axis=0)
    fine = (deltas >= 0).all(axis=1)  # no reset within the interval
    values = quantiles(np.where(fine[:, None], deltas, 0.0), np.array(QUANTILES), highs)
    for q, row in zip(QUANTILES, values):
        yield _line(name, labels | {"quantile": str(q)}, times[1:], row)


def _le(high: float) -> str:
    return str(int(high))
