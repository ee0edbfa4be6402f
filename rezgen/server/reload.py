"""Rebuild the site when its inputs change and tell open pages to reload (`rezgen serve RECORDING`).

Every rebuild attempt bumps `generation`; a successful one also bumps `epoch`, a failed one keeps the last good
site on disk and records the error. Each open page holds one SSE stream: it first receives the current state
("hello"), then one event per rebuild attempt — "reload" when a new site is in place, "error" otherwise — much
like mkdocs' epoch-based live reload, so a page that reconnects after a server restart can tell it is stale.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sse_starlette import ServerSentEvent
from watchfiles import Change, awatch

log = logging.getLogger(__name__)

Build = Callable[[], None]


class Reloader:
    def __init__(self, build: Build, watched: list[Path]):
        self._build = build
        self.watched = [p.resolve() for p in watched]
        self.generation = 0
        self.epoch = 0
        self.error: str | None = None
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _relevant(self, change: Change, path: str) -> bool:
        target = Path(path).resolve()
        return any(target == p or p in target.parents for p in self.watched)

    async def watch(self, stop: asyncio.Event) -> None:
        """Watch the inputs until `stop` is set; rebuild after each burst of changes."""
        roots = sorted({str(p if p.is_dir() else p.parent) for p in self.watched})
        async for _ in awatch(*roots, watch_filter=self._relevant, stop_event=stop, debounce=300):
            await self.rebuild()

    async def rebuild(self) -> None:
        try:
            await asyncio.to_thread(self._build)
        except Exception as exc:  # any failure keeps the last good site; the pages show the message
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error("rebuild failed: %s", self.error)
        else:
            self.error = None
            self.epoch += 1
            log.info("rebuilt; reloading open pages")
        async with self._condition():
            self.generation += 1
            self._condition().notify_all()

    def _state(self) -> str:
        return json.dumps({"epoch": self.epoch, "error": self.error})

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        seen = self.generation
        yield ServerSentEvent(self._state(), event="hello")
        while True:
            async with self._condition():
                # wait_for calls the predicate only before it returns, so `seen` is this iteration's value
                await self._condition().wait_for(lambda: self.generation != seen)  # noqa: B023
                seen = self.generation
            yield ServerSentEvent(self._state(), event="error" if self.error else "reload")
