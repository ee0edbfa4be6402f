"""Live history on disk (`serve --live --data-dir DIR`): rolling Rezolus segments, one directory per node.

    DIR/<node>/20261207T230000.000Z_20261207T230959.000Z.parquet   closed segments, named by first and last sample
    DIR/<node>/.open/RUN-000-SEQ.parquet                           the open segment: complete parts, ≤ 1 min each
    DIR/<node>/.closing.parquet                                    a closed segment not yet under its name

Every file is a complete Rezolus recording (`rezgen build`, `rezgen query` and Rezolus open any of them). The
parts of the open segment are written at least once a minute (`segment_writer`), so a kill -9 loses at most that
minute; once they span `--segment`, they are merged into one segment (`segments.merge`: temporary name, rename)
and removed. A start after a crash closes what the last run left open (`recover`). Retention deletes the oldest
closed segments beyond `--keep` (age) or `--keep-size` (bytes).
"""

from __future__ import annotations

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

from rezgen.live.segment_writer import SEGMENT_BYTES, Part, SegmentWriter
from rezgen.live.segments import merge, segment_name, streams

log = logging.getLogger(__name__)

OPEN = ".open"
CLOSING = ".closing.parquet"
FORMAT_KEY = "rezgen_segment"  # footer key: the data dir's segment format, so another version's files are told
FORMAT = "1"
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
    """Merge the open segment's parts into one closed segment (named by its first and last sample); returns its
    rows (0: nothing to close). The parts go once the segment is complete under a hidden name, before it gets its
    own: a crash at any point leaves either the parts or that file, never both."""
    _finish_closing(node)
    parts = node / OPEN
    if not parts.is_dir():
        return 0
    for stale in parts.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    rows = merge(parts, node / CLOSING)
    shutil.rmtree(parts, ignore_errors=True)
    _finish_closing(node)
    return rows


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
    """Delete closed segments older than `keep_ns`, then the oldest until all of them fit in `keep_bytes`."""
    closed = sorted((s for files in list_segments(root, with_open=False).values() for s in files),
                    key=lambda s: s.end_ns)
    total = sum(s.size for s in closed)
    deleted = []
    for segment in closed:
        if segment.end_ns >= now_ns - keep_ns and total <= keep_bytes:
            break
        try:
            segment.path.unlink()
        except OSError as exc:
            log.warning("could not delete %s: %s", segment.path, exc)
            continue
        total -= segment.size
        deleted.append(segment.path)
    return deleted


class HistoryWriter(SegmentWriter):
    """The data dir's writer: parts into each node's open segment, closed every `segment_ns`, retention after."""

    def __init__(self, root: Path, interval_ms: int, nodes: dict[str, str], dirs: dict[str, str], *,
                 segment_ns: int, keep_ns: int, keep_bytes: int, footer: Callable[[], dict[str, Any]] = dict,
                 flush_s: float | None = None, segment_bytes: int = SEGMENT_BYTES):
        super().__init__(interval_ms, nodes, lambda: {**footer(), FORMAT_KEY: FORMAT}, flush_s, segment_bytes)
        self.root = root
        self.dirs = dirs  # agent url -> its directory's name
        self.segment_ns = segment_ns
        self.keep_ns = keep_ns
        self.keep_bytes = keep_bytes
        self.closed = False
        self._opened: dict[str, tuple[int, int]] = {}  # agent url -> first and last sample of its open segment
        self._run = 0
        try:
            for name in dirs.values():
                (root / name).mkdir(parents=True, exist_ok=True)
                self._run = max([self._run, *(run + 1 for run, _ in streams(root / name / OPEN))])
        except OSError as exc:
            self._failed(exc)
        self.start()

    def describe(self) -> str:
        return f"data dir {self.root}"

    def part_path(self, part: Part) -> Path:
        folder = self.root / self.dirs[part.agent] / OPEN
        folder.mkdir(parents=True, exist_ok=True)
        return folder / segment_name(self._run, 0, part.seq)

    def written(self, part: Part, path: Path) -> None:
        first = self._opened.get(part.agent, (part.rows[0].t_ns, 0))[0]
        self._opened[part.agent] = (first, part.rows[-1].t_ns)

    def rotated(self) -> None:
        # By the agents' clocks (samples), not ours: a segment spans `segment_ns` of samples.
        for agent, (first, last) in list(self._opened.items()):
            if last - first >= self.segment_ns:
                self._close(agent)
        try:
            enforce_retention(self.root, self.keep_ns, self.keep_bytes, time.time_ns())
        except OSError as exc:
            log.warning("%s: retention: %s", self.describe(), exc)

    def _close(self, agent: str) -> None:
        try:
            close_open(self.root / self.dirs[agent])
        except (OSError, pa.ArrowException) as exc:
            self._failed(exc)
            return
        del self._opened[agent]

    def close(self) -> None:
        """Write what is buffered and close every open segment."""
        if self.closed:
            return
        self.closed = True
        self.stop()
        for agent in list(self._opened):
            self._close(agent)


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
