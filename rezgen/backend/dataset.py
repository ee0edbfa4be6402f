"""A backend's data over a time range, shaped as a recording is for the site build and the pages: a store-like
`BackendStore` (plot data through the backend, and the series the metric catalog lists), the sampling interval,
the hosts, and a footer holding what a TSDB does not have (system information, from `--systeminfo DIR`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rezgen.backend.client import BackendClient
from rezgen.backend.source import NAMES_TTL, BackendSource, CatalogSeries
from rezgen.errors import RezgenError
from rezgen.recording.footer import Footer, SourceInfo

DEFAULT_INTERVAL_NS = 1_000_000_000
MIN_INTERVAL_NS = 50_000_000  # the shortest interval Rezolus samples at (and `serve --live` polls)


class BackendStore(BackendSource):
    """The backend as `plots.plot_data` and `catalog.metric_catalog` read a store: plot data through its API, and
    iteration over the series of `window` (ns; asked again every NAMES_TTL seconds)."""

    def __init__(self, client: BackendClient, interval_ns: int, counters: set[str], window: tuple[int, int]):
        super().__init__(client, interval_ns, counters)
        self.window = window
        self._catalog: tuple[float, list[CatalogSeries]] | None = None

    def time_range(self) -> tuple[int, int]:
        return self.window

    def __iter__(self) -> Iterator[CatalogSeries]:
        if self._catalog is None or time.monotonic() - self._catalog[0] > NAMES_TTL:
            self._catalog = (time.monotonic(), self.catalog_series(*self.window))
        return iter(self._catalog[1])


class BackendData:
    """What `site.build.build_site` reads of a recording, from a backend over [start_ns, end_ns]."""

    def __init__(self, client: BackendClient, start_ns: int, end_ns: int, counters: set[str],
                 systeminfo: Path | None = None):
        self.client = client
        self.path = Path(client.url.split("//", 1)[-1].strip("/").replace("/", "_") or "backend")
        self.time_range = (start_ns, end_ns)
        self.store = BackendStore(client, DEFAULT_INTERVAL_NS, counters, (start_ns, end_ns))
        self.interval_ns = self.store.interval_ns = sampling_interval(self.store, end_ns)
        self.footer = systeminfo_footer(systeminfo)


def sampling_interval(source: BackendSource, at_ns: int) -> int:
    """The median spacing of the raw samples of a metric in the two minutes before `at_ns` (1 s if none)."""
    plain, histograms = source.names()
    names = sorted(plain) or sorted(f"{h}_count" for h in histograms)
    if not names:
        return DEFAULT_INTERVAL_NS
    name = "cpu_cores" if "cpu_cores" in plain else names[0]
    times = source.client.raw_times(f"{name}[2m]", at_ns)
    if len(times) < 2:
        return DEFAULT_INTERVAL_NS
    return max(MIN_INTERVAL_NS, int(np.median(np.diff(times))) // 1_000_000 * 1_000_000)


def systeminfo_footer(folder: Path | None) -> Footer:
    """A footer with the system information of `folder`'s `<node>.json` files (one file: the single host's)."""
    footer = Footer(raw={})
    if folder is None:
        return footer
    try:
        files = sorted(folder.glob("*.json"))
        infos = {file.stem: json.loads(file.read_text()) for file in files}
    except (OSError, ValueError) as exc:
        raise RezgenError(f"{folder}: cannot read system information: {exc}") from None
    if not infos:
        raise RezgenError(f"{folder}: no <node>.json system information files")
    if len(infos) == 1:
        footer.systeminfo = next(iter(infos.values()))
    footer.per_source["rezolus"] = SourceInfo("rezolus", members={
        node: {"node": node, "systeminfo": info} for node, info in infos.items() if isinstance(info, dict)})
    return footer


def check(client: BackendClient) -> None:
    """One request that proves the URL is a Prometheus-compatible API (BackendError otherwise)."""
    client.label_values("__name__")

