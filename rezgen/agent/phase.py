"""`PhaseLock`: move the poll grid's phase to just after the agent's sampling, so a sample is fetched as soon as
it exists instead of up to an interval later.

A Rezolus agent samples on demand (protocol §5): its `systemtime` is when our request arrived, and any phase is
right. Something between (a `rezolus exporter` polling on its own 1 s clock, a caching proxy, `rezgen replay`)
samples on its own grid instead: a poll just before its tick gets the previous sample (a duplicate) and one just
after gets the new one. Which of the two an agent is, and where its grid sits, is learned from whether each
poll's stamp is new, whatever the offset between its clock and ours (a binary answer: a slow answer under load
does not blur it).

- Wait: until two fresh samples come one interval apart (±25 %): an agent sampling at another pace than ours
  (a replay at another speed, an exporter on another interval) is polled on the plain grid, as before.
- Search: while polls get fresh samples, move the grid earlier by `step` (a quarter interval at first). A
  duplicate means we went past the agent's tick: move back by `step`, halve it, and poll again at once. When
  `step` is below `MIN_STEP`, the grid is `MARGIN` after the agent's tick: locked. Moved a whole interval earlier
  without a duplicate: the agent samples on demand; locked where it is.
- Locked: a duplicate (the agent's tick drifted later, or jitter) moves the grid later by `MARGIN` and polls again
  at once; every `RESEARCH_EVERY` polls a small search follows drift the other way.
- Locked, but duplicates on many polls: the agent's pace changed; the plain grid from then on.
"""

from __future__ import annotations

import collections

MIN_STEP = 0.002  # seconds: below this the search is done
MARGIN = 0.003  # seconds after the agent's tick that polls aim at (its scheduling jitter, ours)
RESEARCH_EVERY = 60  # polls between small searches while locked
MAX_DUPLICATE_SHARE = 0.25  # locked: more duplicates than this among the last polls means another pace


class PhaseLock:
    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.state = "wait"  # wait | search | locked | off
        self._stamp: float | None = None  # the last fresh sample's stamp (agent clock, seconds)
        self._step = interval_s / 4
        self._travelled = 0.0  # how far the search moved the grid earlier since its last duplicate
        self._polls = 0
        self._recent: collections.deque[bool] = collections.deque(maxlen=20)  # duplicates among the last polls

    def reset(self) -> None:
        """After an outage or a clock step: learn again."""
        self.__init__(self.interval_s)  # type: ignore[misc]

    def observe(self, stamp_s: float, fresh: bool) -> tuple[float, bool]:
        """A successful poll got a new snapshot stamped `stamp_s` (`fresh`) or the one before again. Returns (how
        far to move the grid, in seconds: negative is earlier; poll again at once)."""
        self._polls += 1
        self._recent.append(not fresh)
        if self.state == "wait" and fresh:
            if self._stamp is not None and abs(stamp_s - self._stamp - self.interval_s) <= self.interval_s / 4:
                self.state = "search"
            self._stamp = stamp_s
        if self.state in ("wait", "off"):
            return 0.0, False
        if self.state == "locked":
            return self._locked(fresh)
        return self._search(fresh)

    def _search(self, fresh: bool) -> tuple[float, bool]:
        if not fresh:  # past the agent's tick: back by a step, a smaller one
            back = self._step
            self._step /= 2
            self._travelled = 0.0
            if self._step < MIN_STEP:
                return self._lock(back + MARGIN)
            return back, True
        if self._travelled >= self.interval_s:
            return self._lock(0.0)  # every phase got a fresh sample: sampled on demand
        self._travelled += self._step
        return -self._step, False

    def _lock(self, move: float) -> tuple[float, bool]:
        self.state = "locked"
        self._polls = 0
        self._recent.clear()
        return move, move > 0

    def _locked(self, fresh: bool) -> tuple[float, bool]:
        if len(self._recent) == self._recent.maxlen and sum(self._recent) > MAX_DUPLICATE_SHARE * len(self._recent):
            self.state = "off"
            return 0.0, False
        if not fresh:
            return MARGIN, True
        if self._polls >= RESEARCH_EVERY:
            self.state, self._step, self._travelled = "search", 4 * MIN_STEP, 0.0
        return 0.0, False
