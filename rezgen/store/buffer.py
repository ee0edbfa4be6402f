"""A growable numpy array that can also drop its oldest elements: the building block of sliding windows.

Appends are amortised O(1) (capacity grows by a quarter); dropping from the front only moves a start offset, and
the storage is compacted once the dead prefix outweighs the live part, or when an append finds the end while the
kept part fills at most 7/8 of it, so a sliding window's storage settles within about 1.15-1.45x of what it keeps
(growing by doubling, it settled at 2-4x).

An array made with `fill=None` leaves its spare capacity unwritten (`np.empty`): a large one's spare pages are never
touched, so the kernel holds none of them, and a column decoded once (a recording's) can `reserve` its estimated
size up front and keep it, instead of copying itself at each growth and once more to `shrink`.
"""

from __future__ import annotations

import numpy as np


class GrowArray:
    def __init__(self, dtype: np.dtype | type, shape: tuple[int, ...] = (), capacity: int = 64,
                 fill: float | None = 0):
        self._fill = fill
        self._data = self._allocate(capacity, shape, dtype)
        self._start = 0
        self._stop = 0
        self._dropped = 0

    def __len__(self) -> int:
        return self._stop - self._start

    @property
    def dropped(self) -> int:
        """How many elements were dropped from the front since creation (keeps absolute indices meaningful)."""
        return self._dropped

    def view(self) -> np.ndarray:
        return self._data[self._start : self._stop]

    def append(self, value: object) -> None:
        if self._stop == self._data.shape[0]:
            self._reserve(1)
        self._data[self._stop] = value
        self._stop += 1

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        count = len(values)
        if self._stop + count > self._data.shape[0]:
            self._reserve(count)
        self._data[self._stop : self._stop + count] = values
        self._stop += count

    def drop_front(self, count: int) -> None:
        live = self._stop - self._start
        if count > live:
            count = live
        self._start += count
        self._dropped += count
        if self._start > live - count:
            self._compact(self._data.shape[0])

    def reserve(self, total: int) -> None:
        """Room for `total` elements in all (kept and to come) without another growth."""
        if total > self._data.shape[0] - self._start:
            self._compact(total)

    def shrink(self) -> None:
        """Cut the storage to what is kept (an array built by appends has up to a quarter spare). An unfilled
        array's spare was never written: the kernel holds none of it, and a copy would only double it for a while."""
        if self._fill is not None:
            self._compact(max(1, len(self)))

    def _reserve(self, extra: int) -> None:
        if self._stop + extra <= self._data.shape[0]:
            return
        capacity = self._data.shape[0]
        needed = len(self) + extra
        self._compact(capacity if needed * 8 <= capacity * 7 else max(capacity + capacity // 4, needed + needed // 8))

    def _compact(self, capacity: int) -> None:
        live = self.view()
        data = self._allocate(capacity, self._data.shape[1:], self._data.dtype)
        data[: len(live)] = live
        self._data = data
        self._stop = len(live)
        self._start = 0

    def _allocate(self, capacity: int, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        if self._fill is None:
            return np.empty((capacity, *shape), dtype=dtype)
        return np.full((capacity, *shape), self._fill, dtype=dtype)
