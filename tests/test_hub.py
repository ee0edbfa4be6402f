"""The live hub's grid: where steps sit relative to the agent's samples, and when a step may be computed.

Samples arrive every interval (times in ms below, as the agent's clock gives them); steps sit half an interval
after them, and a step is computed as soon as the newest sample is at most three quarters of a step before it —
never while a regular next sample could still land at or before it.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from processes import start, stop
from shared import shared_recording

from rezgen.agent.pieces import Entry, Snapshot
from rezgen.dashboards import Section, load_section
from rezgen.live.ingest import Ingest
from rezgen.plotdata.plots import plot_data
from rezgen.plotdata.topk import TopK
from rezgen.plotdata.window import trailing
from rezgen.server.hub import Hub, Subscription, Update
from rezgen.store.model import SeriesKey
from rezgen.store.store import Store

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
        update = hub.points(section, (), (last - STEP) // MS, last // MS)
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
        return hub.points(section, (), last // MS, last // MS, ranks=TopK()).plots["m"]

    update = asyncio.run(run())
    assert update["kind"] == "multi"
    assert update["names"] == ["a", "b", "Other"]
    assert update["values"] == [[1], [2], [99 + 3 + 4]]


def test_live_updates_keep_what_their_first_load_ranked_over_its_window(tmp_path: Path) -> None:
    """`a` leads over the last 20 steps, `b` over the last 5: a page's first load ranks over its own range, and
    its updates fold into that membership; with none adopted, a ranking over the same window agrees with it."""
    path = tmp_path / "m.toml"
    path.write_text('title = "M"\nroute = "m"\n[[group]]\nname = "g"\n[[group.plot]]\nid = "m"\ntitle = "M"\n'
                    'query = "g"\nkind = "multi"\ntop = 1\n')
    section = load_section(path)
    history = {"a": [10] * 15 + [0] * 5, "b": [0] * 15 + [5] * 5, "c": [1] * 20}

    async def run() -> dict[int, tuple[list[str], list[str], list[str]]]:
        ingest, hub = make()
        for k in range(20):
            gauges = [Entry(f"g{name}", SeriesKey("g", (("id", name),)), values[k]) for name, values in history.items()]
            assert ingest.append("agent", Snapshot(2, FIRST + k * STEP, None, {}, [], gauges, []))
            hub.notify()
        last = hub.newest_step(FIRST + 19 * STEP)
        assert last is not None
        seen = {}
        for steps in (5, 20):
            loaded = plot_data(ingest.store, section.plots[0], trailing(last, steps * STEP, FIRST, STEP), ())
            assert loaded is not None
            hub.adopt(section, (), {"m": loaded}, steps * STEP)
            update = hub.points(section, (), last // MS, last // MS, ranks=hub.subscription(section, ()).ranks)
            fresh = hub.points(section, (), last // MS, last // MS, ranks=TopK(steps * STEP))
            seen[steps] = (loaded["names"], update.plots["m"]["names"], fresh.plots["m"]["names"])
        return seen

    seen = asyncio.run(run())
    assert seen[5] == (["b", "Other"],) * 3
    assert seen[20] == (["a", "Other"],) * 3


def test_waiters_cancelled_at_any_moment_leave_the_subscription_waking_the_others(section: Section) -> None:
    """Pages leave while waiting, just as an update wakes them, or just after: the ones that stay still get every
    update, and a wait with nothing new ends at its timeout with None."""
    async def run() -> list[int]:
        sub = Subscription(section, ())
        got: list[int] = []
        for k in range(1, 30):
            leaving = [asyncio.create_task(sub.newer_than(k - 1, 60)) for _ in range(k % 4)]
            staying = asyncio.create_task(sub.newer_than(k - 1, 60))
            await asyncio.sleep(0)  # every waiter is now waiting
            if k % 2:
                for task in leaving:
                    task.cancel()  # gone before the update
            sub.publish(Update(k, k, {}))
            for task in leaving:
                task.cancel()  # gone as the update wakes it (a no-op for those cancelled above)
            update = await asyncio.wait_for(staying, 5)
            assert update is not None
            got.append(update.last_ms)
        assert await sub.newer_than(29, 0.05) is None
        return got

    assert asyncio.run(run()) == list(range(1, 30))


def sse_points(port: int, deadline: float, fresh_after_ms: int) -> dict | None:
    """The first `points` event of the overview's stream computed at or after `fresh_after_ms` (wall clock), read
    from a raw socket until `deadline` (monotonic); None if none came by then."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET /api/stream?section=overview HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        buffer, event = b"", None
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return None
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                text = line.decode().rstrip("\r")
                if text.startswith("event:"):
                    event = text.split(":", 1)[1].strip()
                elif text.startswith("data:") and event == "points":
                    data = json.loads(text.split(":", 1)[1])
                    if data["at"] >= fresh_after_ms:
                        return data
    return None


def churn_client(port: int, hold: float, reset: bool) -> None:
    """A page that opens the overview's stream, reads it for `hold` seconds and leaves: with a FIN, or with an RST
    (SO_LINGER 0), as a killed browser or a dropped network does."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.sendall(f"GET /api/stream?section=overview HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        until = time.monotonic() + hold
        while (left := until - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                if not sock.recv(65536):
                    break
            except TimeoutError:
                break
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


@pytest.mark.live
@pytest.mark.slow
def test_pages_that_come_and_go_at_any_moment_leave_the_hub_pushing(tmp_path: Path) -> None:
    """100 pages, held 0.2–4 s each and closed with a FIN or an RST: afterwards a new page still gets freshly
    computed points within two intervals, and the server logged no traceback."""
    interval_ms = 1000  # a whole second, as by default: two of them leave room for a loaded machine
    agent, agent_url = start(["replay", str(shared_recording("c16.parquet")), "--port", "0", "--speed",
                              str(1000 // interval_ms)], tmp_path / "replay.log")
    log = tmp_path / "live.log"
    try:
        live, url = start(["serve", "--live", agent_url, "--port", "0", "--interval", f"{interval_ms}ms"], log)
        try:
            port = int(url.rstrip("/").rsplit(":", 1)[1])
            assert sse_points(port, time.monotonic() + 30, 0) is not None  # the hub is up and pushing
            rng = random.Random(7)
            plan = [(rng.uniform(0.2, 4.0), rng.random() < 0.5) for _ in range(100)]
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(lambda p: churn_client(port, *p), plan))
            for _ in range(3):  # several new pages, one after another
                connected_ms = int(time.time() * 1000)
                fresh = sse_points(port, time.monotonic() + 2 * interval_ms / 1000, connected_ms)
                assert fresh is not None, f"no fresh points within two intervals\n{log.read_text()[-3000:]}"
        finally:
            stop(live)
    finally:
        stop(agent)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
