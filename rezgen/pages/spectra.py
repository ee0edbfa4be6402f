"""Where a percentile plot's quantile spectra go beside a static page, and what they hold.

Spectra are loaded on demand (a page asks for one when its "Full" or "Tail" toggle is pressed), each from a classic
script of its own, so the page's default data stays as small as without them. A plot id is text from a dashboard
file: its file name is the id's UTF-8 bytes in hex (unique, and nothing a path could misread); the page computes
the same name (chart-spectrum.js).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rezgen.dashboards import Plot
from rezgen.plotdata.evaluation import Scope, TimeRange
from rezgen.plotdata.spectrum import spectra
from rezgen.promql.cache import EvalCache
from rezgen.store.store import Store


def spectrum_file(host: str, route: str, plot_id: str, mode: str) -> tuple[str, str]:
    """(path under the site, registry key) of a plot's spectrum data script."""
    return (f"data/{host}/spectrum/{route}/{plot_id.encode().hex()}.{mode}.js",
            f"{host}/spectrum/{route}/{plot_id}/{mode}")


def spectrum_files(store: Store, plot: Plot, span: TimeRange, scope: Scope, host: str, route: str,
                   cache: EvalCache | None = None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, key, payload) of each mode's spectrum of a percentile plot that has one."""
    if plot.kind != "percentiles":
        return
    for payload in spectra(store, plot.query, span, scope, cache=cache):
        yield *spectrum_file(host, route, plot.id, payload["mode"]), payload
