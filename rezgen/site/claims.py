"""Claims on a list of items, shared by a process and the child it forks: who took which item first.

A byte per item in anonymous shared memory (both processes see every write), changed under a lock that works
across processes as well as threads: a POSIX record lock on a temporary file, which the kernel releases should
the process holding it die, plus a thread lock within each process (record locks are per process).
"""

from __future__ import annotations

import mmap
import tempfile
import threading

try:
    import fcntl
except ImportError:  # Windows: no fork either, so the claims are only ever shared by threads
    fcntl = None  # type: ignore[assignment]


class Claims:
    FREE = 0

    def __init__(self, count: int):
        self._state = mmap.mmap(-1, max(1, count))  # anonymous and shared with the child once forked
        self._file = tempfile.TemporaryFile()
        self._local = threading.Lock()
        self._closed = False

    def take(self, index: int, who: int) -> bool:
        """Take the item if no one has (and the claims are still open): whether `who` (not FREE) got it."""
        with self._local:
            if self._closed or self._state[index] != self.FREE:  # a claim is never given back: no lock needed
                return False
            if fcntl is not None:
                fcntl.lockf(self._file, fcntl.LOCK_EX)
            try:
                free = self._state[index] == self.FREE
                if free:
                    self._state[index] = who
            finally:
                if fcntl is not None:
                    fcntl.lockf(self._file, fcntl.LOCK_UN)
            return free

    def taken_by(self, who: int) -> list[int]:
        with self._local:
            return [index for index, state in enumerate(self._state[:]) if state == who]  # bytes: ints

    def close(self) -> None:
        with self._local:
            self._closed = True
            self._state.close()
            self._file.close()
