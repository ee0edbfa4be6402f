"""Live history on disk (`serve --live --data-dir DIR`): rolling Rezolus segments, one directory per node.

    DIR/<node>/20261207T230000.000Z_20261207T230959.000Z.parquet   closed segments, named by first and last sample
    DIR/<node>/.open/RUN-SEG.journal                               the open segment: an append-only journal
    DIR/<node>/.open/RUN-SEG-PART.parquet                          its rows as of a read that reached them
    DIR/<node>/.rollups/<segment>.<digest>.rollup                  a closed segment's plots, rolled up by the server

Every .parquet file is a complete Rezolus recording (`rezgen build`, `rezgen query` and Rezolus open any of them).
The open segment is a journal (`journal`: each row a few numpy operations and bytes to append, no Parquet), appended
every second, so a kill -9 loses about a second. A segment that spans `--segment` is encoded once, from its journal,
under a temporary name renamed to its own; then the journal and its parts go (a crash in between leaves the journal,
which closes again into the very same file). A read of the data dir (`History.store`) first writes the open rows
it has not seen as parts (`rotate`). A start after a crash closes what the last run left open (`recover`); parts of
the previous layout (no journal) are merged as they were. Retention deletes the oldest closed segments (with their
rollups, which count in their size) beyond `--keep` (age) or `--keep-size` (bytes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rezgen.live import journal
from rezgen.live.segment_writer import SegmentWriter
from rezgen.live.segments import merge

log = logging.getLogger(__name__)

OPEN = ".open"
ROLLUPS = ".rollups"  # what the live server derives from each closed segment (`server/rollups.py`)
CLOSING = ".closing.parquet"
FORMAT_KEY = "rezgen_segment"  # footer key: the data dir's segment format, so another version's files are told
FORMAT = "1"
JOURNAL_FLUSH_S = 1.0  # a kill -9 loses about this much
_STAMP = "%Y%m%dT%H%M%S"
_NAME = re.compile(r"^(\d{8}T\d{6})\.(\d{3})Z_(\d{8}T\d{6})\.(\d{3})Z\.parquet$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def node_dir_name(node: str) -> str:
    """A node's directory: its name with anything but letters, digits, `.`, `_` and `-` replaced (no `..`)."""
    name = _UNSAFE.sub("_", node).strip(".") or "_"
    return name


def _stamp(t_ns: int) -> str:
    moment = datetime.fromtimestamp(t_ns // 1_000_000_000, UTC)
    return f"{moment.strftime(_STAMP)}.{t_ns // 1_000_000 % 1000:03d}Z"


def _parse(stamp: str, ms: str) -> int:
    return (int(datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC).timestamp()) * 1000 + int(ms)) * 1_000_000


def segment_file_name(start_ns: int, end_ns: int) -> str:
    return f"{_stamp(start_ns)}_{_stamp(end_ns)}.parquet"


@dataclass(frozen=True)
class SegmentFile:
    path: Path
    start_ns: int  # first sample, to the millisecond below
    end_ns: int  # last sample, to the millisecond above
    size: int
    open: bool  # a part of the open segment


def _span(path: Path) -> tuple[int, int] | None:
    """A segment's first and last sample: from its name, else from its timestamp column's statistics."""
    match = _NAME.match(path.name)
    if match:
        return _parse(match[1], match[2]), _parse(match[3], match[4]) + 999_999
    try:
        metadata = pq.ParquetFile(path).metadata
        spans = [metadata.row_group(i).column(0).statistics for i in range(metadata.num_row_groups)]
        if not spans or any(s is None or not s.has_min_max for s in spans):
            return None
        return min(int(s.min) for s in spans), max(int(s.max) for s in spans)
    except (OSError, pa.ArrowException):
        return None


def list_segments(root: Path, with_open: bool = True, warn: bool = False) -> dict[str, list[SegmentFile]]:
    """Per node directory (a directory of segments itself: ""), its segments in time order. A file whose time span
    cannot be told is left out (with a warning if `warn`); the reader skips other damaged ones with a warning."""
    found: dict[str, list[SegmentFile]] = {}
    dirs = [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))] \
        if root.is_dir() else []
    for folder in dirs:
        files = [(p, False) for p in folder.glob("*.parquet") if not p.name.startswith(".")]
        if with_open:
            files += [(p, True) for p in (folder / OPEN).glob("*.parquet")]
        entries = []
        for path, is_open in files:
            span = _span(path)
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if span is not None:
                entries.append(SegmentFile(path, span[0], span[1], size, is_open))
            elif warn:
                log.warning("skipping a segment: %s: not a readable recording", path)
        if entries:
            found["" if folder == root else folder.name] = sorted(entries, key=lambda s: (s.start_ns, s.end_ns))
    return found


def close_open(node: Path) -> int:
    """Close what a node's open segment holds: each journal into a closed segment (named by its first and last
    sample), parts of the previous layout merged into one; returns the rows closed (0: nothing to close)."""
    _finish_closing(node)
    parts = node / OPEN
    if not parts.is_dir():
        return 0
    for stale in parts.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    rows = 0
    for path in sorted(parts.glob(f"*{journal.SUFFIX}")):
        rows += close_journal(path, node, [p for p in parts.glob(f"{path.stem}-*.parquet")])
    if any(parts.glob("*.parquet")):  # a data dir of the previous layout: parts merged (temporary name, rename)
        rows += merge(parts, node / CLOSING)
        shutil.rmtree(parts, ignore_errors=True)
        _finish_closing(node)
    _remove_if_empty(parts)
    return rows


def close_journal(path: Path, node: Path, parts: list[Path]) -> int:
    """A journal as a closed segment of `node`, then the journal and its `parts` removed; returns the rows. A
    journal that cannot be read is left aside (renamed `.damaged`) with a warning."""
    try:
        recorded = journal.read(path)
    except journal.JournalError as exc:
        log.warning("skipping an open segment: %s", exc)
        path.rename(path.with_name(f"{path.name}.damaged"))
        return 0
    rows = 0
    if recorded.stamps:
        rows = journal.write_segment(recorded, node / segment_file_name(recorded.stamps[0], recorded.stamps[-1]))
    for part in parts:  # the segment is in place: the parts first, so that no part outlives its journal
        part.unlink(missing_ok=True)
    path.unlink()
    return rows


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or gone
        folder.rmdir()


def _finish_closing(node: Path) -> None:
    closing = node / CLOSING
    if not closing.exists():
        return
    try:
        stamps = pq.read_table(closing, columns=["timestamp"]).column(0).to_numpy()
    except (OSError, pa.ArrowException) as exc:
        log.warning("%s: unreadable (%s); left aside", closing, exc)
        closing.rename(closing.with_name(f"{CLOSING}.damaged"))
        return
    if len(stamps):
        os.replace(closing, node / segment_file_name(int(stamps.min()), int(stamps.max())))
    else:
        closing.unlink()


def recover(root: Path) -> int:
    """Close what a killed run left open in every node directory; returns the rows recovered."""
    rows = 0
    for node in (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else ():
        for stale in node.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        rows += close_open(node)
    return rows


def enforce_retention(root: Path, keep_ns: int, keep_bytes: int, now_ns: int) -> list[Path]:
    """Delete closed segments older than `keep_ns`, then the oldest until all of them fit in `keep_bytes`. A
    segment's rollups (`ROLLUPS`) count in its size and go with it."""
    closed = sorted((s for files in list_segments(root, with_open=False).values() for s in files),
                    key=lambda s: s.end_ns)
    derived = {s.path: _derived(s.path) for s in closed}
    sizes = {s.path: s.size + sum(size for _, size in derived[s.path]) for s in closed}
    total = sum(sizes.values())
    deleted = []
    for segment in closed:
        if segment.end_ns >= now_ns - keep_ns and total <= keep_bytes:
            break
        try:
            segment.path.unlink()
        except OSError as exc:
            log.warning("could not delete %s: %s", segment.path, exc)
            continue
        for path, _ in derived[segment.path]:
            path.unlink(missing_ok=True)
        total -= sizes[segment.path]
        deleted.append(segment.path)
    return deleted


def _derived(segment: Path) -> list[tuple[Path, int]]:
    """The files made from a segment (its rollups) and their sizes."""
    found = []
    for path in (segment.parent / ROLLUPS).glob(f"{segment.stem}.*"):
        with contextlib.suppress(OSError):
            found.append((path, path.stat().st_size))
    return found


class HistoryWriter(SegmentWriter):
    """The data dir's writer: each agent's rows into the journal of its node's open segment (appended every
    `flush_s`), closed into a segment when it spans `segment_ns`, retention after each close."""

    def __init__(self, root: Path, interval_ms: int, nodes: dict[str, str], dirs: dict[str, str], *,
                 segment_ns: int, keep_ns: int, keep_bytes: int, footer: Callable[[], dict[str, Any]] = dict,
                 flush_s: float | None = None):
        super().__init__(interval_ms, nodes, lambda: {**footer(), FORMAT_KEY: FORMAT}, flush_s or JOURNAL_FLUSH_S)
        self.root = root
        self.dirs = dirs  # agent url -> its directory's name
        self.segment_ns = segment_ns
        self.keep_ns = keep_ns
        self.keep_bytes = keep_bytes
        self.closed = False
        self._open: dict[str, journal.Journal] = {}  # agent url -> the journal of its open segment
        self._full: list[tuple[str, journal.Journal]] = []  # journals to close (full, or cut short by a fault)
        self._last: dict[str, int] = {}  # agent url -> its last sample
        self._segments = 0  # journals begun by this run
        self._retained = False  # retention enforced once by this run
        self._run = 0
        try:
            for name in dirs.values():
                (root / name).mkdir(parents=True, exist_ok=True)
                runs = [int(p.name.split("-")[0]) for p in (root / name / OPEN).glob("[0-9]*-*")]
                self._run = max([self._run, *(run + 1 for run in runs)])
        except (OSError, ValueError) as exc:
            self._failed(exc)
        self.start()

    def describe(self) -> str:
        return f"data dir {self.root}"

    def add(self, agent: str, snapshot: Any) -> None:
        with self._lock:
            if self._closing or snapshot.timestamp_ns <= self._last.get(agent, -1):
                return  # a recording's time only moves forward
            found = self._open.get(agent)
            if found is None:
                path = self.root / self.dirs[agent] / OPEN / f"{self._run:04d}-{self._segments:06d}{journal.SUFFIX}"
                found = self._open[agent] = journal.Journal(path, self.nodes.get(agent), self.interval_ms)
                self._segments += 1
            found.add(snapshot)
            self._last[agent] = snapshot.timestamp_ns
            self.rows += 1
            # By the agents' clocks (samples), not ours: a segment spans `segment_ns` of samples.
            assert found.first_ns is not None and found.last_ns is not None
            if found.last_ns - found.first_ns >= self.segment_ns:
                self._full.append((agent, self._open.pop(agent)))
                self._wake.set()

    def tick(self) -> None:
        """Append the journals, and close the full ones (retention after each close, and once at the start)."""
        with self._writing:
            self._append()
            if not self._retained:
                self._retain()

    def rotate(self) -> None:
        """Make the disk hold every row taken so far: append the journals, close the full ones, and write the open
        rows not yet in a part as one more part."""
        with self._writing:
            for agent, open_journal in self._append():
                self._part(agent, open_journal)

    def _append(self) -> list[tuple[str, journal.Journal]]:
        """Append what each journal has pending (the full ones too) and close the full ones; returns the open
        journals."""
        footer = self.footer()
        with self._lock:
            full, self._full = self._full, []
            opened = list(self._open.items())
            taken = []
            for agent, one in full + opened:
                one.footer(footer)
                taken.append((agent, one, one.take()))
        for agent, one, data in taken:
            if one.broken or not data:
                continue
            try:
                one.append(data)
            except OSError as exc:  # e.g. a full disk: say so (once); the next rows begin another journal
                self._failed(exc)
                one.broken = True
                one.close()
                with self._lock:
                    if self._open.get(agent) is one:
                        full.append((agent, self._open.pop(agent)))
                continue
            if self.fault is not None:
                log.warning("%s: writing again", self.describe())
            self.fault = None
        if full and self.fault is None:
            for agent, one in full:
                self._close(agent, one)
            self._retain()
        elif full:  # closed once writing works again
            with self._lock:
                self._full = full + self._full
        return [(agent, one) for agent, one in opened if not one.broken]

    def _close(self, agent: str, one: journal.Journal) -> None:
        one.close()
        node = self.root / self.dirs[agent]
        try:
            if one.path.exists():
                close_journal(one.path, node, one.parts)
        except (OSError, ValueError, pa.ArrowException) as exc:
            self._failed(exc)
            return
        _remove_if_empty(node / OPEN)

    def _part(self, agent: str, one: journal.Journal) -> None:
        """The rows of an open journal not yet in a part, as one more part."""
        if one.last_ns is None or one.last_ns == one.parted_ns or not one.path.exists():
            return
        path = one.path.with_name(f"{one.path.stem}-{len(one.parts):06d}.parquet")
        try:
            recorded = journal.read(one.path)  # (rows added since the append are in the next part)
            if not journal.write_segment(recorded, path, one.parted_ns):
                return
        except (OSError, ValueError, pa.ArrowException) as exc:
            self._failed(exc)
            return
        one.parts.append(path)
        one.parted_ns = recorded.stamps[-1]

    def _retain(self) -> None:
        self._retained = True
        try:
            enforce_retention(self.root, self.keep_ns, self.keep_bytes, time.time_ns())
        except OSError as exc:
            log.warning("%s: retention: %s", self.describe(), exc)

    def close(self) -> None:
        """Append and close every journal."""
        if self.closed:
            return
        self.closed = True
        with self._lock:
            self._closing = True
            self._full += list(self._open.items())
            self._open = {}
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        with self._writing:
            self._append()


@dataclass(frozen=True)
class HistorySettings:
    """`serve --live --data-dir DIR --segment D --keep D --keep-size N`."""

    root: Path
    segment_ns: int
    keep_ns: int
    keep_bytes: int


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(text: str) -> int:
    """Bytes from `10GB`, `500MB`, `1.5G`, `20GiB` or a plain number."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 10GB, 500MB)")
    unit = match[2].lower()
    scale = _UNITS[unit[:1] if unit[:1] != "b" else ""]
    if "i" in unit:
        scale = 1024 ** "bkmgt".index(unit[0]) if unit[0] != "b" else 1
    return int(float(match[1]) * scale)
