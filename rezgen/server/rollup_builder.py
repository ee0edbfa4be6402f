"""The live server's rollup builder: a background thread that rolls up the closed segments without a current
rollup, newest first, whoever wrote them (this run, an earlier one, another tool), so the writer needs no hook.

It looks again every `EVERY_S` seconds, and removes rollups whose segment is gone (retention) or that are stale
(made for other dashboards). A segment that cannot be rolled up is said once in the log and left to the raw path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rezgen.dashboards import Section
from rezgen.live.datadir import SegmentFile, list_segments
from rezgen.promql.limits import trim_heap
from rezgen.server.rollups import DIR, Rollup, rollup_path, segment_rollup, write_rollup
from rezgen.store.store import Store

log = logging.getLogger(__name__)

EVERY_S = 5.0


class RollupBuilder:
    def __init__(self, root: Path, key: str, sections: Callable[[Store], list[Section]], step_ns: int):
        self.root, self.key, self.sections, self.step_ns = root, key, sections, step_ns
        self.built = 0
        self.cpu_s = 0.0  # this thread's CPU time spent building
        self._failed: set[Path] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rezgen-rollups", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def pending(self) -> list[tuple[list[SegmentFile], int]]:
        """(a node's closed segments, the index of one without a current rollup), newest first."""
        found = []
        for files in list_segments(self.root, with_open=False).values():
            found += [(files, at) for at, segment in enumerate(files)
                      if segment.path not in self._failed and not rollup_path(segment.path, self.key).exists()]
        return sorted(found, key=lambda item: -item[0][item[1]].start_ns)

    def build_pending(self) -> int:
        """Roll up every pending segment (until stopped); the number built."""
        built = 0
        for files, at in self.pending():
            if self._stop.is_set():
                break
            if self.build(files, at):
                built += 1
        self.prune()
        return built

    def build(self, files: list[SegmentFile], at: int) -> bool:
        segment = files[at]
        started = time.thread_time()
        try:
            rollup = segment_rollup(files, at, self.sections, self.step_ns) or Rollup(0, 0, 0, -1, {})
            write_rollup(rollup_path(segment.path, self.key), rollup)
        except Exception as exc:  # never fatal: the raw path still answers for this segment
            self._failed.add(segment.path)
            log.warning("could not roll up %s: %s: %s", segment.path, type(exc).__name__, exc)
            return False
        finally:
            self.cpu_s += time.thread_time() - started
            trim_heap()
        self.built += 1
        return True

    def prune(self) -> None:
        """Remove rollups whose segment is gone or that were made for other dashboards."""
        for files in list_segments(self.root, with_open=False).values():
            folder = files[0].path.parent / DIR
            if not folder.is_dir():
                continue
            current = {rollup_path(s.path, self.key).name for s in files}
            for path in folder.iterdir():
                if path.name not in current and not path.name.startswith("."):
                    path.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        return {"built": self.built, "cpu_s": round(self.cpu_s, 3), "pending": len(self.pending()),
                "failed": len(self._failed)}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.build_pending()
            except OSError as exc:  # the data dir went away or cannot be listed: try again later
                log.warning("rollups: %s", exc)
            self._stop.wait(EVERY_S)
