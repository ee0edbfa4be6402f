"""`rezgen forward --workers N`: the agents shared among worker processes, each writing its share to a real
VictoriaMetrics; the parent passes on SIGINT/SIGTERM, sums the workers' summaries, and fails in one line when a
worker dies.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from processes import start, stop, wait_for
from remote_expect import count
from shared import shared_recording
from test_remote_write import differences, expected_for, node, settled, stamps_of
from tsdb import VictoriaMetrics, by_name

pytestmark = [pytest.mark.live, pytest.mark.oracle, pytest.mark.slow,
              pytest.mark.skipif(not VictoriaMetrics.available(), reason="no victoria-metrics")]
RECORDING = "demo.parquet"


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[str]]:
    started = [start(["replay", str(shared_recording(RECORDING)), "--port", "0"], tmp_path / f"replay{k}.log")
               for k in range(3)]
    yield [url for _, url in started]
    for proc, _ in started:
        stop(proc)


def forwarding(agents: list[str], target: str, log: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    live = [arg for agent in agents for arg in ("--live", agent)]
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "rezgen", "forward", *live, "--remote-write", target,
                                 "--interval", "500ms", "--workers", "2"], stdout=subprocess.PIPE, stderr=stderr,
                                text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("forwarding 3 agents every 0.5 s to") and "in 2 processes" in line, (line, log.read_text())
    workers = wait_for(lambda: [child for child in psutil.Process(proc.pid).children()
                                if "spawn_main" in " ".join(child.cmdline())], timeout=30, what="the workers")
    assert len(workers) == 2
    return proc, workers


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_the_workers_send_every_agents_samples_and_the_summary_sums_them(agents: list[str], tmp_path: Path,
                                                                         stop_signal: int) -> None:
    with VictoriaMetrics(tmp_path / "tsdb") as tsdb:
        proc, workers = forwarding(agents, tsdb.write_url, tmp_path / "forward.log")
        try:
            for agent in agents:
                wait_for(lambda agent=agent: len(stamps_of(by_name(tsdb.samples(f'{{node="{node(agent)}"}}')))) >= 3,
                         timeout=60, every=1.0, what=f"three snapshots of {agent} in the TSDB")
        finally:
            proc.send_signal(stop_signal)  # to the parent alone: it passes the stop on
            out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, (tmp_path / "forward.log").read_text()
        assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)
        got = {agent: settled(lambda agent=agent: by_name(tsdb.samples(f'{{node="{node(agent)}"}}')))
               for agent in agents}
    summary = re.fullmatch(rf"remote write {re.escape(tsdb.write_url)}: (\d+) samples sent, 0 dropped \(queue full\), "
                           r"0 rejected, 0 unsent", out.strip())
    assert summary, out
    sent = int(summary.group(1))
    held = 0
    for agent, samples in got.items():
        want = expected_for(shared_recording(RECORDING), agent).samples(stamps_of(samples))
        assert differences(samples, want) == []
        held += count(samples)
    assert sent == held, "the workers' counts add up to what the TSDB holds"
    log = (tmp_path / "forward.log").read_text().splitlines()
    assert all(f"rezgen: agent {agent.rstrip('/')}: connected" in log for agent in agents), log  # as the parent logs


def test_a_worker_that_dies_stops_the_others_and_fails_in_one_line(agents: list[str], tmp_path: Path) -> None:
    with VictoriaMetrics(tmp_path / "tsdb") as tsdb:
        proc, workers = forwarding(agents, tsdb.write_url, tmp_path / "forward.log")
        try:
            time.sleep(2)
            workers[0].kill()
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                stop(proc)
    assert proc.returncode != 0
    lines = (tmp_path / "forward.log").read_text().strip().splitlines()
    assert re.fullmatch(rf"rezgen: forward worker [12] of 2 \(pid {workers[0].pid}, agents .+\) exited with code -9; "
                        r"stopped the others", lines[-1]), lines
    assert not any("Traceback" in line for line in lines)
    assert not workers[1].is_running() or workers[1].status() == psutil.STATUS_ZOMBIE
