"""Live counters and gauges of one table in one (series x rows) array, written a row at a time (see SeriesBlock)."""

from __future__ import annotations

import numpy as np


class SeriesBlock:
    """The values of many live counters and gauges of one table, in one float64 array of (series, rows).

    Row-aligned like any series of the table, so a live table writes one snapshot's values of all its series in
    one numpy operation, and evicts them all at once; each series still reads a contiguous slice. Kept rows are
    the columns `_start:_stop`; every column from `_stop` on is NaN, so appending a row is only a bump. Dropping
    rows moves `_start`; when `_stop` reaches the end the kept rows move back to the front (in place), and the
    capacity grows by an eighth only when the kept rows fill over 7/8 of it, so memory stays within about 1.15-1.3x
    of (series x kept rows); a move copies the kept rows, at most once per (capacity / 8) appended rows. Slots of
    removed series are cleared and reused.
    """

    def __init__(self, rows: int = 0, first_row: int = 0):
        self._data = np.full((64, max(64, rows + rows // 4 + 16)), np.nan)
        self._start, self._stop = 0, rows
        self._dropped = first_row  # absolute row of column `_start`
        self._newest = np.full(64, -1, dtype=np.int64)  # per slot: absolute row of its newest value (-1: none)
        self._free: list[int] = []
        self._slots = 0  # slots handed out so far; the rest of `_data`'s rows are spare

    def __len__(self) -> int:
        return self._stop - self._start

    @property
    def nbytes(self) -> int:
        return self._data.nbytes + self._newest.nbytes

    def allocate(self) -> int:
        if self._free:
            return self._free.pop()
        if self._slots == self._data.shape[0]:
            grown = self._slots + max(64, self._slots // 4)
            data = np.full((grown, self._data.shape[1]), np.nan)
            data[: self._slots] = self._data
            newest = np.full(grown, -1, dtype=np.int64)
            newest[: self._slots] = self._newest
            self._data, self._newest = data, newest
        self._slots += 1
        return self._slots - 1

    def reserve(self, slots: int, rows: int) -> None:
        """Room for `slots` series and `rows` kept rows, allocated once (a window refilled in bulk would otherwise
        grow it in many steps, each a copy into fresh memory)."""
        live = len(self)
        shape = (max(slots, self._data.shape[0]), max(rows, self._data.shape[1]))
        if shape == self._data.shape:
            return
        data = np.full(shape, np.nan)
        data[: self._slots, :live] = self._data[: self._slots, self._start : self._stop]
        newest = np.full(shape[0], -1, dtype=np.int64)
        newest[: len(self._newest)] = self._newest
        self._data, self._newest = data, newest
        self._start, self._stop = 0, live

    def release(self, slot: int) -> None:
        self._data[slot] = np.nan
        self._newest[slot] = -1
        self._free.append(slot)

    def values(self, slot: int) -> np.ndarray:
        """The kept rows of one slot (a view)."""
        return self._data[slot, self._start : self._stop]

    def newest(self, slot: int) -> int:
        """Absolute row of the slot's newest value (NaN is no value), -1 when it never had one."""
        return int(self._newest[slot])

    def set(self, slot: int, row: int, value: float) -> None:
        """One value at an absolute row (one the table has)."""
        column = self._start + row - self._dropped
        if not self._start <= column < self._stop:
            raise IndexError(f"row {row} is not a kept row of the table")
        self._data[slot, column] = value
        if value == value:  # not NaN
            self._newest[slot] = max(self._newest[slot], row)
        elif self._newest[slot] == row:  # its newest value was just erased: find the one before
            kept = np.flatnonzero(~np.isnan(self._data[slot, self._start : self._stop]))
            self._newest[slot] = self._dropped + int(kept[-1]) if len(kept) else -1

    def write_row(self, slots: np.ndarray, values: np.ndarray) -> None:
        """The newest row's values of the given slots (distinct), in one operation."""
        self._data[slots, self._stop - 1] = values
        row = self._dropped + self._stop - self._start - 1
        if np.isnan(values).any():
            slots = slots[~np.isnan(values)]
        self._newest[slots] = row

    def write_rows(self, slots: np.ndarray, values: np.ndarray) -> None:
        """The newest rows' values of the given slots (distinct): `values` is (slots, rows), in one operation."""
        count = values.shape[1]
        self._data[slots, self._stop - count : self._stop] = values
        has = ~np.isnan(values)
        found = has.any(axis=1)
        last = count - 1 - np.argmax(has[:, ::-1], axis=1)  # per slot, its newest value among the rows
        self._newest[slots[found]] = self._dropped + self._stop - self._start - count + last[found]

    def append_row(self) -> None:
        self.extend_rows(1)

    def extend_rows(self, count: int) -> None:
        if self._stop + count > self._data.shape[1]:
            self._make_room(count)
        self._stop += count

    def drop_front(self, count: int) -> None:
        count = min(count, len(self))
        self._start += count
        self._dropped += count

    def _make_room(self, count: int) -> None:
        live, capacity = len(self), self._data.shape[1]
        if (live + count) * 8 <= capacity * 7:  # kept rows fill at most 7/8: move them to the front, in place
            for lo in range(0, self._slots, 64):  # by bands of slots: numpy buffers an overlapping copy whole
                band = self._data[lo : lo + 64]
                band[:, :live] = band[:, self._start : self._stop]
            self._data[: self._slots, live : self._stop] = np.nan
        else:
            grown = max(capacity + capacity // 8, live + count + 16)
            data = np.full((self._data.shape[0], grown), np.nan)
            data[: self._slots, :live] = self._data[: self._slots, self._start : self._stop]
            self._data = data
        self._start, self._stop = 0, live
