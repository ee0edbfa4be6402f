"""The live hub's grid: where steps sit relative to the agent's samples, and when a step may be computed.

Samples arrive every interval (times in ms below, as the agent's clock gives them); steps sit half an interval
after them, and a step is computed as soon as the newest sample is at most three quarters of a step before it —
never while a regular next sample could still land at or before it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rezgen.agent.pieces import Entry, Snapshot
from rezgen.dashboards import Section, load_section
from rezgen.live.hub import Hub
from rezgen.live.ingest import Ingest
from rezgen.live.ranking import TopK
from rezgen.model import SeriesKey
from rezgen.store import Store

MS = 1_000_000
STEP = 1000 * MS
FIRST = 1_700_000_000_123_456_789  # not on a millisecond


@pytest.fixture
def section(tmp_path: Path) -> Section:
    path = tmp_path / "t.toml"
    path.write_text('title = "T"\nroute = "t"\n[[group]]\nname = "g"\n[[group.plot]]\nid = "r"\ntitle = "R"\n'
                    'query = "irate(c[5m])"\nunit = "rate"\n')
    return load_section(path)


def sample(ingest: Ingest, hub: Hub, t_ns: int, value: int) -> None:
    assert ingest.append("agent", Snapshot(2, t_ns, None, {}, [Entry("c", SeriesKey("c"), value)], [], []))
    hub.notify()


def make() -> tuple[Ingest, Hub]:
    ingest = Ingest(Store(STEP), 3600 * 1000 * MS)
    ingest.add_agent("agent", None)
    return ingest, Hub(ingest, STEP, lambda: {})


def test_the_grid_sits_half_a_step_after_the_first_sample_on_whole_milliseconds() -> None:
    ingest, hub = make()
    asyncio.run(_notify_in_loop(ingest, hub, FIRST))
    assert hub.anchor_ns == -(-(FIRST + STEP // 2) // MS) * MS
    assert hub.anchor_ns % MS == 0


async def _notify_in_loop(ingest: Ingest, hub: Hub, t_ns: int) -> None:
    sample(ingest, hub, t_ns, 0)


@pytest.mark.parametrize("jitter_ms", [-200, -50, 0, 50, 200])
def test_each_sample_makes_the_step_after_it_computable_despite_jitter(jitter_ms: int) -> None:
    async def run() -> None:
        ingest, hub = make()
        sample(ingest, hub, FIRST, 0)
        times = [FIRST + k * STEP + jitter_ms * MS * (k % 2) for k in range(6)]  # every other sample off
        for k in range(1, 5):
            sample(ingest, hub, times[k], 10 * k)
            newest = hub.newest_step(times[k])
            assert newest is not None and times[k] < newest < times[k + 1]  # the step after it, before the next
    asyncio.run(run())


def test_the_pushed_steps_carry_the_rate_of_the_samples_before_them(section: Section) -> None:
    async def run() -> list:
        ingest, hub = make()
        sample(ingest, hub, FIRST, 0)
        sample(ingest, hub, FIRST + STEP, 100)
        sample(ingest, hub, FIRST + 2 * STEP, 300)
        last = hub.newest_step(FIRST + 2 * STEP)
        assert last is not None
        update = hub.points(section, None, (last - STEP) // MS, last // MS)
        return update.plots["r"]["values"][0]

    assert asyncio.run(run()) == [100.0, 200.0]  # per second, over the samples at or before each step


def test_a_top_k_plot_keeps_the_series_ranked_over_the_window_and_folds_the_rest(tmp_path: Path) -> None:
    """Ranked over the window, `a` and `b` lead; in the newest step `c` is the largest, yet the update still
    shows `a` and `b` with `c`, `d` and `e` summed into Other — no series comes and goes with each update."""
    path = tmp_path / "m.toml"
    path.write_text('title = "M"\nroute = "m"\n[[group]]\nname = "g"\n[[group.plot]]\nid = "m"\ntitle = "M"\n'
                    'query = "g"\nkind = "multi"\ntop = 2\n')
    section = load_section(path)
    history = {"a": [50, 50, 50, 1], "b": [40, 40, 40, 2], "c": [1, 1, 1, 99], "d": [2, 2, 2, 3], "e": [3, 3, 3, 4]}

    async def run() -> dict:
        ingest, hub = make()
        for k in range(4):
            gauges = [Entry(f"g{name}", SeriesKey("g", (("id", name),)), values[k]) for name, values in history.items()]
            assert ingest.append("agent", Snapshot(2, FIRST + k * STEP, None, {}, [], gauges, []))
            hub.notify()
        last = hub.newest_step(FIRST + 3 * STEP)
        assert last is not None
        return hub.points(section, None, last // MS, last // MS, ranks=TopK()).plots["m"]

    update = asyncio.run(run())
    assert update["kind"] == "multi"
    assert update["names"] == ["a", "b", "Other"]
    assert update["values"] == [[1], [2], [99 + 3 + 4]]
