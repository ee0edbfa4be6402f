"""A live page's long range from rollups: the closed segments' rollups joined with the live window, decimated.

A range that starts before the live window (the last 6 h, 24 h, a custom range) reads the rollups of the closed
segments it covers (`rollups`) and evaluates the live window after the newest of them the same way (the steps
after that rollup's last sample: the seam is exact, no step twice or missing). The cells are then reduced to the
page's width by the static site's own levels (`plotdata.levels`), with buckets that are whole numbers of cells:
each bucket of a level at least as large as the static site's, its edges on multiples of `CELL_NS`, and each point
the minimum and maximum of the full-resolution values of its bucket (what the static site's envelope is of its
own buckets). A top-k plot ranks its series by their mean over the segments covered (whole segments at the range's
edges); its "Other" is bounded per bucket by the sums of the minima and of the maxima of the series it holds. A
percentile plot's bucket heatmap has columns of whole `HEAT_CELL_NS` cells.

Anything the rollups cannot answer (a segment without a current rollup before the live window, another step, a
plot a rollup lacks) is answered by the raw path (`History.store`), as before rollups.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from rezgen.dashboards import Plot, Section
from rezgen.live.datadir import list_segments
from rezgen.live.history import LOOKBACK_NS, overlapping
from rezgen.plotdata import decimate
from rezgen.plotdata.levels import levels
from rezgen.plotdata.percentiles import HEAT_CELLS, HEAT_COLUMNS, bucket_heatmap
from rezgen.plotdata.plots import OTHER, TimeRange
from rezgen.server.rollups import (
    CELL_NS,
    HEAT_CELL_NS,
    PlotCells,
    Rollup,
    evaluate,
    grid,
    plot_key,
    read_rollup,
    rollup_path,
)
from rezgen.store.histogram import Layout
from rezgen.store.store import Store

WINDOW_PARTS = 32  # pieces of the window kept per section before they are evaluated again as one


class LongRange:
    """The rollups of one node's directory of the data dir (`root/node`), read with dashboards digest `key`."""

    def __init__(self, root: Any, node: str, key: str, step_ns: int):
        self.root, self.node, self.key, self.step_ns = root, node, key, step_ns
        # Per section: the live window's whole cells after the seam, evaluated once (seam, until, their rollups).
        self._window: dict[str, tuple[int, int, list[Rollup]]] = {}
        self._guard = threading.Lock()

    def section_plots(self, section: Section, span: TimeRange, store: Store, lock: threading.RLock
                      ) -> dict[str, dict[str, Any] | None] | None:
        """Each plot's payload (None: no data) over `span`, or None when the rollups cannot answer."""
        if span.step_ns != self.step_ns or CELL_NS % span.step_ns:
            return None
        keys = {plot_key(p) for p in section.plots}
        parts = self._rollups(section, span, keys, store, lock)
        if parts is None or any(set(part.plots) != keys for part in parts):
            return None  # also: rolled up for other plots (a section the segment's data called for otherwise)
        return {p.id: long_plot(p, [part.plots[plot_key(p)] for part in parts], parts, span) for p in section.plots}

    def _rollups(self, section: Section, span: TimeRange, keys: set[str], store: Store, lock: threading.RLock
                 ) -> list[Rollup] | None:
        """The rollups of the closed segments the range covers, then the live window after the newest of them."""
        files = list_segments(self.root, with_open=False).get(self.node, [])
        with lock:
            bounds = store.time_range()
        if bounds is None:
            return None
        # every one read, so each corrupt one is removed (for the builder to make again) at once
        found = [read_rollup(rollup_path(s.path, self.key), keys) for s in overlapping(files, span.start_ns,
                                                                                       span.end_ns)]
        parts: list[Rollup] = []
        for rollup in found:
            if rollup is None:
                if parts and _window_follows(parts[-1].until_ns, bounds[0]):
                    break  # the window answers for the rest
                return None
            if rollup.plots:  # a segment without a readable sample has an empty rollup
                parts.append(rollup)
        if not parts:
            return None
        rest = grid(parts[-1].until_ns, span.end_ns, span.step_ns)
        if rest is None:
            return parts
        if not _window_follows(parts[-1].until_ns, bounds[0]):
            return None
        return [*parts, *self._live(section, parts[-1].until_ns, span.end_ns, store, lock)]

    def _live(self, section: Section, seam_ns: int, end_ns: int, store: Store, lock: threading.RLock
              ) -> list[Rollup]:
        """The window's steps in (seam, end]: its cells that ended a while ago are evaluated once and kept (no
        sample arrives for them any more), the rest each time."""
        settled = ((end_ns - 2 * self.step_ns) // CELL_NS) * CELL_NS - 1  # the last step of the last settled cell
        with self._guard:
            seam, until, kept = self._window.get(section.route, (seam_ns, seam_ns, []))
            if seam != seam_ns or len(kept) > WINDOW_PARTS:
                until, kept = seam_ns, []
            if settled > until and (more := grid(until, settled, self.step_ns)) is not None:
                with lock:
                    kept = [*kept, evaluate(store, [section], more)]
                until = settled
            self._window[section.route] = (seam_ns, until, kept)
        tail = grid(until, end_ns, self.step_ns)
        if tail is None:
            return kept
        with lock:
            return [*kept, evaluate(store, [section], tail)]


def _window_follows(seam_ns: int, window_ns: int) -> bool:
    """The live window (from `window_ns` on) gives the steps after the seam what the data dir would: it holds what
    they look back to, or starts after a hole longer than any lookback (then nothing before it counts)."""
    return window_ns <= seam_ns - LOOKBACK_NS or window_ns > seam_ns + LOOKBACK_NS


def long_plot(plot: Plot, found: list[PlotCells], parts: list[Rollup], span: TimeRange) -> dict[str, Any] | None:
    """A plot's payload from its cells in consecutive rollups (`found[i]` of `parts[i]`), over `span`."""
    error = next((cells.error for cells in found if cells.error), None)
    if error is not None:
        return {**plot.to_json(), "error": error, "query": plot.query}
    first_cell = span.start_ns // CELL_NS
    columns = span.end_ns // CELL_NS - first_cell + 1
    index: dict[str, int] = {}
    for cells in found:
        for name in cells.names:
            index.setdefault(name, len(index))
    if not index:
        return None
    heatmap = plot.kind == "heatmap"
    high = np.full((len(index), columns), np.nan)
    low = None if heatmap else np.full((len(index), columns), np.nan)
    sums, counts = np.zeros(len(index)), np.zeros(len(index), dtype=np.int64)
    for cells, part in zip(found, parts):
        if not cells.names:
            continue
        ids = np.array([index[name] for name in cells.names])
        lo, hi = max(0, part.first_cell - first_cell), min(columns, part.first_cell + part.cells - first_cell)
        if hi <= lo:
            continue
        mine = slice(lo + first_cell - part.first_cell, hi + first_cell - part.first_cell)
        block = np.ix_(ids, np.arange(lo, hi))
        high[block] = np.fmax(high[block], cells.high[:, mine])
        if low is not None and cells.low is not None:
            low[block] = np.fmin(low[block], cells.low[:, mine])
        sums[ids] += cells.sums
        counts[ids] += cells.counts
    names = list(index)
    present = ~np.isnan(high).all(axis=1)
    if not present.any() or (heatmap and len(names) < 2):
        return None
    if plot.kind == "multi" and len(names) > plot.top + 1:
        names, high, low = _ranked(plot, names, high, low, sums, counts)
    kind = "multi" if plot.kind == "line" and len(names) > 1 else plot.kind
    times = np.arange(first_cell * CELL_NS, span.end_ns + 1, span.step_ns, dtype=np.int64)
    reducer = "max" if heatmap else "envelope"
    rows = _reducer(high, low, len(times), CELL_NS // span.step_ns, reducer)
    payload = {**plot.to_json(), "kind": kind, "names": names, "levels": levels(times, rows, reducer)}
    if plot.kind == "percentiles":
        payload["buckets"] = _heatmap(found, span)
    return payload


def _ranked(plot: Plot, names: list[str], high: np.ndarray, low: np.ndarray | None, sums: np.ndarray,
            counts: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """The top k by mean (ties in name order), then "Other": per cell, the sums of the rest's minima and maxima."""
    by_name = np.argsort(np.array(names), kind="stable")
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
    order = by_name[np.argsort(-means[by_name], kind="stable")]
    keep, rest = order[: plot.top], order[plot.top :]
    out_names = [names[i] for i in keep]
    high_out, low_out = high[keep], None if low is None else low[keep]
    if plot.other:
        out_names.append(OTHER)
        high_out = np.vstack([high_out, _total(high[rest])])
        if low is not None and low_out is not None:
            low_out = np.vstack([low_out, _total(low[rest])])
    return out_names, high_out, low_out


def _total(rows: np.ndarray) -> np.ndarray:
    total = np.nansum(rows, axis=0)
    total[np.isnan(rows).all(axis=0)] = np.nan
    return total


def _reducer(high: np.ndarray, low: np.ndarray | None, steps: int, cell_steps: int, reducer: str
             ) -> decimate.Reducer:
    """Cells as a `Reducer` at the static site's finest bucket rounded up to whole cells."""
    finest = decimate.finest_bucket(steps, 1 if reducer == "max" else 2)
    merge = max(1, math.ceil(finest / cell_steps))
    if merge > 1:
        starts = np.arange(0, high.shape[1], merge)
        high = np.fmax.reduceat(high, starts, axis=1)
        low = None if low is None else np.fmin.reduceat(low, starts, axis=1)
    out = decimate.Reducer(0, steps, merge * cell_steps, reducer)
    out.filled, out.high, out.low = steps, high, low
    return out


def _heatmap(found: list[PlotCells], span: TimeRange) -> dict[str, Any] | None:
    """The bucket heatmap of a percentile plot from its cells: columns of whole cells (at least the static site's
    stride for `HEAT_COLUMNS`), then `bucket_heatmap`'s merging."""
    first_cell = span.start_ns // HEAT_CELL_NS
    times = np.arange(first_cell * HEAT_CELL_NS, span.end_ns + 1, span.step_ns, dtype=np.int64)
    columns = span.end_ns // HEAT_CELL_NS - first_cell + 1
    cell_steps = HEAT_CELL_NS // span.step_ns
    per_column = max(1, math.ceil(math.ceil(len(times) / HEAT_COLUMNS) / cell_steps))
    parts = []
    layout: tuple[int, int] | None = None
    for cells in found:
        heat = cells.heat
        if heat is None or not len(heat.used):
            continue
        if layout is not None and heat.layout != layout:
            continue  # another histogram layout than the range began with: left out, as a history read does
        layout = heat.layout
        at = heat.first - first_cell + np.arange(len(heat.sums))
        inside = (at >= 0) & (at < columns)
        if not inside.any():
            continue
        column = at[inside] // per_column
        starts = np.flatnonzero(np.diff(column, prepend=-1))
        parts.append((column[starts], heat.used, np.add.reduceat(heat.sums[inside], starts, axis=0)))
    if layout is None or not parts:
        return None
    stride = per_column * cell_steps
    return bucket_heatmap(parts, math.ceil(len(times) / stride), stride, Layout(*layout), times, HEAT_CELLS)
