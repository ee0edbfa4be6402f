"""Decode a recording's columns ahead of need, and share the build's work with a second process.

Decoding Parquet is most of what reading a recording costs (histogram columns above all: lists of hundreds of
buckets per row). The columns are items of work in the order the build's queries first name their metrics
(see `order`): counters and gauges in their read groups, histograms a column at a time. Each item is decoded
once, by whoever takes it first (`claims`); a series whose item someone else took waits for it to be delivered.

Where the process may fork safely (Linux, and no other Python thread: the `rezgen build` command) a child process
shares the build: the caller runs the build's tasks (its sections, then its metric charts) from the front, the
child from the back, each decoding what its tasks read, until the two meet. Columns of the metrics the sections
read the child sends to the caller once decoded (the caller's sections may need them later), unless the caller took
them first, in which case the child decodes them again for itself; any other column only its metric's chart reads.
The child sends each task's result back. A decoding thread would do that work on the same core, but it needs the GIL
between Arrow's calls while the evaluation holds it: each hand-over waits up to the interpreter's switch interval,
and the decoding took twice its CPU time. Elsewhere (the rebuilds of `rezgen serve`, inside a threaded server) a
thread decodes the items in order ahead of the caller, who runs every task.

Whatever becomes of the child (killed, say), a column it did not deliver is decoded by the caller when needed, and
a task it did not finish is run by the caller. Only for recordings whose decoded series all stay loaded (see
`budget`): everything decoded is kept until the build ends.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
import threading
from concurrent.futures import Future
from functools import partial
from typing import Any, BinaryIO, Callable, Iterable, Sequence

import pyarrow.parquet as pq

from rezgen.recording.reader import Recording, RecordingError
from rezgen.site.claims import Claims
from rezgen.site.order import decode_work, named_metrics

Delivery = list[tuple[int, Any, "str | None"]]  # (column index, decoded value, or None and an error message)
Task = Callable[[], Any]  # a part of the build; its result is picklable
DECODER, CALLER = 1, 2  # who took an item or a task
PR_SET_PDEATHSIG = 1  # prctl(2), Linux


class _Undelivered(Exception):
    """The decoder stopped before this: whoever needs it does it."""


class DecodeAhead:
    """Decodes the recording's columns in the background (and shares `tasks`); a context manager that stops the
    child process or thread."""

    def __init__(self, recording: Recording, queries: Iterable[str], tasks: Sequence[Task] = (),
                 flush: Callable[[], None] = lambda: None, fork: bool | None = None):
        self._recording = recording
        queries = list(queries)
        self._work = decode_work(recording, queries)
        # Only the columns of metrics the queries name are read by more than one task (a section, and the metric's
        # chart); those are worth sending from the child. Any other is read by its metric's chart alone.
        named = named_metrics(queries, {c.meta.key.metric for c in recording.columns})
        self._shared = {item for item, (_, columns) in enumerate(self._work)
                        if any(c.meta.key.metric in named for c in columns)}
        self._tasks = tasks
        self._flush = flush  # what a task wrote is complete once this returns
        self._items = Claims(len(self._work))
        self._taken_tasks = Claims(len(tasks))
        # Per item, what its decoder delivered: each column's (values, error).
        self._futures: list[Future[dict[int, tuple[Any, str | None]]]] = [Future() for _ in self._work]
        self._tasks_done: Future[None] = Future()
        self._results: dict[int, Any] = {}  # of the tasks the child ran
        self._lock = threading.Lock()
        self._stop = threading.Event()
        store, table = recording.store, recording.table
        self._series = {c.index: store.get(table, c.meta.key) for _, columns in self._work for c in columns}
        for item, (_, columns) in enumerate(self._work):
            for column in columns:
                self._series[column.index].unload(self._loader(item, column.index))
        self._child: int | None = None
        if fork if fork is not None else _may_fork():
            target, args = self._receive, (self._fork(),)
        else:
            self._tasks_done.set_result(None)  # a thread takes no task
            target, args = self._decode_ahead, ()
        self._thread = threading.Thread(target=target, args=args, name="rezgen-decode", daemon=True)
        self._thread.start()

    @property
    def child(self) -> int | None:
        """The decoding child process's pid; None when a thread decodes."""
        return self._child

    def run_tasks(self, announce: Callable[[int], None] = lambda index: None) -> list[Any]:
        """The tasks' results, in order. This runs every task not taken yet, from the front, while the child takes
        them from the back; then it waits for the child's results (or runs those tasks itself, should the child
        not finish them). Each task is announced as it starts here, the child's as their results are taken."""
        results: dict[int, Any] = {}
        for index, task in enumerate(self._tasks):
            if self._taken_tasks.take(index, CALLER):
                announce(index)
                results[index] = task()
        try:
            self._tasks_done.result()
        except _Undelivered:
            pass
        for index in self._taken_tasks.taken_by(DECODER):
            announce(index)
            results[index] = self._results[index] if index in self._results else self._tasks[index]()
        return [results[index] for index in range(len(self._tasks))]

    def __enter__(self) -> DecodeAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._child is not None:
            _end(self._child)
        self._thread.join()
        self._abandon()
        self._items.close()
        self._taken_tasks.close()

    def _loader(self, item: int, index: int) -> Callable[[], Any]:
        """The caller's: decodes the item when no one has taken it, else waits for it (or decodes it after all,
        should it not come)."""
        def load() -> Any:
            future = self._futures[item]
            if not future.done() and self._items.take(item, CALLER):
                return self._load(item, index, None)
            try:
                values, error = future.result()[index]
            except _Undelivered:
                return self._load(item, index, None)
            if error is not None:
                raise RecordingError(error)
            return values

        return load

    def _load(self, item: int, index: int, parquet: pq.ParquetFile | None,
              send: Callable[[str, Any], None] | None = None) -> Any:
        """Decode an item (through `parquet`, else the recording's own handle) and `send` it; the column's values,
        its siblings (the counters and gauges read with it) handed theirs."""
        delivery = self._decoded(item, parquet)
        if send is not None:
            send("columns", (item, delivery))
        found: tuple[Any, str | None] = (None, None)
        for other, value, error in delivery:
            if other == index:
                found = (value, error)
            elif value is not None:
                self._series[other].provide(value)
        if found[1] is not None:
            raise RecordingError(found[1])
        return found[0]

    def _decoded(self, item: int, parquet: pq.ParquetFile | None) -> Delivery:
        """Decode an item: its columns' values, or their error."""
        histogram, columns = self._work[item]
        try:
            if histogram:
                return [(columns[0].index, self._recording.histogram_loader(columns[0], parquet)(), None)]
            return [(index, values, None) for index, values in self._recording.read_scalars(columns, parquet).items()]
        except RecordingError as exc:
            return [(column.index, None, str(exc)) for column in columns]

    # ---- a thread ------------------------------------------------------------------------------------------------

    def _decode_ahead(self) -> None:
        try:
            parquet = self._recording.reopen()  # a handle of its own: the caller reads through the recording's
            for item in range(len(self._work)):
                if self._stop.is_set():
                    return
                if self._items.take(item, DECODER):
                    self._deliver(item, self._decoded(item, parquet))
        finally:
            self._abandon()

    def _deliver(self, item: int, delivery: Delivery) -> None:
        with self._lock:
            if not self._futures[item].done():
                self._futures[item].set_result({index: (value, error) for index, value, error in delivery})

    def _abandon(self) -> None:
        with self._lock:
            for future in [*self._futures, self._tasks_done]:
                if not future.done():
                    future.set_exception(_Undelivered())

    # ---- a child process, and the caller's thread that receives what it sends -----------------------------------

    def _fork(self) -> BinaryIO:
        read, write = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: work, send, and leave without running the parent's exit handlers
            code = 1
            try:
                os.close(read)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends us
                _die_with(parent)
                with os.fdopen(write, "wb") as pipe:
                    self._child_main(pipe)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        self._child = pid
        return os.fdopen(read, "rb")

    def _child_main(self, pipe: BinaryIO) -> None:
        warned = len(self._recording.warnings)

        def send(kind: str, payload: Any) -> None:
            nonlocal warned
            # The parent's copy of the recording does not see the warnings decoding adds here.
            pickle.dump((kind, payload, self._recording.warnings[warned:]), pipe, protocol=pickle.HIGHEST_PROTOCOL)
            pipe.flush()
            warned = len(self._recording.warnings)

        # Nothing resolves the futures in here: every series decodes itself, and sends what the caller may read.
        parquet = self._recording.reopen()  # not the parent's handle: an open file's position is shared
        for item, (_, columns) in enumerate(self._work):
            for column in columns:
                self._series[column.index].unload(partial(self._child_load, item, column.index, parquet, send))
        for index in reversed(range(len(self._tasks))):
            if not self._taken_tasks.take(index, DECODER):
                break  # the caller took the rest
            try:
                result = self._tasks[index]()
                self._flush()
            except Exception:
                return  # the caller runs it again, and reports what goes wrong
            send("task", (index, result))
        send("tasks done", None)

    def _child_load(self, item: int, index: int, parquet: pq.ParquetFile, send: Callable[[str, Any], None]) -> Any:
        """The child's: decodes the item, and sends it to the caller if the caller may read it too and has not
        taken it first. An item no one else reads is not taken: should the caller need it after all (the child
        gone), it decodes it itself."""
        shared = item in self._shared and self._items.take(item, DECODER)
        return self._load(item, index, parquet, send if shared else None)

    def _receive(self, pipe: BinaryIO) -> None:
        with pipe:
            while True:
                try:
                    kind, payload, warnings = pickle.load(pipe)
                except (EOFError, OSError, pickle.UnpicklingError):
                    break  # the child is done, or gone
                self._recording.warnings.extend(warnings)
                if kind == "columns":
                    self._deliver(*payload)
                elif kind == "task":
                    index, result = payload
                    self._results[index] = result
                else:
                    self._tasks_done.set_result(None)
        self._abandon()


def run_in_order(tasks: Sequence[Task], announce: Callable[[int], None] = lambda index: None) -> list[Any]:
    """The tasks' results, each run here in turn."""
    results = []
    for index, task in enumerate(tasks):
        announce(index)
        results.append(task())
    return results


def _may_fork() -> bool:
    """Forking is safe where no other Python thread may hold a lock the child would need."""
    return sys.platform == "linux" and threading.active_count() == 1


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (a parent killed outright cannot end it)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)


def _end(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
