"""`rezgen build DIR --start T --end T`: a data dir (or any directory of segments, or one recording) cut to a range
and merged into one recording, which the build then renders like any other.

The merge is the one `--record` uses (`live.segments`: streamed, a batch per segment at a time, union of rows and
columns), over each node directory's segments that overlap the range; a segment that cannot be read, or one of
another format version, is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rezgen.errors import RezgenError
from rezgen.live.datadir import list_segments
from rezgen.live.history import overlapping
from rezgen.live.refill import open_segment
from rezgen.live.segments import merge_streams
from rezgen.recording.reader import Recording, open_recording

EVER = (0, 2**63 - 1)


class HistoryError(RezgenError):
    """No samples to build from; the message is one line for the user."""


def history_recording(source: Path, target: Path, start_ns: int | None = None, end_ns: int | None = None) -> int:
    """Write the samples of `source` within [start_ns, end_ns] to `target`; returns the rows written."""
    lo, hi = start_ns if start_ns is not None else EVER[0], end_ns if end_ns is not None else EVER[1]
    if lo > hi:
        raise HistoryError("--start is after --end")
    if source.is_dir():
        streams = [[s.path for s in overlapping(files, lo, hi) if open_segment(s.path) is not None]
                   for files in list_segments(source, warn=True).values()]
    elif open_segment(source) is not None:
        streams = [[source]]
    else:
        raise HistoryError(f"{source}: not a readable recording")
    rows = merge_streams([s for s in streams if s], target, lo, hi)
    if not rows:
        raise HistoryError(f"{source}: no samples in the range asked for")
    return rows


@contextlib.contextmanager
def ranged_recording(path: Path, start_ns: int | None, end_ns: int | None, beside: Path) -> Iterator[Recording]:
    """The recording `rezgen build` reads: the file itself, or (a directory of segments, or a range) the samples
    within [start_ns, end_ns] merged into a temporary file next to `beside`, removed afterwards."""
    if not path.is_dir() and start_ns is None and end_ns is None:
        yield open_recording(path)
        return
    beside.absolute().parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=beside.absolute().parent, prefix=".rezgen-range-") as work:
        merged = Path(work) / f"{path.absolute().name.removesuffix('.parquet')}.parquet"
        history_recording(path, merged, start_ns, end_ns)
        yield open_recording(merged)
