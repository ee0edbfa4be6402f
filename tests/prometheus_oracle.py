"""A real Prometheus as the oracle for rezgen's PromQL semantics.

The pieces, in the order a test session uses them:

1. `export_openmetrics(recording, out)` writes a recording's counters and gauges as OpenMetrics text. It reads the
   parquet file on its own (pyarrow only, never rezgen's reader), so a bug in rezgen's reader cannot hide itself.
   Histograms are left out (Prometheus 2 cannot ingest Rezolus histograms), and so is every metric that Prometheus
   cannot hold exactly as rezgen shows it: names that are not valid Prometheus names, and metrics with two series of
   the same identity (rezgen keeps those apart, Prometheus would merge them).
2. `create_blocks(openmetrics, data_dir)` turns that text into TSDB blocks with `promtool tsdb create-blocks-from
   openmetrics`. Recordings lie in the past and span minutes; promtool cuts blocks on the 2 h grid, which is fine.
3. `PrometheusServer` runs a real `prometheus` on a free 127.0.0.1 port over those blocks (retention 100y so old
   blocks are never dropped, an empty scrape config), waits for `/-/ready`, checks that every exported series is
   visible, answers `/api/v1/query` and `/api/v1/query_range`, and is stopped with SIGTERM (SIGKILL if it hangs).
4. `diff_results(ours, theirs)` compares two Prometheus API `data` objects series by series and says precisely what
   differs.
"""

from __future__ import annotations

import atexit
import json
import math
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Field-metadata keys that describe a column rather than label it (recording-format.md §1.6).
PROPERTY_KEYS = frozenset({"metric", "metric_type", "unit", "grouping_power", "max_value_power", "description"})
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


def binaries() -> tuple[str, str] | None:
    """Paths of `prometheus` and `promtool`, or None when either is missing."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    return (prometheus, promtool) if prometheus and promtool else None


# --------------------------------------------------------------------------------------------------------------------
# Reading the recording (independently of rezgen)


@dataclass(frozen=True)
class Column:
    """One series column of a recording, as its Arrow field metadata describes it."""

    index: int  # position in schema_arrow (names are not unique)
    name: str  # column name (opaque)
    metric: str
    labels: tuple[tuple[str, str], ...]  # sorted, empty values dropped (Prometheus has no empty labels)
    kind: str  # "counter" | "gauge" | "histogram"

    @property
    def identity(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.metric, self.labels


def columns(recording: Path) -> list[Column]:
    """Every series column of a recording (timestamp and duration excluded), in schema order."""
    schema = pq.ParquetFile(recording).schema_arrow
    out = []
    for index, fld in enumerate(schema):
        if fld.name in ("timestamp", "duration") and index < 2:
            continue
        meta = {k.decode(): v.decode() for k, v in (fld.metadata or {}).items()}
        if pa.types.is_list(fld.type) or pa.types.is_large_list(fld.type):
            kind = "histogram"
        elif fld.type == pa.uint64():
            kind = "counter"
        elif fld.type == pa.int64():
            kind = "gauge"
        else:
            continue
        metric = meta.get("metric") or fld.name.removesuffix(":buckets")
        labels = tuple(sorted((k, v) for k, v in meta.items() if k not in PROPERTY_KEYS and v != ""))
        out.append(Column(index, fld.name, metric, labels, kind))
    return out


@dataclass
class Selection:
    """Which columns go to Prometheus, and why the others do not."""

    kept: list[Column]
    skipped_metrics: dict[str, str]  # metric name -> reason


def select_columns(recording: Path) -> Selection:
    """Counters and gauges that Prometheus can hold exactly as they are in the recording.

    Skipped, whole metric at a time: histograms; names Prometheus 2 rejects (e.g. `ringline/bytes/sent`); label names
    it rejects; and any metric in which two columns share one identity (metric + labels), since rezgen would have to
    disambiguate them and Prometheus would silently merge them.
    """
    cols = columns(recording)
    by_identity: dict[tuple, int] = {}
    for col in cols:
        by_identity[col.identity] = by_identity.get(col.identity, 0) + 1
    skipped: dict[str, str] = {}
    for col in cols:
        if col.kind == "histogram":
            skipped.setdefault(col.metric, "histogram")
        elif by_identity[col.identity] > 1:
            skipped[col.metric] = "several series share one identity"
        elif not METRIC_NAME.fullmatch(col.metric):
            skipped[col.metric] = "not a valid Prometheus 2 metric name"
        elif not all(LABEL_NAME.fullmatch(k) and not k.startswith("__") for k, _ in col.labels):
            skipped[col.metric] = "label name not valid in Prometheus"
    kept = [c for c in cols if c.metric not in skipped]
    return Selection(kept, skipped)


def read_columns(recording: Path, wanted: list[Column]) -> tuple[list[int], dict[int, list]]:
    """Timestamps (ns) and, per wanted column index, its values (None = no sample).

    Column names are not unique, so columns are fetched by name and matched back to schema positions by their order
    among the fields of that name (pyarrow returns every column of a duplicated name, in schema order).
    """
    pf = pq.ParquetFile(recording)
    schema = pf.schema_arrow
    positions_by_name: dict[str, list[int]] = {}
    for index, fld in enumerate(schema):
        positions_by_name.setdefault(fld.name, []).append(index)
    wanted_indices = {c.index for c in wanted}
    names = sorted({c.name for c in wanted})
    table = pf.read(columns=["timestamp", *names], use_threads=True)
    seen: dict[str, int] = {}
    values: dict[int, list] = {}
    timestamps = None
    for i, fld in enumerate(table.schema):
        k = seen.get(fld.name, 0)
        seen[fld.name] = k + 1
        index = positions_by_name[fld.name][k]
        if schema.field(index).metadata != fld.metadata or schema.field(index).type != fld.type:
            raise RuntimeError(f"column {fld.name!r} #{k} does not match schema position {index}")
        if index == 0:
            timestamps = table.column(i).to_pylist()
        elif index in wanted_indices:
            values[index] = table.column(i).to_pylist()
    if timestamps is None:
        raise RuntimeError(f"{recording}: no timestamp column")
    return timestamps, values


# --------------------------------------------------------------------------------------------------------------------
# OpenMetrics export and TSDB blocks


@dataclass
class Export:
    """What was written for one recording."""

    recording: Path
    series: int  # series with at least one sample
    samples: int
    first_ns: int
    last_ns: int
    metrics: dict[str, int] = field(default_factory=dict)  # metric -> series with samples
    skipped_metrics: dict[str, str] = field(default_factory=dict)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _om_timestamp(ns: int) -> str:
    """Seconds with millisecond precision, exactly (Prometheus keeps milliseconds)."""
    ms = ns // NS_PER_MS
    return f"{ms // 1000}.{ms % 1000:03d}"


def export_openmetrics(recording: Path, out: Path) -> Export:
    """Write the recording's exportable counters and gauges to `out` as OpenMetrics text.

    Counters are declared `unknown` (an OpenMetrics `counter` family would demand a `_total` suffix and rename
    samples); gauges are declared `gauge`. One family block per metric, each series' samples in time order.
    """
    selection = select_columns(recording)
    timestamps, values = read_columns(recording, selection.kept)
    stamps = [_om_timestamp(t) for t in timestamps]
    by_metric: dict[str, list[Column]] = {}
    for col in selection.kept:
        by_metric.setdefault(col.metric, []).append(col)
    export = Export(recording, 0, 0, min(timestamps), max(timestamps), skipped_metrics=selection.skipped_metrics)
    with out.open("w", encoding="utf-8") as f:
        for metric in sorted(by_metric):
            cols = by_metric[metric]
            kinds = {c.kind for c in cols}
            f.write(f"# TYPE {metric} {'gauge' if kinds == {'gauge'} else 'unknown'}\n")
            for col in cols:
                series = values[col.index]
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in col.labels)
                head = f"{metric}{{{labels}}} " if labels else f"{metric} "
                lines = [f"{head}{v} {stamps[row]}\n" for row, v in enumerate(series) if v is not None]
                if lines:
                    f.writelines(lines)
                    export.series += 1
                    export.samples += len(lines)
                    export.metrics[metric] = export.metrics.get(metric, 0) + 1
        f.write("# EOF\n")
    return export


def create_blocks(openmetrics: Path, data_dir: Path, promtool: str = "promtool") -> None:
    """Build TSDB blocks from an OpenMetrics file into `data_dir` (promtool's default 2 h block grid)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(openmetrics), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"promtool failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    if not any(p.is_dir() and (p / "meta.json").exists() for p in data_dir.iterdir()):
        raise RuntimeError(f"promtool wrote no block into {data_dir}:\n{result.stdout}\n{result.stderr}")


# --------------------------------------------------------------------------------------------------------------------
# The Prometheus process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def format_time(t: float | str) -> str:
    """Unix seconds as Prometheus's API takes them (RFC 3339 strings pass through)."""
    if isinstance(t, str):
        return t
    return f"{t:.3f}"


class PrometheusError(RuntimeError):
    pass


class PrometheusServer:
    """A real `prometheus` process over an existing TSDB directory, listening on 127.0.0.1 only.

    Use as a context manager or call `start()` / `stop()`; `stop()` is idempotent and always reaps the process.
    """

    def __init__(self, data_dir: Path, work_dir: Path, binary: str = "prometheus", expected_series: int | None = None,
                 time_range_ns: tuple[int, int] | None = None):
        self.data_dir = data_dir
        self.work_dir = work_dir
        self.binary = binary
        self.expected_series = expected_series
        self.time_range_ns = time_range_ns
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._log = None
        self.log_path = work_dir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, attempts: int = 3, timeout: float = 90.0) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\nscrape_configs: []\n")
        last_error = None
        for _ in range(attempts):  # a port picked free may be taken before prometheus binds it
            self.port = free_port()
            self._log = self.log_path.open("ab")
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.data_dir}",
                    "--storage.tsdb.retention.time=100y",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--query.lookback-delta=5m",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
            )
            atexit.register(self.stop)  # safety net should the owner never get to call stop()
            try:
                self._wait_ready(timeout)
            except PrometheusError as e:
                last_error = e
                self.stop()
                continue
            try:
                self._check_loaded()
            except BaseException:
                self.stop()
                raise
            return
        raise PrometheusError(f"prometheus did not start: {last_error}\n--- log ---\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(f"exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise PrometheusError(f"not ready after {timeout}s")

    def _check_loaded(self) -> None:
        """Every exported series must be visible: proves the blocks were loaded and not dropped by retention."""
        if self.expected_series is None or self.time_range_ns is None:
            return
        lo, hi = self.time_range_ns
        body = self.api("series", {"match[]": '{__name__=~".+"}', "start": format_time(lo / NS_PER_S),
                                   "end": format_time(hi / NS_PER_S)})
        if body.get("status") != "success":
            raise PrometheusError(f"series lookup failed: {body}")
        found = len(body["data"])
        if found != self.expected_series:
            raise PrometheusError(f"prometheus holds {found} series, {self.expected_series} were exported")

    def stop(self) -> None:
        atexit.unregister(self.stop)
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
            else:
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- HTTP API ----------------------------------------------------------------------------------------------------

    def api(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        """POST to /api/v1/<endpoint>; returns the JSON envelope, also for error responses (4xx/5xx)."""
        if self.process is None:
            raise PrometheusError("prometheus is not running")
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/{endpoint}", data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            with e:
                return json.loads(e.read() or b"{}")

    def query_range(self, expr: str, start: float | str, end: float | str, step: str) -> dict[str, Any]:
        return self.api("query_range", {"query": expr, "start": format_time(start), "end": format_time(end),
                                        "step": step})

    def query(self, expr: str, at: float | str) -> dict[str, Any]:
        return self.api("query", {"query": expr, "time": format_time(at)})


# --------------------------------------------------------------------------------------------------------------------
# One recording behind one Prometheus


@dataclass
class RecordingOracle:
    """A recording exported to TSDB blocks and served by its own Prometheus."""

    recording: Path
    export: Export
    server: PrometheusServer

    @property
    def first_s(self) -> float:
        """Time of the first sample, unix seconds."""
        return self.export.first_ns / NS_PER_S

    @property
    def last_s(self) -> float:
        """Time of the last sample, unix seconds."""
        return self.export.last_ns / NS_PER_S

    def query(self, expr: str, at: float | str) -> dict[str, Any]:
        return self.server.query(expr, at)

    def query_range(self, expr: str, start: float | str, end: float | str, step: str) -> dict[str, Any]:
        return self.server.query_range(expr, start, end, step)

    def stop(self) -> None:
        self.server.stop()


def start_oracle(recording: Path, work_dir: Path, prometheus: str = "prometheus",
                 promtool: str = "promtool") -> RecordingOracle:
    """Export `recording`, build its blocks under `work_dir` and start a Prometheus over them (already checked)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    openmetrics = work_dir / "export.om.txt"
    export = export_openmetrics(recording, openmetrics)
    create_blocks(openmetrics, work_dir / "data", promtool)
    openmetrics.unlink()  # up to ~100 MB; the blocks hold the same data
    server = PrometheusServer(work_dir / "data", work_dir, prometheus, expected_series=export.series,
                              time_range_ns=(export.first_ns, export.last_ns))
    server.start()
    return RecordingOracle(recording, export, server)


# --------------------------------------------------------------------------------------------------------------------
# Comparing results

Labels = tuple[tuple[str, str], ...]


def _labels(metric: dict[str, str]) -> Labels:
    return tuple(sorted(metric.items()))


def _show(labels: Labels) -> str:
    name = dict(labels).get("__name__", "")
    inner = ",".join(f'{k}="{v}"' for k, v in labels if k != "__name__")
    return f"{name}{{{inner}}}"


def _ms(t: float) -> int:
    return round(float(t) * 1000)


def _value(v: str) -> float:
    return float(v)  # handles "NaN", "+Inf", "-Inf"


def values_equal(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def as_points(data: dict[str, Any]) -> dict[Labels, dict[int, float]]:
    """A `data` object of any result type as {labels: {t_ms: value}}. A scalar becomes the series with no labels."""
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return {(): {_ms(result[0]): _value(result[1])}}
    out: dict[Labels, dict[int, float]] = {}
    for item in result:
        key = _labels(item.get("metric", {}))
        if key in out:
            raise ValueError(f"result holds {_show(key)} twice")
        samples = item["values"] if kind == "matrix" else [item["value"]]
        out[key] = {_ms(t): _value(v) for t, v in samples}
    return out


def diff_results(ours: dict[str, Any], theirs: dict[str, Any], *, limit: int = 40) -> list[str]:
    """Every difference between two API `data` objects (ours = rezgen, theirs = Prometheus), one line each.

    Series are matched by their full label set (order of series is free); each must carry the same timestamps, and
    values must agree within rel 1e-9 / abs 1e-9, NaN being equal to NaN.
    """
    problems: list[str] = []
    if ours.get("resultType") != theirs.get("resultType"):
        problems.append(f"resultType: rezgen {ours.get('resultType')!r}, prometheus {theirs.get('resultType')!r}")
        if {ours.get("resultType"), theirs.get("resultType")} != {"matrix", "vector"}:
            return problems
    a, b = as_points(ours), as_points(theirs)
    for key in sorted(b.keys() - a.keys()):
        problems.append(f"missing series {_show(key)} ({len(b[key])} points, first at {min(b[key]) / 1000})")
    for key in sorted(a.keys() - b.keys()):
        problems.append(f"extra series {_show(key)} ({len(a[key])} points, first at {min(a[key]) / 1000})")
    for key in sorted(a.keys() & b.keys()):
        pa_, pb = a[key], b[key]
        for t in sorted(pb.keys() - pa_.keys()):
            problems.append(f"{_show(key)} @ {t / 1000}: missing point, prometheus {pb[t]!r}")
        for t in sorted(pa_.keys() - pb.keys()):
            problems.append(f"{_show(key)} @ {t / 1000}: extra point {pa_[t]!r}")
        for t in sorted(pa_.keys() & pb.keys()):
            if not values_equal(pa_[t], pb[t]):
                problems.append(f"{_show(key)} @ {t / 1000}: rezgen {pa_[t]!r}, prometheus {pb[t]!r}")
    if len(problems) > limit:
        problems = [*problems[:limit], f"... and {len(problems) - limit} more"]
    return problems


def members_by_step(data: dict[str, Any]) -> dict[int, dict[Labels, float]]:
    """For a matrix/vector: at each timestamp, which series are present and with what value (topk membership)."""
    steps: dict[int, dict[Labels, float]] = {}
    for key, points in as_points(data).items():
        for t, v in points.items():
            steps.setdefault(t, {})[key] = v
    return steps


def membership_diff(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """For topk/bottomk: at every step the same members with the same values.

    Members may differ only by a tie at the cut-off, i.e. when the values picked are the same either way.
    """
    problems = []
    a, b = members_by_step(ours), members_by_step(theirs)
    for t in sorted(a.keys() | b.keys()):
        sa, sb = a.get(t, {}), b.get(t, {})
        if len(sa) != len(sb):
            problems.append(f"@ {t / 1000}: rezgen has {len(sa)} members {[_show(k) for k in sa]}, "
                            f"prometheus {len(sb)} {[_show(k) for k in sb]}")
            continue
        only_a = sorted(sa[k] for k in sa.keys() - sb.keys())
        only_b = sorted(sb[k] for k in sb.keys() - sa.keys())
        if not all(values_equal(x, y) for x, y in zip(only_a, only_b)):
            problems.append(f"@ {t / 1000}: rezgen picked {[_show(k) for k in sa.keys() - sb.keys()]}, "
                            f"prometheus {[_show(k) for k in sb.keys() - sa.keys()]}")
        for k in sorted(sa.keys() & sb.keys()):
            if not values_equal(sa[k], sb[k]):
                problems.append(f"{_show(k)} @ {t / 1000}: rezgen {sa[k]!r}, prometheus {sb[k]!r}")
    return problems
