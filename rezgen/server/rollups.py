"""Rollups: the plot data of a stretch of time kept at a fixed fine bucket, so a long range reads a day of them
instead of a day of rows.

Every plot of every section the data calls for is evaluated by the one plot data path (`plotdata.plots.plot_data`:
the same queries, percentile rule, coverage and device order as any page) at full resolution, in pieces of at most
`PIECE_STEPS` steps, and each series is kept as its minimum and maximum per `CELL_NS` of wall-clock time (cells
start at multiples of it; a heatmap keeps the maximum alone), with its sum and count of points: a top-k plot ranks
by mean over the whole range, so every series is kept, not a segment's own top k. A percentile plot also keeps the
sums of its bucket rates per cell (`percentiles.bucket_rates`, the rates its bucket heatmap is made of).

A closed segment's rollup (`segment_rollup`) owns the steps after the previous segment's last sample (when that one
is adjacent: no step between two segments is lost) up to its own last sample, evaluated over a store holding both
segments, so rates at its first rows have their previous samples (`history.LOOKBACK_NS` of them). It is a file
beside the segment, named after it and the dashboards' digest (a changed dashboard or step makes it stale):

    DIR/<node>/.rollups/<segment name>.<digest>.rollup
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rezgen.dashboards import Plot, Section
from rezgen.live.datadir import ROLLUPS, SegmentFile
from rezgen.live.history import LOOKBACK_NS, add_node
from rezgen.pages.services import sections_for
from rezgen.plotdata.decimate import FULL_RESOLUTION_MAX
from rezgen.plotdata.plots import TimeRange, plot_data
from rezgen.plotdata.source import StoreSource
from rezgen.plotdata.topk import EVERY_SERIES
from rezgen.store.store import Store

log = logging.getLogger(__name__)

CELL_NS = 10 * 1_000_000_000  # the rollups' bucket: a day is 8,640 cells
HEAT_CELL_NS = 60 * 1_000_000_000  # a bucket heatmap's cells (a day's heatmap has 500 columns: 173 s each)
PIECE_STEPS = FULL_RESOLUTION_MAX  # steps evaluated at once: plot_data ships them at full resolution
FORMAT = "2"
DIR = ROLLUPS


@dataclass
class HeatCells:
    """A percentile plot's bucket rates summed per `HEAT_CELL_NS` from cell `first` on: (cells, used buckets), the
    buckets' indices and layout."""

    first: int
    used: np.ndarray
    sums: np.ndarray
    layout: tuple[int, int]  # grouping power, max value power


@dataclass
class PlotCells:
    """One plot over consecutive cells: per series (`names`) its maximum and minimum per cell (NaN: no point),
    its sum and count of points; an error instead when its query cannot be evaluated."""

    query: str
    names: list[str]
    high: np.ndarray
    low: np.ndarray | None
    sums: np.ndarray
    counts: np.ndarray
    heat: HeatCells | None = None
    error: str | None = None


@dataclass
class Rollup:
    """Plots (key: `plot_key`) over the cells from `first_cell` on, of the steps in (from_ns, until_ns]."""

    first_cell: int
    cells: int
    from_ns: int
    until_ns: int
    plots: dict[str, PlotCells]


def plot_key(plot: Plot) -> str:
    """What a plot's cells depend on (plots of the same query in two sections share them)."""
    return _key(plot.kind, plot.query, plot.percentiles)


@lru_cache(maxsize=4096)
def _key(kind: str, query: str, percentiles: tuple[float, ...] | None) -> str:
    return json.dumps([kind, query, percentiles])


def digest(sections: list[Section], step_ns: int) -> str:
    """What makes a rollup current: the dashboards' plots, the step and this format."""
    plots = [[s.route, s.source, s.selector, [[p.id, p.query, p.kind, p.top, p.other, p.percentiles]
                                              for p in s.plots]] for s in sections]
    text = json.dumps([FORMAT, CELL_NS, step_ns, plots], default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rollup_path(segment: Path, key: str) -> Path:
    return segment.parent / DIR / f"{segment.stem}.{key}.rollup"


def grid(from_ns: int, until_ns: int, step_ns: int) -> TimeRange | None:
    """The steps in (from_ns, until_ns] on the grid of multiples of `step_ns`; None when there are none."""
    first = (from_ns // step_ns + 1) * step_ns
    last = until_ns // step_ns * step_ns
    return TimeRange(first, last, step_ns) if last >= first else None


def evaluate(store: Store, sections: list[Section], span: TimeRange, scope: tuple = ()) -> Rollup:
    """The plots of `sections` over `span` (steps on the multiples of its step) as cells."""
    first_cell = span.start_ns // CELL_NS
    cells = span.end_ns // CELL_NS - first_cell + 1
    plots: dict[str, PlotCells] = {}
    for section in sections:
        for plot in section.plots:
            if plot_key(plot) not in plots:
                plots[plot_key(plot)] = _plot_cells(store, plot, span, scope, first_cell, cells)
    return Rollup(first_cell, cells, span.start_ns - span.step_ns, span.end_ns, plots)


def _pieces(span: TimeRange) -> Iterator[TimeRange]:
    for start in range(span.start_ns, span.end_ns + 1, PIECE_STEPS * span.step_ns):
        yield TimeRange(start, min(span.end_ns, start + (PIECE_STEPS - 1) * span.step_ns), span.step_ns)


def _plot_cells(store: Store, plot: Plot, span: TimeRange, scope: tuple, first_cell: int, cells: int) -> PlotCells:
    every = dataclasses.replace(plot, top=EVERY_SERIES) if plot.kind == "multi" else plot
    index: dict[str, int] = {}
    high = np.full((0, cells), np.nan)
    low = None if plot.kind == "heatmap" else np.full((0, cells), np.nan)
    sums, counts = np.zeros(0), np.zeros(0, dtype=np.int64)
    for piece in _pieces(span):
        data = plot_data(store, every, piece, scope)
        if data is None:
            continue
        if "error" in data:
            return PlotCells(plot.query, [], high, low, sums, counts, error=data["error"])
        (level,) = data["levels"]  # at most PIECE_STEPS steps: full resolution
        times = np.asarray(level["t"], dtype=np.int64) * 1_000_000
        rows = np.array(level["values"], dtype=np.float64).reshape(len(data["names"]), len(times))
        ids = np.array([index.setdefault(name, len(index)) for name in data["names"]], dtype=np.int64)
        if len(index) > len(high):
            added = len(index) - len(high)
            high = np.vstack([high, np.full((added, cells), np.nan)])
            low = None if low is None else np.vstack([low, np.full((added, cells), np.nan)])
            sums, counts = np.append(sums, np.zeros(added)), np.append(counts, np.zeros(added, dtype=np.int64))
        at = times // CELL_NS - first_cell
        starts = np.flatnonzero(np.diff(at, prepend=-1))
        where = at[starts]
        high[np.ix_(ids, where)] = np.fmax(high[np.ix_(ids, where)], np.fmax.reduceat(rows, starts, axis=1))
        if low is not None:
            low[np.ix_(ids, where)] = np.fmin(low[np.ix_(ids, where)], np.fmin.reduceat(rows, starts, axis=1))
        finite = np.isfinite(rows)
        sums[ids] += np.where(finite, rows, 0.0).sum(axis=1)
        counts[ids] += finite.sum(axis=1)
    heat = _heat_cells(store, plot, span, scope) if plot.kind == "percentiles" and index else None
    return PlotCells(plot.query, list(index), high, low, sums, counts, heat)


def _heat_cells(store: Store, plot: Plot, span: TimeRange, scope: tuple) -> HeatCells | None:
    """The bucket rates of a percentile plot summed per cell (the same rates `percentile_plot` draws)."""
    first_cell = span.start_ns // HEAT_CELL_NS
    cells = span.end_ns // HEAT_CELL_NS - first_cell + 1
    dense: np.ndarray | None = None
    layout = None
    for _, times, used, rates, layout in StoreSource(store).bucket_rates(plot.query, span, scope):
        if dense is None:
            dense = np.zeros((cells, layout.buckets))
        if len(used):
            at = times // HEAT_CELL_NS - first_cell
            starts = np.flatnonzero(np.diff(at, prepend=-1))
            dense[np.ix_(at[starts], used)] += np.add.reduceat(rates, starts, axis=0)
    if dense is None or layout is None:
        return None
    used = np.flatnonzero(dense.any(axis=0))
    return HeatCells(first_cell, used, dense[:, used], (layout.grouping_power, layout.max_value_power))


def segment_rollup(files: list[SegmentFile], at: int, sections: Callable[[Store], list[Section]], step_ns: int
                   ) -> Rollup | None:
    """The rollup of closed segment `files[at]` (a node's closed segments in time order): None when it holds no
    sample."""
    segment = files[at]
    paths = [s.path for s in files[max(0, at - 1) : at + 1] if s.end_ns >= segment.start_ns - LOOKBACK_NS]
    store = Store(step_ns)
    add_node(store, segment.path.parent.name, paths, segment.start_ns - LOOKBACK_NS, segment.end_ns, None)
    if not store.tables:
        return None
    stamps = store.tables[0].timestamps
    mine = np.flatnonzero(stamps >= segment.start_ns)
    if not len(mine):
        return None
    first, last = int(stamps[mine[0]]), int(stamps[mine[-1]])
    before = int(stamps[mine[0] - 1]) if mine[0] > 0 else None
    adjacent = before is not None and first - before <= 2 * store.tables[0].spacing(step_ns)
    since = before if adjacent and before is not None else first - 1
    span = grid(since, last, step_ns)
    if span is None:
        return None
    rollup = evaluate(store, sections(store), span)
    rollup.from_ns, rollup.until_ns = since, last
    return rollup


# ---- files --------------------------------------------------------------------------------------------------------
# A rollup file: MAGIC, the index's length (4 bytes, little-endian), the index (JSON: the rollup's span, and per plot
# the hash of its key -> where its chunk is), then one zlib-compressed chunk per plot: its JSON header's length, the
# header (names, arrays' dtypes and shapes, ...) and the arrays' bytes. A page reads the index and its plots' chunks
# alone (a day of a section's plots is 144 files x its plots: the per-member cost of a zip was most of a second).

MAGIC = b"REZGEN-ROLLUP-1\n"


def _plot_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _chunk(cells: PlotCells) -> bytes:
    arrays = {"high": cells.high, "low": cells.low, "sums": cells.sums, "counts": cells.counts}
    if cells.heat is not None:
        arrays |= {"used": cells.heat.used, "heat": cells.heat.sums}
    present = {name: np.ascontiguousarray(a) for name, a in arrays.items() if a is not None}
    header = json.dumps({"query": cells.query, "names": cells.names, "error": cells.error,
                         "layout": cells.heat.layout if cells.heat else None,
                         "heat_first": cells.heat.first if cells.heat else None,
                         "arrays": [[name, a.dtype.str, a.shape] for name, a in present.items()]}).encode()
    body = b"".join([len(header).to_bytes(4, "little"), header, *(a.tobytes() for a in present.values())])
    return zlib.compress(body, 1)


def _cells(chunk: bytes) -> PlotCells:
    body = zlib.decompress(chunk)
    size = int.from_bytes(body[:4], "little")
    header = json.loads(body[4 : 4 + size])
    at = 4 + size
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, shape in header["arrays"]:
        count = math.prod(shape)
        arrays[name] = np.frombuffer(body, dtype=np.dtype(dtype), count=count, offset=at).reshape(shape)
        at += count * np.dtype(dtype).itemsize
    heat = HeatCells(int(header["heat_first"]), arrays["used"], arrays["heat"], tuple(header["layout"])) \
        if header["layout"] else None
    return PlotCells(header["query"], header["names"], arrays["high"], arrays.get("low"), arrays["sums"],
                     arrays["counts"], heat, header["error"])


def write_rollup(path: Path, rollup: Rollup) -> None:
    """Written to a temporary name and renamed."""
    chunks = {_plot_id(key): _chunk(cells) for key, cells in rollup.plots.items()}
    where, at = {}, 0
    for plot, chunk in chunks.items():
        where[plot] = [at, len(chunk)]
        at += len(chunk)
    index = json.dumps({"format": FORMAT, "first_cell": rollup.first_cell, "cells": rollup.cells,
                        "from_ns": rollup.from_ns, "until_ns": rollup.until_ns, "plots": where}).encode()
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as out:
        out.write(b"".join([MAGIC, len(index).to_bytes(4, "little"), index, *chunks.values()]))
    os.replace(temporary, path)


def read_rollup(path: Path, keys: set[str] | None = None) -> Rollup | None:
    """A rollup (its plots of `keys` only, when given: a key it lacks is left out), or None: missing, or with a
    warning when it cannot be read (then it is removed, for the builder to make again)."""
    try:
        data = path.read_bytes()
        if not data.startswith(MAGIC):
            raise ValueError("not a rollup of this format")
        size = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "little")
        start = len(MAGIC) + 4 + size
        index = json.loads(data[len(MAGIC) + 4 : start])
        plots = {}
        wanted = {_plot_id(key): key for key in keys} if keys is not None else None
        for plot, (at, length) in index["plots"].items():
            if wanted is None or plot in wanted:
                cells = _cells(data[start + at : start + at + length])
                plots[wanted[plot] if wanted is not None else plot] = cells
        return Rollup(int(index["first_cell"]), int(index["cells"]), int(index["from_ns"]), int(index["until_ns"]),
                      plots)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError, zlib.error) as exc:
        log.warning("skipping a rollup: %s: %s", path, exc)
        path.unlink(missing_ok=True)  # the builder makes it again
        return None


def segment_sections(dashboards: list[Section], describe: Callable[[str], str | None]
                     ) -> Callable[[Store], list[Section]]:
    """The sections a segment's store calls for (as a page of it would show them)."""
    return lambda store: sections_for(dashboards, store, describe)
