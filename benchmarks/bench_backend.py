"""`rezgen serve --prometheus` over a real VictoriaMetrics holding 100 hosts x 1 h.

    .venv/bin/python benchmarks/bench_backend.py [--hosts 100] [--hours 1] [--every 10] [--runs 3]

The data: c16.parquet's overview and Fleet metrics, written as remote write names them (tests/tsdb.py: counters
and gauges, cumulative `_bucket{le}` at grouping power 1, `_count`, quantile gauges) for each host (counters and
gauges scaled per host), every `--every`-th sample (10 s apart), tiled end to end (counters carried on) to
`--hours`, ending now.

Measured, each the median of --runs cold requests (6 s apart, past the server's few seconds of answer reuse):
(a) the Fleet page's first chart: fleet.html and its first KPI's data script (CPU busy: one query; each KPI is
    a script of its own, loaded side by side). Goal: <= 2 s. Also each of the other KPIs' data scripts.
(b) one host's overview over the last hour: the section's data script. Goal: <= 1 s.
Floor, in the same run: the very requests rezgen sends for (a) and (b) (recorded from its client), sent straight
to VictoriaMetrics with `requests` and their JSON decoded: what the TSDB and the transport cost on their own.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import orjson
import requests
from common import ROOT

sys.path.insert(0, str(ROOT / "tests"))
from processes import start, stop
from tsdb_import import VictoriaMetrics, recording_lines

from rezgen.backend.client import BackendClient
from rezgen.dashboards import load_dashboards
from rezgen.pages.fleet import KPIS
from rezgen.plotdata.evaluation import selector_names
from rezgen.recording.reader import open_recording
from rezgen.store.model import Kind


def metrics() -> set[str]:
    overview = next(s for s in load_dashboards(None) if s.route == "overview")
    return {n for p in overview.plots for n in selector_names(p.query)} | {
        n for k in KPIS for n in selector_names(k.query)}


def host_lines(c16, host: str, scale: float, end_ns: int, hours: float, every: int) -> Iterator[dict]:
    """One host's lines, tiled to `hours` ending at `end_ns`: counters (and buckets, counts) carried on across
    tiles, gauges repeated."""
    first, last = c16.time_range
    length = last - first + c16.interval_ns
    tiles = int(np.ceil(hours * 3600e9 / length))
    counters = {s.key.metric for s in c16.store if s.kind is Kind.COUNTER}
    for line in recording_lines(c16, host, scale=scale, metrics=metrics(), grouping_power=1):
        name = line["metric"]["__name__"]
        counting = name in counters or name.endswith(("_bucket", "_count"))
        values = np.array(line["values"])[::every]
        stamps = np.array(line["timestamps"], dtype=np.int64)[::every]
        if len(values) < 2:
            continue
        growth = values[-1] - values[0] + (values[1] - values[0]) if counting else 0.0
        offset_ms = (end_ns - last) // 1_000_000 - (tiles - 1) * (length // 1_000_000)
        all_values = np.concatenate([values + k * growth for k in range(tiles)])
        all_stamps = np.concatenate([stamps + offset_ms + k * (length // 1_000_000) for k in range(tiles)])
        yield {"metric": line["metric"], "values": all_values.tolist(), "timestamps": all_stamps.tolist()}


class Recorder(BackendClient):
    """Notes the range queries rezgen sends, to replay them as the floor."""

    sent: ClassVar[list[dict[str, str]]] = []

    def _query_range(self, query, start_ns, end_ns, step_ns):  # type: ignore[no-untyped-def]
        Recorder.sent.append({"query": query, "start": str(start_ns / 1e9), "end": str(end_ns / 1e9),
                              "step": str(step_ns / 1e9)})
        return super()._query_range(query, start_ns, end_ns, step_ns)


def floor(url: str, sent: list[dict[str, str]]) -> float:
    t = time.perf_counter()
    with requests.Session() as session:
        for params in sent:
            orjson.loads(session.post(f"{url}/api/v1/query_range", data=params, timeout=120).content)
    return time.perf_counter() - t


def timed(url: str) -> float:
    t = time.perf_counter()
    response = requests.get(url, timeout=300)
    response.raise_for_status()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    c16 = open_recording(ROOT / "tests" / "data" / "c16.parquet")
    hosts = [f"host{i:03d}" for i in range(args.hosts)]
    with tempfile.TemporaryDirectory(prefix="rezgen-bench-vm-") as folder, VictoriaMetrics(Path(folder)) as vm:
        end_ns = time.time_ns() // 1_000_000_000 * 1_000_000_000 - 1_000_000_000
        t = time.perf_counter()
        samples = vm.load(line for i, host in enumerate(hosts)
                          for line in host_lines(c16, host, 0.5 + i / max(1, len(hosts) - 1), end_ns, args.hours,
                                                 args.every))
        print(f"VictoriaMetrics: {len(hosts)} hosts x {args.hours:g} h, {samples:,} samples loaded in "
              f"{time.perf_counter() - t:.0f} s")
        proc, base = start(["serve", "--prometheus", vm.url, "--port", "0"], Path(folder) / "serve.log")
        try:
            host = hosts[len(hosts) // 2]
            sent = record_requests(vm.url, host)  # what rezgen asks the backend, per case
            cases = [("fleet page, first chart (CPU busy)", [f"{base}fleet.html", f"{base}fleet/{KPIS[0].id}.js"],
                      KPIS[0].id, 2.0)]
            cases += [(f"fleet KPI {kpi.id}", [f"{base}fleet/{kpi.id}.js"], kpi.id, None) for kpi in KPIS[1:]]
            cases.append((f"one host's overview ({host}, 1 h)", [f"{base}index.html?host={host}",
                                                                f"{base}data/{host}/overview.js?range=1h"],
                          "overview", 1.0))
            for name, urls, key, goal in cases:
                took, floors = [], []
                for _ in range(args.runs):
                    time.sleep(6)
                    took.append(sum(timed(u) for u in urls))
                    time.sleep(6)
                    floors.append(floor(vm.url, sent[key]))
                median, base_s = statistics.median(took), statistics.median(floors)
                aim = f" (goal <= {goal * 1000:.0f} ms)" if goal else ""
                print(f"{name}: {median * 1000:.0f} ms{aim}, floor {base_s * 1000:.0f} ms ({len(sent[key])} backend "
                      f"queries), ratio {median / base_s:.2f}")
        finally:
            stop(proc)


def record_requests(url: str, host: str) -> dict[str, list[dict[str, str]]]:
    """The range queries rezgen sends for each KPI of the Fleet page and for a host's overview over the last hour."""
    from rezgen.backend.dataset import BackendStore, sampling_interval
    from rezgen.commands.backend import counters_of
    from rezgen.pages.fleet import kpi_payload
    from rezgen.plotdata.plots import plot_data
    from rezgen.plotdata.window import trailing

    sections = load_dashboards(None)
    store = BackendStore(Recorder(url), 1_000_000_000, counters_of(sections), (0, 0))
    newest = store.newest_sample(3600 * 10**9)
    assert newest is not None
    store.interval_ns = sampling_interval(store, newest)
    span = trailing(newest, 3600 * 10**9, newest - 3600 * 10**9, store.interval_ns)
    out = {}
    for kpi in KPIS:
        Recorder.sent = []
        kpi_payload(store, kpi, span.start_ns, span.end_ns, store.interval_ns)
        out[kpi.id] = Recorder.sent
    Recorder.sent = []
    overview = next(s for s in sections if s.route == "overview")
    for plot in overview.plots:
        plot_data(store, plot, span, (("node", host),))
    out["overview"] = Recorder.sent
    return out


if __name__ == "__main__":
    main()
