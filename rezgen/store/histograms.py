"""Compact storage of cumulative bucket histograms as sparse per-row deltas.

Rezolus histograms are cumulative per-bucket counts. Between two samples only a few buckets change, so each row
keeps just the non-zero buckets of its delta (CSR-style: bucket indices and counts, plus where each row ends).
A row whose cumulative counts went down is a reset (the producer restarted): its delta is its whole cumulative
array, the Prometheus convention, and it is flagged so cumulative values can be rebuilt. The cumulative array
just before the oldest kept row (`anchor`) makes eviction possible without rewriting rows.
"""

from __future__ import annotations

import numpy as np

from rezgen.store.buffer import GrowArray


class HistogramColumn:
    def __init__(self, buckets: int):
        self.buckets = buckets
        # Every element is written as it is appended: no fill, so spare capacity costs no memory (see GrowArray).
        self._present = GrowArray(np.bool_, fill=None)
        self._reset = GrowArray(np.bool_, fill=None)
        self._ends = GrowArray(np.int64, fill=None)  # absolute entry offset at the end of each row
        # A bucket's index: Rezolus histograms have at most 7,424 buckets (grouping power 7), so two bytes do.
        self._index = GrowArray(np.uint16 if buckets <= 2**16 else np.int32, fill=None)
        self._count = GrowArray(np.float64, fill=None)
        self._anchor = np.zeros(buckets)
        self._last: np.ndarray | None = None  # last cumulative array appended

    @property
    def rows(self) -> int:
        return len(self._present)

    @property
    def entries(self) -> int:
        return len(self._index)

    @property
    def nbytes(self) -> int:
        """What the kept rows hold: a bucket index and a count per entry, and the per-row flags and offsets."""
        per_entry = self._index.view().itemsize + self._count.view().itemsize
        return self.entries * per_entry + self.rows * 10

    def reserve(self, rows: int, entries: int) -> None:
        """Room for `rows` rows holding `entries` bucket deltas in all, so a column decoded once grows no more."""
        for array in (self._present, self._reset, self._ends):
            array.reserve(rows)
        for array in (self._index, self._count):
            array.reserve(entries)

    def present(self) -> np.ndarray:
        """Per kept row: whether it holds a sample."""
        return self._present.view()

    def shrink(self) -> None:
        """Cut every array to what it keeps: for a column that is complete (a recording's), not a growing one."""
        for array in (self._present, self._reset, self._ends, self._index, self._count):
            array.shrink()

    def append_absent(self, rows: int) -> None:
        end = self._index.dropped + len(self._index)  # = the last row's end (entries come only with rows)
        self._present.extend(np.zeros(rows, dtype=bool))
        self._reset.extend(np.zeros(rows, dtype=bool))
        self._ends.extend(np.full(rows, end, dtype=np.int64))

    def append_cumulative(self, counts: np.ndarray) -> None:
        """One row (what `extend_cumulative` does for a one-row block, without its block machinery: the live path)."""
        current = np.array(counts, dtype=np.float64)  # a copy: kept as `_last`
        if current.shape != (self.buckets,):
            raise ValueError(f"histogram rows must have {self.buckets} buckets")
        delta = current - self._last if self._last is not None else current
        changed = delta.nonzero()[0]
        self._store_row(current, changed, delta[changed])

    def _store_row(self, current: np.ndarray, changed: np.ndarray, counts: np.ndarray) -> None:
        """Append a row whose cumulative counts are `current` (the column keeps it) and whose non-zero deltas
        against `_last` are `counts` at `changed`: a decrease anywhere makes it a reset."""
        reset = bool(counts.min() < 0) if len(counts) else False
        if reset:  # the whole cumulative array is the delta
            changed = current.nonzero()[0]
            counts = current[changed]
        self._last = current
        self._index.extend(changed)
        self._count.extend(counts)
        self._ends.append(self._index.dropped + len(self._index))
        self._present.append(True)
        self._reset.append(reset)

    def extend_cumulative(self, block: np.ndarray, present: np.ndarray) -> None:
        """Append rows: `present` marks which rows have a sample; `block` holds their cumulative counts in order."""
        if block.ndim != 2 or block.shape[1] != self.buckets or block.shape[0] != int(present.sum()):
            raise ValueError(f"histogram rows must have {self.buckets} buckets")
        last = self._last if self._last is not None else np.zeros(self.buckets)
        # Most buckets of a cumulative histogram stay zero for ever: work only on the columns that are not.
        cols = np.flatnonzero(block.any(axis=0) | (last != 0))
        sub = block[:, cols].astype(np.float64)
        previous = np.empty_like(sub)
        if len(sub):
            previous[1:] = sub[:-1]
            previous[0] = last[cols]
            self._last = np.zeros(self.buckets)
            self._last[cols] = sub[-1]
        delta = sub - previous
        reset = (delta < 0).any(axis=1)
        delta[reset] = sub[reset]
        rows, positions = np.nonzero(delta)
        self._index.extend(cols[positions])
        self._count.extend(delta[rows, positions])
        per_row = np.bincount(rows, minlength=len(sub))
        full = np.zeros(len(present), dtype=np.int64)
        full[present] = per_row
        start = self._ends.view()[-1] if len(self._ends) else self._index.dropped
        self._ends.extend(start + np.cumsum(full))
        row_reset = np.zeros(len(present), dtype=bool)
        row_reset[present] = reset
        self._present.extend(present)
        self._reset.extend(row_reset)

    def drop_front(self, rows: int) -> None:
        rows = min(rows, self.rows)
        if rows == 0:
            return
        if rows == 1:  # the live path: one row per snapshot; its buckets are distinct, no bincount needed
            end = int(self._ends.view()[0])
            if self._reset.view()[0]:
                self._anchor = np.zeros(self.buckets)
            entries = end - self._index.dropped
            if entries:
                self._anchor[self._index.view()[:entries]] += self._count.view()[:entries]
            for array in (self._present, self._reset, self._ends):
                array.drop_front(1)
            self._index.drop_front(entries)
            self._count.drop_front(entries)
            return
        reset = self._reset.view()[:rows]
        first = int(np.flatnonzero(reset)[-1]) if reset.any() else -1
        if first >= 0:
            self._anchor = np.zeros(self.buckets)
        self._anchor += self._dense_sum(first - 1 if first >= 0 else -1, rows - 1)
        end = int(self._ends.view()[rows - 1])
        for array in (self._present, self._reset, self._ends):
            array.drop_front(rows)
        drop = end - self._index.dropped
        self._index.drop_front(drop)
        self._count.drop_front(drop)

    def entry_rows(self, lo_row: int, hi_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entries of kept rows lo_row < r <= hi_row as (row, bucket, count)."""
        ends = self._ends.view()
        base = self._index.dropped
        start = (int(ends[lo_row]) if lo_row >= 0 else base) - base
        stop = (int(ends[hi_row]) if hi_row >= 0 else base) - base
        if stop <= start:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0)
        per_row = np.diff(ends[lo_row + 1 : hi_row + 1], prepend=start + base)
        rows = np.repeat(np.arange(lo_row + 1, hi_row + 1), per_row)
        return rows, self._index.view()[start:stop].astype(np.int64), self._count.view()[start:stop]

    def _dense_sum(self, lo_row: int, hi_row: int) -> np.ndarray:
        _, buckets, counts = self.entry_rows(lo_row, hi_row)
        return np.bincount(buckets, weights=counts, minlength=self.buckets)

    def prefix(self, rows: np.ndarray) -> np.ndarray:
        """Sum of deltas of rows up to each of `rows` (sorted, unique, >= -1), relative to rows[0]."""
        out = np.zeros((len(rows), self.buckets))
        if len(rows) < 2:
            return out
        entry_rows, buckets, counts = self.entry_rows(int(rows[0]), int(rows[-1]))
        group = np.searchsorted(rows, entry_rows, side="left")
        flat = np.bincount(group * self.buckets + buckets, weights=counts, minlength=len(rows) * self.buckets)
        np.cumsum(flat.reshape(len(rows), self.buckets), axis=0, out=out)
        return out

    def row_deltas(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows), buckets) deltas of the given kept rows: no prefix sums needed."""
        ends = self._ends.view()
        base = self._index.dropped
        stops = ends[rows] - base
        starts = np.where(rows > 0, ends[np.maximum(rows - 1, 0)], base) - base
        lengths = stops - starts
        out = np.zeros((len(rows), self.buckets))
        if lengths.sum():
            owner = np.repeat(np.arange(len(rows)), lengths)
            offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            entries = np.repeat(starts, lengths) + offsets
            out[owner, self._index.view()[entries]] = self._count.view()[entries]
        return out

    def window(self, timestamps: np.ndarray, rows: slice) -> HistogramWindow:
        present = self._present.view()[rows]
        positions = np.flatnonzero(present) + rows.start
        positions = positions[positions < len(timestamps)]
        return HistogramWindow(self, timestamps[positions], positions)

    def cumulative_at(self, rows: np.ndarray) -> np.ndarray:
        """Cumulative bucket counts at kept rows (each must hold a sample)."""
        resets = np.flatnonzero(self._reset.view())
        last_reset = np.searchsorted(resets, rows, side="right") - 1
        starts = np.full(len(rows), -1, dtype=np.int64)
        starts[last_reset >= 0] = resets[last_reset[last_reset >= 0]] - 1
        needed = np.unique(np.concatenate([[-1], starts, rows]))
        table = self.prefix(needed)
        out = table[np.searchsorted(needed, rows)] - table[np.searchsorted(needed, starts)]
        out[last_reset < 0] += self._anchor
        return out


class HistogramWindow:
    """Samples of one histogram in a time window; positions index `times`."""

    def __init__(self, column: HistogramColumn, times: np.ndarray, rows: np.ndarray):
        self.column = column
        self.times = times
        self.rows = rows

    def increase(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Bucket-wise increase from position a to position b (a < b), resets counted as restarts from zero."""
        a_rows, b_rows = self.rows[a], self.rows[b]
        needed = np.unique(np.concatenate([a_rows, b_rows]))
        table = self.column.prefix(needed)
        return table[np.searchsorted(needed, b_rows)] - table[np.searchsorted(needed, a_rows)]

    def delta(self, positions: np.ndarray) -> np.ndarray:
        """Bucket-wise change from the previous sample to each position (a reset: the counts since it)."""
        return self.column.row_deltas(self.rows[positions])

    def cumulative(self, positions: np.ndarray) -> np.ndarray:
        return self.column.cumulative_at(self.rows[positions])
