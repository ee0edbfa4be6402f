"""`AgentClient`: poll one Rezolus agent's `/metrics/binary` from a background thread (protocol §1, §5).

- One thread, one request at a time: a poll that overruns skips the ticks it missed (never queues them), like
  Rezolus's `MissedTickBehavior::Skip`. Ticks sit on a grid of `interval_s` whose phase follows the agent's
  sampling (`phase.PhaseLock`): an agent that samples on its own clock is polled just after each of its samples.
- Timeout per request (connect + whole body): `clamp(2 × interval, 2 s, 10 s)` as Rezolus uses; an agent can take
  ~75 ms to answer on a busy host, so a fast interval does not get a shorter timeout, it gets skipped ticks.
- A quick failed poll (refused, HTTP error, empty 200 — the exporter's upstream-failure answer —, an undecodable
  body) backs off: interval, ×2 each failure, up to max(5 s, interval); success resets it. A poll that failed
  slowly (timed out, a trickled body) retries at the next tick: its own wait was the back-off, and the agent is
  alive, so it is seen again within a tick or two of answering normally.
- One line per change of reachability (unreachable, connected again after N s), never one per poll: logged to
  `rezgen.agent.client`, or given to `log` instead (as the terminal shows it: `rezgen: agent URL: ...`).
- Snapshots with the `systemtime` already delivered are duplicates (the agent's 10 ms cache, or a poll before an
  agent's next sample) and skipped: the stamp at the head of the body is read first, the rest is not decoded.
- Clock: the agent's `systemtime` is kept as the timeline (it is what a recording would store). A stamp a little
  behind the last one (≤ max(1 s, 2 × interval)) is an out-of-order/stale answer and is dropped; a larger jump back
  is a clock step (NTP, a replaced host): dropping until the clock catches up could lose hours, so the client
  re-synchronises — it delivers the snapshot with `discontinuity="clock"` and follows the new clock from there.
- Agent restart: more counters went down than up, the snapshot's `version` or the `/` banner changed, or the
  agent's start time (now − `/status` uptime) moved on. The
  snapshot is delivered with `discontinuity="restart"` and `/`, `/systeminfo`, `/metrics/descriptions` are fetched
  again (once per agent run; 404 means "this agent does not have it", as for agents before 5.9).

Threading: `on_snapshot`, `on_info` and `on_state` run on the client's thread, one at a time; an asyncio server
should hand results to its loop with `loop.call_soon_threadsafe`. `state()` and `info` may be read from any
thread. An exception in a callback is recorded as a problem and polling goes on.
"""

from __future__ import annotations

import collections
import enum
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import msgpack
import numpy as np

from rezgen.agent.fetch import Fetcher, FetchError
from rezgen.agent.phase import MARGIN, PhaseLock
from rezgen.agent.pieces import Snapshot, SnapshotError, time_pair
from rezgen.agent.schema import SchemaCache
from rezgen.agent.snapshot import decode

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
RECENT_PROBLEMS = 20


class Status(str, enum.Enum):
    CONNECTED = "connected"  # the last poll succeeded
    RECONNECTING = "reconnecting"  # it was connected; polls have been failing for a short while
    DISCONNECTED = "disconnected"  # never connected yet, failing for long, or stopped


@dataclass(frozen=True)
class ClientState:
    url: str
    status: Status
    last_success: float | None = None  # wall time (time.time()) of the last good poll
    down_since: float | None = None  # wall time of the first failure of the current outage
    last_error: str | None = None  # one line
    retry_in: float | None = None  # the back-off before the next attempt while failing
    polls: int = 0
    failures: int = 0
    snapshots: int = 0  # delivered to on_snapshot
    duplicates: int = 0
    problems: int = 0  # decode problems and client-side ones (clock, callbacks)
    restarts: int = 0
    clock_steps: int = 0
    recent_problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentInfo:
    banner: str | None = None  # first line of `/`, e.g. "Rezolus 5.11.0 Agent"
    source: str | None = None  # first word of the banner
    version: str | None = None  # second word of the banner
    systeminfo: dict[str, Any] | None = None
    descriptions: dict[str, str] | None = None


def default_timeout(interval_s: float) -> float:
    return min(max(2 * interval_s, 2.0), 10.0)


def _stamp(body: bytes) -> int | None:
    """The systemtime (ns) at the head of a V1/V2/V3 snapshot, read without decoding the rest; None if unsure."""
    try:
        unpacker = msgpack.Unpacker()
        unpacker.feed(body[:32])
        if unpacker.read_array_header() not in (4, 5, 6):
            return None
        return time_pair(unpacker.unpack())
    except Exception:  # anything odd: the full decode says what
        return None


def node_name(url: str) -> str:
    """The `node` label of an agent's series when several agents are watched: its host and port."""
    return urlsplit(url if "//" in url else f"http://{url}").netloc or url


def _normalise(url: str) -> str:
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


class AgentClient:
    def __init__(self, url: str, interval_s: float, timeout_s: float | None = None, *,
                 on_snapshot: Callable[[Snapshot], None] | None = None,
                 on_info: Callable[[AgentInfo], None] | None = None,
                 on_state: Callable[[ClientState], None] | None = None,
                 schemas: SchemaCache | None = None, log: Callable[[str], None] | None = None,
                 offset_s: float = 0.0):
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.url = _normalise(url)
        self.interval_s = interval_s
        self.timeout_s = timeout_s if timeout_s is not None else default_timeout(interval_s)
        self.on_snapshot, self.on_info, self.on_state = on_snapshot, on_info, on_state
        self.log = log
        self.offset_s = offset_s  # where in the interval the first poll goes: spreads many agents' polls out
        self.schemas = schemas or SchemaCache()
        self.stale_tolerance_ns = int(max(1.0, 2 * interval_s) * 1e9)
        self.disconnect_after_s = max(10.0, 3 * interval_s)  # how long "reconnecting" lasts before "disconnected"
        self._lock = threading.Lock()
        self._state = ClientState(self.url, Status.DISCONNECTED)
        self._recent: collections.deque[str] = collections.deque(maxlen=RECENT_PROBLEMS)
        self._info = AgentInfo()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._anchor = self.next_due = 0.0  # the poll grid's origin and the next poll (monotonic; see begin)
        self._http = Fetcher(self.url, self.timeout_s)
        self._failing = 0  # consecutive failures
        self._need_info = True
        self._check_banner = False
        self._last_ts: int | None = None
        self._last_counters: tuple[list[str], np.ndarray] = ([], np.empty(0, dtype=np.uint64))  # names, values
        self._aligned: tuple[list[str] | None, np.ndarray | None] = (None, None)  # names list -> its named entries
        self._last_version: str | None = None
        self._started_at: float | None = None  # wall time the agent started, from `/status` uptime_seconds
        self.phase = PhaseLock(interval_s)
        self._move, self._again = 0.0, False  # what the last poll's stamp says about the grid (see PhaseLock)

    # --- public -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("AgentClient already started")
        self._thread = threading.Thread(target=self._run, name=f"agent {self.url}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling; returns once the thread has ended: at once between polls, within the timeout during one.
        The final `on_state(disconnected)` runs on the caller's thread."""
        self._stop.set()
        self._http.close()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.timeout_s + 1)
        self._update(status=Status.DISCONNECTED, retry_in=None)

    def state(self) -> ClientState:
        with self._lock:
            return self._state

    @property
    def info(self) -> AgentInfo:
        with self._lock:
            return self._info

    def __enter__(self) -> AgentClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- loop -------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        self.begin()
        while not self._stop.is_set():
            delay = self.next_due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self.step()

    def begin(self) -> None:
        """Set the grid: the first poll is due `offset_s` from now (`rezgen.agent.poller` calls this, then `step`
        whenever `next_due` comes, instead of `start`)."""
        self._anchor = time.monotonic() + self.offset_s
        self.next_due = self._anchor

    def step(self) -> None:
        """One poll, then `next_due` (monotonic) is when the next one goes."""
        started, tick = time.monotonic(), self.next_due
        self._move, self._again = 0.0, False
        ok = self._tick()
        now = time.monotonic()
        if ok or now - started >= self.interval_s:
            self._anchor += self._move
            # The next grid point after now: ticks a slow poll overran are skipped, not queued.
            anchor = self._anchor
            self.next_due = anchor + (int((now - anchor) / self.interval_s) + 1) * self.interval_s
            if ok and self._again:  # too early for the agent's sample: once more, at the moved tick
                self.next_due = min(self.next_due, max(now + MARGIN, tick + self._move))
            if not ok:
                self._update(retry_in=self.next_due - now)
        else:
            backoff = min(self.interval_s * 2 ** (self._failing - 1), max(MAX_BACKOFF_S, self.interval_s))
            self._update(retry_in=backoff)
            self.next_due = now + backoff

    def _tick(self) -> bool:
        try:
            status, body = self._http.get("/metrics/binary")
            if status != 200:
                raise FetchError(f"HTTP {status} from /metrics/binary")
            if not body:
                raise FetchError("empty body (HTTP 200): no snapshot")
            if self._failing == 0 and self._last_ts is not None and _stamp(body) == self._last_ts:
                return self._repeated()  # the agent's last sample again: not worth a decode
            try:
                snapshot = decode(body, self.schemas)
            except SnapshotError as exc:
                raise FetchError(str(exc)) from None
        except FetchError as exc:
            if not self._stop.is_set():
                self._failed(str(exc))
            return False
        recovered = self._failing > 0
        self._failing = 0
        self._update(status=Status.CONNECTED, last_success=time.time(), down_since=None, retry_in=None,
                     polls=self._state.polls + 1)
        if recovered:
            self._check_banner = True  # after an outage: the same agent, or a new one?
            self.phase.reset()
        if self._last_ts is None or snapshot.timestamp_ns >= self._last_ts:
            self._move, self._again = self.phase.observe(snapshot.timestamp_ns / 1e9,
                                                         snapshot.timestamp_ns != self._last_ts)
        else:
            self.phase.reset()  # a step back: a clock step, a stale answer; learn the phase again
        self._deliver(snapshot)
        return True

    def _repeated(self) -> bool:
        """A poll answered with the snapshot already delivered (polled before the agent's next sample)."""
        assert self._last_ts is not None
        self._update(last_success=time.time(), retry_in=None, polls=self._state.polls + 1,
                     duplicates=self._state.duplicates + 1)
        self._move, self._again = self.phase.observe(self._last_ts / 1e9, False)
        return True

    def _failed(self, message: str) -> None:
        self._failing += 1
        self._http.reset()
        state = self._state
        down_since = state.down_since or time.time()
        was_up = state.status is not Status.DISCONNECTED
        status = Status.RECONNECTING if was_up and time.time() - down_since < self.disconnect_after_s \
            else Status.DISCONNECTED
        self._update(status=status, down_since=down_since, last_error=message, polls=state.polls + 1,
                     failures=state.failures + 1)
        if state.polls == 0:  # never connected: no change of state to report, but the terminal should know
            self._unreachable(self._state)

    def _deliver(self, snapshot: Snapshot) -> None:
        ts = snapshot.timestamp_ns
        if self._last_ts is not None and ts == self._last_ts:
            self._update(duplicates=self._state.duplicates + 1)
            return
        if self._last_ts is not None and ts < self._last_ts:
            back = self._last_ts - ts
            if back <= self.stale_tolerance_ns:
                self._problem(f"snapshot {back / 1e6:.0f} ms older than the last one; dropped")
                return
            self._problem(f"agent clock went back {back / 1e9:.1f} s; following the new clock")
            snapshot.discontinuity = "clock"
            self._update(clock_steps=self._state.clock_steps + 1)
        restarted = self._restarted(snapshot)
        if self._need_info or self._check_banner or restarted:
            banner, started = self._info.banner, self._started_at
            self._check_banner = False
            self._fetch_info()
            if banner is not None and self._info.banner is not None and banner != self._info.banner:
                restarted = True  # a new agent binary behind the same address
            if started is not None and self._started_at is not None and \
                    self._started_at - started > max(5.0, 2 * self.interval_s):
                restarted = True  # its uptime (`/status`, 5.16+) began again
        if restarted:
            snapshot.discontinuity = snapshot.discontinuity or "restart"
            self._update(restarts=self._state.restarts + 1)
        self._last_ts = ts
        for problem in snapshot.problems:
            self._problem(problem)
        self._update(snapshots=self._state.snapshots + 1)
        self._call(self.on_snapshot, snapshot)

    def _named(self, names: list[str]) -> np.ndarray | None:
        """Which entries of `names` are named (V2 externals are not), when the named ones are unique; else None.
        Kept for the last list asked about."""
        if self._aligned[0] is not names:
            mask = np.array([bool(name) for name in names], dtype=bool)
            unique = len({name for name in names if name}) == int(mask.sum())
            self._aligned = (names, mask if unique else None)
        return self._aligned[1]

    def _restarted(self, snapshot: Snapshot) -> bool:
        """More counters went down than up, or the agent's version changed. (A reused cgroup slot takes only a
        few counters down, and a restarted agent takes down every counter that moves.)"""
        counters = snapshot.scalars(0)
        names, values = counters.names, counters.values
        last_names, last_values = self._last_counters
        named = self._named(names) if names is last_names or names == last_names else None
        if named is not None:
            # The same entries in the same order, the named ones unique (the usual case; checked once per names
            # list, which the decoder reuses while the entries stay the same): compare whole columns.
            decreased = int(np.count_nonzero((values < last_values) & named))
            increased = int(np.count_nonzero((values > last_values) & named))
        else:
            previous = dict(zip(last_names, last_values.tolist()))
            previous.pop("", None)  # V2 externals: nameless, so not matched across snapshots
            decreased = increased = 0
            for name, value in zip(names, values.tolist()):
                before = previous.get(name) if name else None
                if before is not None and before != value:
                    if value < before:
                        decreased += 1
                    else:
                        increased += 1
        self._last_counters = (names, values)
        version, self._last_version = self._last_version, snapshot.metadata.get("version")
        if version is not None and self._last_version is not None and version != self._last_version:
            return True
        return decreased > max(increased, 2)

    # --- agent info -------------------------------------------------------------------------------------------

    def _fetch_info(self) -> None:
        """`/`, `/systeminfo`, `/metrics/descriptions`; a 404 means absent, a failure is retried next tick."""
        try:
            banner = self._optional("/", text=True)
            systeminfo = self._optional("/systeminfo")
            descriptions = self._optional("/metrics/descriptions")
            status = self._optional("/status")
        except FetchError as exc:
            self._problem(f"agent info not fetched: {exc}")
            self._need_info = True
            return
        first = banner.splitlines()[0].strip() if isinstance(banner, str) and banner.strip() else None
        words = first.split() if first else []
        info = AgentInfo(first, words[0] if words else None, words[1] if len(words) > 1 else None,
                         systeminfo if isinstance(systeminfo, dict) else None,
                         {str(k): str(v) for k, v in descriptions.items()} if isinstance(descriptions, dict)
                         else None)
        self._need_info = False
        uptime = status.get("uptime_seconds") if isinstance(status, dict) else None
        if isinstance(uptime, (int, float)):
            self._started_at = time.time() - float(uptime)
        with self._lock:
            changed, self._info = info != self._info, info
        if changed:
            self._call(self.on_info, info)

    def _optional(self, path: str, text: bool = False) -> Any:
        status, body = self._http.get(path)
        if status == 404:
            return None
        if status != 200:
            raise FetchError(f"HTTP {status} from {path}")
        try:
            return body.decode("utf-8", "replace") if text else json.loads(body)
        except ValueError:
            self._problem(f"{path} is not JSON; ignored")
            return None

    # --- state ------------------------------------------------------------------------------------------------

    def _problem(self, message: str) -> None:
        self._recent.append(message)
        self._update(problems=self._state.problems + 1, recent_problems=tuple(self._recent))

    def _update(self, **changes: Any) -> None:
        with self._lock:
            old = self._state
            self._state = replace(old, **changes)
            new = self._state
        if new.status is not old.status:
            self._report(old, new)
            self._call(self.on_state, new)

    def _report(self, old: ClientState, new: ClientState) -> None:
        """One line per change of reachability; reconnecting → disconnected is the same outage, and stop() is
        not one."""
        if self._stop.is_set():
            return
        up, was_up = new.status is Status.CONNECTED, old.status is Status.CONNECTED
        if up and old.last_success is not None and old.down_since is not None:
            self._say(logging.INFO, f"connected again after {time.time() - old.down_since:.0f} s")
        elif up:
            self._say(logging.INFO, "connected")
        elif was_up:
            self._unreachable(new)

    def _unreachable(self, state: ClientState) -> None:
        if not self._stop.is_set():
            reason = (state.last_error or "no answer").removeprefix("/metrics/binary: ")
            self._say(logging.WARNING, f"unreachable ({reason})")

    def _say(self, level: int, text: str) -> None:
        try:
            if self.log is None:
                logger.log(level, "agent %s: %s", self.url, text)
            else:
                self.log(f"rezgen: agent {self.url}: {text}")
        except Exception as exc:  # a closed terminal must not stop the polling
            self._problem(f"log raised {type(exc).__name__}: {exc}")

    def _call(self, callback: Callable[[Any], None] | None, value: Any) -> None:
        if callback is None:
            return
        try:
            callback(value)
        except Exception as exc:  # a consumer's bug must not stop the polling
            self._problem(f"{getattr(callback, '__name__', 'callback')} raised {type(exc).__name__}: {exc}")
