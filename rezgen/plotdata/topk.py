"""Stable top-k membership for the live updates of multi-series plots.

A plot of many series shows its `top` largest (by mean over the range) and sums the rest into "Other". Ranked
over the one or two steps of a live update, that membership would change every second: series would come and
go, and every page would rebuild its chart each time. Live updates therefore use one membership per plot and
subscription, and each update is computed for every series and folded into it.

That membership is the one the page's first load computed (`adopt`), over the window the page shows; it is
renewed every `RERANK_SECONDS` by the same ranking over the same length of window, so the updates never rank
differently from a load of the page at that moment.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from rezgen.dashboards import Plot
from rezgen.plotdata.evaluation import Scope
from rezgen.plotdata.plots import OTHER, TimeRange, json_values, plot_data
from rezgen.plotdata.window import DEFAULT_RANGE, range_ns, trailing
from rezgen.store.store import Store

RERANK_SECONDS = 60.0
EVERY_SERIES = 1_000_000  # a `top` no plot reaches: no ranking, no "Other"


class TopK:
    def __init__(self, window_ns: int = range_ns(DEFAULT_RANGE)) -> None:
        self.window_ns = window_ns  # how far back a ranking reaches: the range of the page that loaded last
        self._chosen: dict[str, tuple[float, frozenset[str]]] = {}

    def adopt(self, plots: list[Plot], loaded: dict[str, dict[str, Any]], window_ns: int) -> None:
        """A page's first load (`loaded`: plot id -> payload) over the last `window_ns`: the updates use the
        memberships it ranked, and rank again over that length of window."""
        self.window_ns = window_ns
        now = time.monotonic()
        for plot in plots:
            data = loaded.get(plot.id)
            if plot.kind != "multi" or not data or "error" in data:
                continue
            names = data["names"]
            # Ranked, or every series shows (none to keep: more series later get a ranking of their own).
            if OTHER in names if plot.other else len(names) == plot.top:
                self._chosen[plot.id] = (now, frozenset(names) - {OTHER})
            else:
                self._chosen.pop(plot.id, None)

    def plot_data(self, store: Store, plot: Plot, span: TimeRange, scope: Scope, oldest_ns: int
                  ) -> dict[str, Any] | None:
        """`plots.plot_data` for a live update over `span`, multi-series plots folded into this membership.
        `oldest_ns` is the window's oldest sample (the ranking never reaches before it)."""
        if plot.kind != "multi":
            return plot_data(store, plot, span, scope)
        data = plot_data(store, dataclasses.replace(plot, top=EVERY_SERIES), span, scope)
        if data is None or "error" in data or len(data["names"]) <= plot.top + 1:
            return data
        keep = self._members(store, plot, span, scope, oldest_ns)
        if not keep:
            return plot_data(store, plot, span, scope)
        level = data["levels"][-1]  # a live update spans few steps: one level
        kept = [i for i, name in enumerate(data["names"]) if name in keep]
        if not plot.other:
            return {**data, "names": [data["names"][i] for i in kept],
                    "levels": [{**level, "values": [level["values"][i] for i in kept]}]}
        rest = [i for i, name in enumerate(data["names"]) if name not in keep]
        rows = np.array([[np.nan if v is None else v for v in level["values"][i]] for i in rest], dtype=np.float64)
        other = np.nansum(rows, axis=0)
        other[np.isnan(rows).all(axis=0)] = np.nan
        return {**data, "names": [data["names"][i] for i in kept] + [OTHER],
                "levels": [{**level, "values": [level["values"][i] for i in kept] + [json_values(other)]}]}

    def _members(self, store: Store, plot: Plot, span: TimeRange, scope: Scope, oldest_ns: int) -> frozenset[str]:
        chosen = self._chosen.get(plot.id)
        if chosen is not None and time.monotonic() - chosen[0] < RERANK_SECONDS and chosen[1]:
            return chosen[1]
        window = trailing(span.end_ns, self.window_ns, oldest_ns, span.step_ns)  # as the page's first load
        ranked = plot_data(store, plot, window, scope, coarse_only=True)
        members = frozenset(ranked["names"]) - {OTHER} if ranked else frozenset()
        self._chosen[plot.id] = (time.monotonic(), members)
        return members
