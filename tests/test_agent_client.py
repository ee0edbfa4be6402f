"""`AgentClient` against a real fake agent (`rezgen replay`) on 127.0.0.1: values, dedupe, failures and recovery.

The agent misbehaves on request (`/_replay/fault`, `/_replay/clock`) or is killed and restarted on the same port;
what it was asked for is read back from its `/_replay/stats`.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path

import pytest
from processes import wait_for
from shared import shared_recording
from test_replay import ReplayProcess, recorded_cells, served_cells

from rezgen.agent.client import AgentClient, ClientState, Status, default_timeout
from rezgen.agent.snapshot import Snapshot


class Recorder:
    """Everything a client hands out, collected thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshots: list[Snapshot] = []
        self.states: list[Status] = []

    def on_snapshot(self, snapshot: Snapshot) -> None:
        with self.lock:
            self.snapshots.append(snapshot)

    def on_state(self, state: ClientState) -> None:
        with self.lock:
            self.states.append(state.status)

    def count(self) -> int:
        with self.lock:
            return len(self.snapshots)


def client_for(process: ReplayProcess, recorder: Recorder, interval_s: float, **kwargs) -> AgentClient:
    return AgentClient(process.url, interval_s, on_snapshot=recorder.on_snapshot, on_state=recorder.on_state,
                       **kwargs)


@pytest.fixture
def demo(tmp_path: Path):
    process = ReplayProcess(shared_recording("demo.parquet"), log=tmp_path / "replay.log").start()
    try:
        yield process
    finally:
        process.stop()


def test_timeout_rule() -> None:
    assert [default_timeout(s) for s in (0.1, 1.0, 3.0, 60.0)] == [2.0, 2.0, 6.0, 10.0]


@pytest.mark.live
def test_live_snapshots_carry_the_recorded_values_once_each(tmp_path: Path) -> None:
    process = ReplayProcess(shared_recording("c16.parquet"), "--speed", "2", log=tmp_path / "replay.log").start()
    recorder = Recorder()
    try:
        with client_for(process, recorder, 0.2) as client:
            wait_for(lambda: recorder.count() >= 6, what="six snapshots")
            state = client.state()
            info = client.info
        stats = process.stats()
    finally:
        process.stop()
    snaps = recorder.snapshots
    stamps = [s.timestamp_ns for s in snaps]
    assert all(b > a for a, b in itertools.pairwise(stamps))  # increasing, each row once
    assert all(s.discontinuity is None and s.problems == [] for s in snaps)
    for snap in (snaps[0], snaps[-1]):
        expected = recorded_cells(process.recording, snap.timestamp_ns - stats["offset_ns"], node="rezolus")
        assert served_cells(snap) == expected
    assert state.status is Status.CONNECTED and state.failures == 0 and state.last_error is None
    assert state.snapshots == len(snaps) >= 6 and state.duplicates >= 3  # 2 rows/s polled 5 times a second
    assert info.banner == "Rezolus 5.11.0 Agent" and (info.source, info.version) == ("Rezolus", "5.11.0")
    assert info.systeminfo and info.systeminfo["cpus"] == 16
    assert info.descriptions and "cpu_usage" in info.descriptions
    assert {p: stats["paths"][p] for p in ("/", "/systeminfo", "/metrics/descriptions")} == \
        {"/": 1, "/systeminfo": 1, "/metrics/descriptions": 1}  # fetched once per agent run
    assert recorder.states == [Status.CONNECTED, Status.DISCONNECTED]  # the second on stop()
    assert stats["gzipped"] == stats["requests"] >= len(snaps)  # every poll asked for (and got) gzip


@pytest.mark.live
@pytest.mark.parametrize("fault, error", [
    ("garbage", "not a snapshot"),
    ("empty", "empty body (HTTP 200)"),
    ("error", "HTTP 500 from /metrics/binary"),
    ("truncated", "truncated snapshot"),
])
def test_a_bad_answer_is_a_failed_poll_and_the_client_recovers(demo: ReplayProcess, fault: str, error: str) -> None:
    recorder = Recorder()
    with client_for(demo, recorder, 0.1) as client:
        wait_for(lambda: recorder.count() >= 2, what="snapshots before the fault")
        demo.fault(fault)
        wait_for(lambda: client.state().status is Status.RECONNECTING, what="reconnecting")
        assert error in (client.state().last_error or "")
        before = recorder.count()
        demo.fault("none")
        wait_for(lambda: client.state().status is Status.CONNECTED and recorder.count() > before,
                 what="connected again")
    assert recorder.states[:3] == [Status.CONNECTED, Status.RECONNECTING, Status.CONNECTED]
    stamps = [s.timestamp_ns for s in recorder.snapshots]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert client.state().status is Status.DISCONNECTED  # stopped


@pytest.mark.live
def test_slow_answers_skip_ticks_and_polls_never_overlap(demo: ReplayProcess) -> None:
    recorder = Recorder()
    with client_for(demo, recorder, 0.2, timeout_s=0.8) as client:
        wait_for(lambda: recorder.count() >= 1, what="a first snapshot")
        demo.fault("slow", seconds=0.21)  # each answer overruns its tick a little
        first = demo.stats()["requests"] + 1  # the first poll to arrive from now on is answered slowly
        wait_for(lambda: demo.stats()["requests"] >= first, what="a slow poll")
        started = time.monotonic()
        wait_for(lambda: demo.stats()["requests"] >= first + 4, what="four more slow polls")
        took = time.monotonic() - started
        assert client.state().status is Status.CONNECTED  # slow is not failed
        demo.fault("slow", seconds=30)  # hung: longer than the 0.8 s timeout
        wait_for(lambda: "no answer within 0.8 s" in (client.state().last_error or ""), what="a timeout")
        assert client.state().status is Status.RECONNECTING
        demo.fault("none")
        wait_for(lambda: client.state().status is Status.CONNECTED, what="connected again")
    stats = demo.stats()
    # A poll overruns its tick, so the next one goes at the tick after: 4 x 0.4 s (more on a loaded machine, never
    # less); queued ticks would send each at once, 4 x 0.21 s.
    assert took >= 1.2, took
    assert stats["max_in_flight"] == 1


@pytest.mark.live
def test_backs_off_while_the_agent_is_down_and_notices_the_restart(demo: ReplayProcess) -> None:
    recorder = Recorder()
    retries: list[float] = []
    with client_for(demo, recorder, 0.1) as client:
        wait_for(lambda: recorder.count() >= 15, what="some snapshots")  # the replay is past its first rows
        demo.kill()

        def backed_off() -> bool:
            retry = client.state().retry_in
            if retry is not None and (not retries or retry != retries[-1]):
                retries.append(retry)
            return bool(retries) and retries[-1] >= 0.8

        # 0.1, 0.2, 0.4, 0.8 s: without back-off the wait never ends (a retry every 0.1 s).
        wait_for(backed_off, what="a back-off of 0.8 s")
        down = client.state()
        delivered = recorder.count()
        demo.start()  # the same port: an agent restart
        wait_for(lambda: recorder.count() > delivered, what="a snapshot from the restarted agent")
        wait_for(lambda: demo.stats()["paths"].get("/systeminfo") == 1, what="agent info fetched again")
        polls = client.state().polls
        wait_for(lambda: client.state().polls >= polls + 5, what="five more polls")  # none asks for it again
        after = client.state()
    assert down.status is Status.RECONNECTING and down.last_error == "/metrics/binary: connection refused"
    assert retries == sorted(retries) and retries[0] == pytest.approx(0.1) and retries[-1] >= 0.8
    assert 3 <= down.failures <= 5  # one per back-off step (a busy machine may see a step late)
    first_after = recorder.snapshots[delivered]
    assert first_after.discontinuity == "restart" and after.restarts == 1
    assert after.status is Status.CONNECTED and after.retry_in is None
    assert demo.stats()["paths"].get("/systeminfo") == 1  # 404 there: absent, not asked again every tick
    assert recorder.states[:3] == [Status.CONNECTED, Status.RECONNECTING, Status.CONNECTED]


@pytest.mark.live
def test_clock_steps_drop_stale_stamps_and_resynchronise_on_big_ones(demo: ReplayProcess) -> None:
    recorder = Recorder()
    with client_for(demo, recorder, 0.2) as client:
        wait_for(lambda: recorder.count() >= 2, what="snapshots")
        demo.step_clock(-0.6)  # within max(1 s, 2 intervals): stale answers, dropped until time passes them
        wait_for(lambda: any("older than the last one; dropped" in p for p in client.state().recent_problems),
                 what="a stale snapshot")
        count = recorder.count()
        demo.step_clock(-3600)  # a real step back: follow the new clock
        wait_for(lambda: recorder.count() >= count + 3, what="snapshots after the step")
        state = client.state()
    stamps = [s.timestamp_ns for s in recorder.snapshots]
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    assert sum(1 for d in steps if d < 0) == 1 and min(steps) < -3590e9
    stepped = recorder.snapshots[steps.index(min(steps)) + 1]
    assert stepped.discontinuity == "clock" and state.clock_steps == 1
    assert all(s.discontinuity is None for s in recorder.snapshots if s is not stepped)
    assert any("agent clock went back 3600" in p for p in state.recent_problems)


def test_a_client_never_connected_is_disconnected_and_stops_promptly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    client = AgentClient(f"127.0.0.1:{port}", 0.1)
    client.start()
    wait_for(lambda: client.state().failures >= 2, what="failed polls")
    state = client.state()
    started = time.monotonic()
    client.stop()
    assert time.monotonic() - started < 1.0
    assert state.status is Status.DISCONNECTED and state.last_success is None
    assert state.last_error == "/metrics/binary: connection refused" and client.url == f"http://127.0.0.1:{port}"


@pytest.mark.live
def test_a_failing_callback_is_a_problem_not_a_crash(demo: ReplayProcess) -> None:
    calls: list[int] = []

    def broken(snapshot: Snapshot) -> None:
        calls.append(snapshot.timestamp_ns)
        raise RuntimeError("consumer bug")

    with AgentClient(demo.url, 0.1, on_snapshot=broken) as client:
        wait_for(lambda: len(calls) >= 3, what="several callbacks")
        state = client.state()
    assert state.status is Status.CONNECTED and state.problems >= 3
    assert "broken raised RuntimeError: consumer bug" in state.recent_problems


@pytest.mark.live
def test_a_hung_agent_is_retried_every_tick_and_seen_again_at_once(demo: ReplayProcess) -> None:
    """A poll that timed out has waited long enough: the next one goes at the next tick, not after a growing
    back-off, so an agent that answers again is connected within a tick or two. The terminal gets one line per
    change of reachability, not one per failed poll."""
    recorder, lines = Recorder(), []
    interval, timeout = 0.3, 0.6
    with client_for(demo, recorder, interval, timeout_s=timeout, log=lines.append) as client:
        wait_for(lambda: recorder.count() >= 1, what="a first snapshot")
        demo.fault("slow", seconds=30)
        wait_for(lambda: client.state().failures >= 5, what="five timed-out polls")
        assert client.state().retry_in is not None and client.state().retry_in <= interval
        demo.fault("none")
        cleared = time.monotonic()
        wait_for(lambda: client.state().status is Status.CONNECTED, what="connected again")
        took = time.monotonic() - cleared
    # The poll in flight ends at its timeout at the latest; the next one is due within a tick.
    assert took <= timeout + 2 * interval + 0.3, took
    assert [line.split(": ", 2)[2].split(" (")[0].split(" after")[0] for line in lines] == \
        ["connected", "unreachable", "connected again"], lines
    assert lines[1] == f"rezgen: agent {demo.url.rstrip('/')}: unreachable (no answer within {timeout:g} s)"


def test_a_trickled_body_is_cut_at_the_deadline(tmp_path: Path) -> None:
    """An agent that sends its body a byte at a time (a slow-loris answer) must not hold a poll past its timeout:
    reading `n` bytes at a time would wait for all n."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not stop.wait(0.1):  # the trickle is the behaviour under test: a byte every 0.1 s
                    try:
                        conn.sendall(b"x")
                    except OSError:
                        break

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    client = AgentClient(f"127.0.0.1:{server.getsockname()[1]}", 0.2, timeout_s=0.8)
    try:
        started = time.monotonic()
        client.start()
        wait_for(lambda: client.state().failures >= 1, timeout=10, what="a failed poll")
        took = time.monotonic() - started
    finally:
        client.stop()
        stop.set()
        server.close()
    assert took < 0.8 + 0.5, took
    assert client.state().last_error == "/metrics/binary: no complete answer within 0.8 s"
