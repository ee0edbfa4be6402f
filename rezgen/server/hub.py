"""Push new plot points to open pages: one SSE stream per page, computed once per section and host.

Live points sit on a fixed grid (anchor + k * interval, like the static site's steps). When snapshots arrive,
each watched (section, host) computes only the steps that became computable, once, and every page watching it
gets the same event, serialised once.

The grid sits half a step after the agent's samples, and a step counts as computable once the newest sample is
at most `LEAD` steps before it: the next sample is due a whole interval after the newest one, so nothing can
still land in (newest, step] unless samples come more than a quarter interval early. A grid on the samples
themselves would, with any jitter, wait a whole interval for the sample after a step half the time. An event's id
is the time (ms) of its last step, so a page that reconnects with `Last-Event-ID` receives exactly the steps after
it that are still in the window. Nothing queues per client: a page that fell behind (slow network, paused tab)
gets one coalesced event covering everything it missed, and a page too far behind is told to reload its data
instead.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sse_starlette import ServerSentEvent

from rezgen.dashboards import Section
from rezgen.live.ingest import Ingest
from rezgen.plotdata.evaluation import Scope
from rezgen.plotdata.plots import TimeRange
from rezgen.plotdata.topk import TopK

MAX_BACKFILL_STEPS = 1000  # beyond this a page reloads its data rather than receive points
IDLE_SECONDS = 60  # a section nobody watched for this long stops being computed
STATUS_EVERY = 3.0  # seconds without points after which a stream repeats the agents' status
LEAD = 0.75  # how far (in steps) the newest sample may be before a step for that step to be computed


@dataclass
class Update:
    first_ms: int  # first step in this update
    last_ms: int  # last step (the SSE event id)
    plots: dict[str, Any]
    at_ms: int = field(default_factory=lambda: int(time.time() * 1000))  # when it was computed (wall clock)
    status: str | None = None  # the agents' status (JSON) when it was computed

    @functools.cached_property
    def body(self) -> str:
        """The `points` event's data, built once however many pages receive it."""
        return json.dumps({"first": self.first_ms, "last": self.last_ms, "at": self.at_ms, "plots": self.plots},
                          allow_nan=False)


@dataclass
class Subscription:
    section: Section
    scope: Scope  # the labels of the host it shows (see pages.model.host_scope)
    last_ms: int | None = None  # newest step computed
    latest: Update | None = None
    watchers: int = 0
    known: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # plot id -> kind, series names sent
    ranks: TopK = field(default_factory=TopK)  # which series of its multi-series plots get a line of their own
    idle_since: float = field(default_factory=time.monotonic)
    # Resolved, then dropped, when `latest` changes. Waiters only watch it (asyncio.wait never cancels what it
    # waits on), so a page that leaves at any moment takes nothing with it: no lock to give back, no waiter to
    # wake. (An asyncio.Condition here wedged the hub: a disconnect cancelled wait_for mid-reacquire.)
    _next: asyncio.Future[None] | None = None

    def publish(self, update: Update) -> None:
        self.latest = update
        if self._next is not None and not self._next.done():
            self._next.set_result(None)
        self._next = None

    async def newer_than(self, cursor: int | None, timeout: float) -> Update | None:
        """The latest update if it is past `cursor`, waiting up to `timeout` seconds for one; None if none came."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.latest is None or (cursor is not None and self.latest.last_ms <= cursor):
            left = deadline - loop.time()
            if left <= 0:
                return None
            if self._next is None:
                self._next = loop.create_future()
            await asyncio.wait((self._next,), timeout=left)
        return self.latest


class Hub:
    def __init__(self, ingest: Ingest, interval_ns: int, status: Callable[[], dict[str, Any]]):
        self.ingest = ingest
        self.step_ns = interval_ns
        self.anchor_ns: int | None = None
        self.status = status
        self._subs: dict[tuple[str, Scope], Subscription] = {}
        self._wake = asyncio.Event()

    def grid_until(self, t_ns: int) -> int | None:
        """The last grid step at or before t_ns."""
        if self.anchor_ns is None:
            return None
        return self.anchor_ns + (t_ns - self.anchor_ns) // self.step_ns * self.step_ns

    def newest_step(self, newest_ns: int) -> int | None:
        """The last step that can be computed when the newest sample is at newest_ns (see the module's note)."""
        return self.grid_until(newest_ns + int(self.step_ns * LEAD))

    def notify(self) -> None:
        """Called on the event loop after each ingested snapshot."""
        if self.anchor_ns is None and self.ingest.newest_ns is not None:
            self.anchor_ns = -(-(self.ingest.newest_ns + self.step_ns // 2) // 1_000_000) * 1_000_000
        self._wake.set()

    async def run(self) -> None:
        """Compute new points for every watched section whenever data arrives (coalescing bursts)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for key, sub in list(self._subs.items()):
                if sub.watchers == 0 and time.monotonic() - sub.idle_since > IDLE_SECONDS:
                    del self._subs[key]
                    continue
                update = await asyncio.to_thread(self._advance, sub)
                if update is not None:
                    update.status = json.dumps(self.status())
                    sub.publish(update)

    def _advance(self, sub: Subscription) -> Update | None:
        newest = self.ingest.newest_ns
        end = self.newest_step(newest) if newest is not None else None
        if end is None:
            return None
        end_ms = end // 1_000_000
        if sub.last_ms is not None and end_ms <= sub.last_ms:
            return None
        start_ms = end_ms if sub.last_ms is None else sub.last_ms + self.step_ns // 1_000_000
        update = self.points(sub.section, sub.scope, start_ms, end_ms, sub.known, sub.ranks)
        sub.last_ms = end_ms
        return update

    def points(self, section: Section, scope: Scope, first_ms: int, last_ms: int,
               known: dict[str, tuple[str, list[str]]] | None = None, ranks: TopK | None = None) -> Update:
        """The plots' values at the grid steps between first_ms and last_ms (inclusive).

        `known` (plot id -> kind and series names already sent) keeps a plot in the update when these steps have
        no value at all, as explicit nulls: that is how a page learns of an outage."""
        span = TimeRange(first_ms * 1_000_000, last_ms * 1_000_000, self.step_ns)
        plots: dict[str, Any] = {}
        ranks = ranks or TopK()
        with self.ingest.lock:
            bounds = self.ingest.store.time_range()
            oldest = bounds[0] if bounds else span.start_ns
            for plot in section.plots:
                data = ranks.plot_data(self.ingest.store, plot, span, scope, oldest)
                if data is not None and "error" not in data:  # a failed plot's card shows its error; no points
                    finest = data["levels"][-1]
                    plots[plot.id] = {"kind": data["kind"], "names": data["names"], "t": finest["t"],
                                      "values": finest["values"]}
                    if known is not None:
                        known[plot.id] = (data["kind"], data["names"])
                elif known and plot.id in known:
                    kind, names = known[plot.id]
                    steps = [t // 1_000_000 for t in span.times.tolist()]
                    plots[plot.id] = {"kind": kind, "names": names, "t": steps,
                                      "values": [[None] * len(steps) for _ in names]}
        return Update(first_ms, last_ms, plots)

    def subscription(self, section: Section, scope: Scope) -> Subscription:
        """The one subscription of a section and host, made on first use (by a page's first load or stream)."""
        key = (section.route, scope)
        return self._subs.get(key) or self._subs.setdefault(key, Subscription(section, scope))

    def adopt(self, section: Section, scope: Scope, loaded: dict[str, dict[str, Any]], window_ns: int) -> None:
        """A page's first load of the section over the last `window_ns`: its updates keep the series it ranked."""
        self.subscription(section, scope).ranks.adopt(section.plots, loaded, window_ns)

    async def stream(self, section: Section, scope: Scope, last_event_id: str | None
                     ) -> AsyncIterator[ServerSentEvent]:
        sub = self.subscription(section, scope)
        sub.watchers += 1
        self._wake.set()
        cursor = _parse_id(last_event_id)
        try:
            yield ServerSentEvent(json.dumps(self.status()), event="status")
            while True:
                update = await sub.newer_than(cursor, STATUS_EVERY)
                if update is None:  # no new points for a while (an agent may be down): say how things stand
                    yield ServerSentEvent(json.dumps(self.status()), event="status")
                    continue
                if cursor is not None and cursor + self.step_ns // 1_000_000 < update.first_ms:
                    update = await self._catch_up(sub, cursor, update)
                if update is None:
                    yield ServerSentEvent(json.dumps({"reason": "too far behind"}), event="reset")
                    cursor = sub.latest.last_ms if sub.latest else None
                    continue
                cursor = update.last_ms
                yield ServerSentEvent(update.body, event="points", id=str(update.last_ms))
                yield ServerSentEvent(update.status or json.dumps(self.status()), event="status")
        finally:
            sub.watchers -= 1
            sub.idle_since = time.monotonic()

    async def _catch_up(self, sub: Subscription, cursor: int, latest: Update) -> Update | None:
        """One update from just after `cursor` to the latest step, or None when that is too much to send."""
        step_ms = self.step_ns // 1_000_000
        oldest = self._window_start_ms()
        first = max(cursor + step_ms, oldest if oldest is not None else cursor + step_ms)
        first = first + (latest.last_ms - first) % step_ms  # stay on the grid
        if (latest.last_ms - first) // step_ms > MAX_BACKFILL_STEPS:
            return None
        return await asyncio.to_thread(self.points, sub.section, sub.scope, first, latest.last_ms, dict(sub.known),
                                       sub.ranks)

    def _window_start_ms(self) -> int | None:
        with self.ingest.lock:
            bounds = self.ingest.store.time_range()
        return None if bounds is None else -(-bounds[0] // 1_000_000)


def _parse_id(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
