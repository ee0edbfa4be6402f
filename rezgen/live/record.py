"""`serve --live --record FILE`: write what the agents send as a Rezolus-format recording (format doc §1,
agent-protocol §3.4) that `rezgen build` and Rezolus can open.

The parts (`segment_writer`) go to `FILE.parts/` (see `segments`). Closing writes the last parts and merges them
all into FILE. A kill -9 loses at most the buffered minute; the next start with the same FILE recovers the parts
left behind (`recover`) and continues from them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rezgen.live.segment_writer import SEGMENT_BYTES, Part, SegmentWriter
from rezgen.live.segments import merge, remove_temporaries, segment_name, sidecar, streams


def recover(path: Path) -> int:
    """Merge the segments a killed session left beside `path` into it; returns the rows written (0: none left).
    The segments stay, so the next session continues the same recording."""
    remove_temporaries(path)
    return merge(sidecar(path), path)


class LiveRecorder(SegmentWriter):
    def __init__(self, path: Path, interval_ms: int, nodes: dict[str, str],
                 footer: Callable[[], dict[str, Any]] = dict, segment_s: float | None = None,
                 segment_bytes: int = SEGMENT_BYTES):
        super().__init__(interval_ms, nodes, footer, segment_s, segment_bytes)
        self.path = Path(path)
        self.parts = sidecar(self.path)
        self.parts.mkdir(exist_ok=True)
        self._run = max((run for run, _ in streams(self.parts)), default=-1) + 1
        self._closed: int | None = None
        self.start()

    def describe(self) -> str:
        return f"recording {self.path}"

    def part_path(self, part: Part) -> Path:
        return self.parts / segment_name(self._run, part.index, part.seq)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def close(self) -> int:
        """Write the last segments and merge every segment (earlier sessions' too) into the recording; returns its
        rows (0: nothing was written). The segments are removed only once the recording is in place."""
        if self._closed is not None:
            return self._closed
        self.stop()
        remove_temporaries(self.path)
        self._closed = merge(self.parts, self.path)
        shutil.rmtree(self.parts, ignore_errors=True)
        return self._closed
