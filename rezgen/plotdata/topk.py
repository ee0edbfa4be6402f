"""Stable top-k membership for the live updates of multi-series plots.

A plot of many series shows its `top` largest (by mean over the range) and sums the rest into "Other". Ranked
over the one or two steps of a live update, that membership would change every second: series would come and
go, and every page would rebuild its chart each time. Live updates therefore use one membership per plot and
subscription, ranked over the last `RANK_WINDOW_NS` of the window and renewed every `RERANK_SECONDS`; each
update is computed for every series and folded into it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from rezgen.dashboards import Plot
from rezgen.plotdata.plots import OTHER, TimeRange, json_values, plot_data
from rezgen.store.store import Store

RANK_WINDOW_NS = 15 * 60 * 1_000_000_000  # the live pages' default range
RERANK_SECONDS = 60.0
EVERY_SERIES = 1_000_000  # a `top` no plot reaches: no ranking, no "Other"

Scope = tuple[tuple[str, str], ...]


class TopK:
    def __init__(self) -> None:
        self._chosen: dict[str, tuple[float, frozenset[str] | None]] = {}

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
        end = span.end_ns
        start = max(oldest_ns, end - RANK_WINDOW_NS)
        start = end - (end - start) // span.step_ns * span.step_ns  # on the live grid
        ranked = plot_data(store, plot, TimeRange(start, end, span.step_ns), scope, coarse_only=True)
        members = frozenset(ranked["names"]) - {OTHER} if ranked else frozenset()
        self._chosen[plot.id] = (time.monotonic(), members)
        return members
