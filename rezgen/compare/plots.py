"""A chart's data for both recordings of a compare, on time relative to each recording's start.

Each side is the plot's ordinary payload (`plotdata.plots.plot_data`, the one evaluation path) over its own
recording, with its times shifted to milliseconds since that recording's start, so charts overlay the two on one
axis of elapsed time however far apart, long or finely sampled the recordings are. Multi-series charts show the
series in the top k of either recording: a series in one side's top k but not the other's is evaluated in full
on that side, never read off its "Other".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rezgen.dashboards import Plot
from rezgen.plotdata.evaluation import Scope
from rezgen.plotdata.plots import OTHER, TimeRange, plot_data
from rezgen.plotdata.topk import EVERY_SERIES
from rezgen.promql.cache import EvalCache
from rezgen.store.store import Store


@dataclass
class Side:
    """One recording as a compare evaluates it (for one host)."""

    alias: str
    store: Store
    span: TimeRange
    scope: Scope | None  # None: this recording has no such host
    cache: EvalCache | None = None

    @property
    def start_ms(self) -> int:
        return self.span.start_ns // 1_000_000

    @property
    def duration_ms(self) -> int:
        return (self.span.end_ns - self.span.start_ns) // 1_000_000

    def evaluate(self, plot: Plot) -> dict[str, Any] | None:
        if self.scope is None:
            return None
        return plot_data(self.store, plot, self.span, self.scope, cache=self.cache)


def compare_plot(plot: Plot, a: Side, b: Side) -> dict[str, Any] | None:
    """The compare payload of a plot: its definition, the kind drawn, and per side {alias, data} where data is the
    side's plot payload on relative time (None when that recording cannot draw it); None when neither can."""
    data = [a.evaluate(plot), b.evaluate(plot)]
    if data[0] is None and data[1] is None:
        return None
    errors = [d for d in data if d is not None and "error" in d]
    if errors:  # a query that fails on either recording: its card says why
        return errors[0]
    kinds = {d["kind"] for d in data if d is not None}
    kind = "multi" if "multi" in kinds else kinds.pop()
    if kind == "multi":
        data = _union_top(plot, [a, b], data)
    return {**plot.to_json(), "kind": kind, "compare": True,
            "sides": [{"alias": side.alias, "duration": side.duration_ms, "step": side.span.step_ns // 1_000_000,
                       "data": _relative(d, side.start_ms)}
                      for side, d in zip((a, b), data)]}


def _union_top(plot: Plot, sides: list[Side], data: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
    """Both sides restricted to the series in the top k of either (without "Other": its members differ)."""
    shown: dict[str, None] = {}
    for d in data:
        if d is not None:
            shown.update((name, None) for name in d["names"] if name != OTHER)
    out = []
    for side, d in zip(sides, data):
        if d is not None and not set(shown) <= set(d["names"]):
            d = side.evaluate(dataclasses.replace(plot, top=EVERY_SERIES, other=False))
        out.append(None if d is None else _only(d, list(shown)))
    return out


def _only(data: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
    rows = [data["names"].index(name) for name in names if name in data["names"]]
    if not rows:
        return None
    return {**data, "names": [data["names"][i] for i in rows],
            "levels": [{**level, "values": [level["values"][i] for i in rows]} for level in data["levels"]]}


def _relative(data: dict[str, Any] | None, start_ms: int) -> dict[str, Any] | None:
    if data is None:
        return None
    out = {**data, "levels": [{**level, "t": [t - start_ms for t in level["t"]]} for level in data["levels"]]}
    if data.get("buckets"):
        out["buckets"] = {**data["buckets"], "t": [t - start_ms for t in data["buckets"]["t"]]}
    return out
