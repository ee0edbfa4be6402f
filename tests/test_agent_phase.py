"""`PhaseLock`: the poll grid moves to just after an agent's own sampling grid, stays put for an agent that samples
on demand, and gives up on an agent sampling at another pace. Driven here by the client's scheduling rule (next
grid point after the poll, or at once at the moved tick when asked) over agents given as time functions: what
stamp a request sent at wall time t gets back."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest

from rezgen.agent.phase import MARGIN, PhaseLock


def drive(agent: Callable[[float], float], interval: float, polls: int, start: float = 0.37
          ) -> tuple[PhaseLock, list[float], list[float]]:
    """(the lock, per fresh sample: send time - stamp, every send time)."""
    lock, anchor, tick, last = PhaseLock(interval), start, start, None
    lags, sends = [], []
    for _ in range(polls):
        sends.append(tick)
        stamp = agent(tick)
        fresh = last is None or stamp > last
        move, again = lock.observe(stamp, fresh)
        if fresh:
            lags.append(tick - stamp)
            last = stamp
        anchor += move
        now = tick + 0.004  # the poll took 4 ms
        following = anchor + (math.floor((now - anchor) / interval) + 1) * interval
        tick = min(following, max(now + MARGIN, tick + move)) if again else following
    return lock, lags, sends


def grid(phase: float, period: float, offset: float = 0.0) -> Callable[[float], float]:
    """An agent sampling every `period` at `phase` of its own clock (ours + offset)."""
    return lambda t: math.floor((t + offset - phase) / period) * period + phase


def test_polls_move_to_just_after_an_agents_own_sampling() -> None:
    lock, lags, sends = drive(grid(0.9, 1.0, offset=-3.25), 1.0, 60)
    assert lock.state == "locked"
    # Its clock runs 3.25 s behind ours: a sample stamped s exists from our s + 3.25 on.
    assert all(3.25 <= lag <= 3.25 + 2 * MARGIN for lag in lags[-20:]), lags[-20:]
    assert len(lags) >= 50  # hardly a sample missed while learning
    late = sends[-40:]
    assert len(late) == 40 and late[-1] - late[0] == pytest.approx(39.0, abs=0.05)  # one poll per interval


def test_an_agent_sampling_on_demand_keeps_the_plain_grid() -> None:
    lock, lags, sends = drive(lambda t: t + 5.0, 1.0, 20)
    assert lock.state == "locked"
    gaps = [b - a for a, b in itertools.pairwise(sends[8:])]  # learned within 8 polls (a whole interval moved)
    assert all(g == pytest.approx(1.0) for g in gaps), gaps
    assert len(lags) == 20


def test_an_agent_sampling_at_another_pace_is_not_followed() -> None:
    lock, _, sends = drive(grid(0.1, 0.5), 0.2, 150)
    assert lock.state == "wait"
    gaps = [b - a for a, b in itertools.pairwise(sends[-30:])]
    assert all(g == pytest.approx(0.2) for g in gaps), gaps
