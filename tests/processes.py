"""Start and stop real `rezgen` processes (servers and replayed agents) for tests, and wait on conditions."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

READY = re.compile(r"at (http://127\.0\.0\.1:(\d+)/)")
T = TypeVar("T")


def start(args: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """Run `rezgen ARGS` with stderr to `log`; returns the process and the URL its ready line announces."""
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "rezgen", *args], stdout=subprocess.PIPE, stderr=stderr,
                                text=True)
    assert proc.stdout is not None
    lines = []  # what it says before it listens (e.g. "recovered N rows …" after a kill)
    while not (match := READY.search(line := proc.stdout.readline())) and line:
        lines.append(line)
    if not match:
        stop(proc)
        raise AssertionError(f"rezgen {args[0]} did not start: {lines!r} {log.read_text()}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)
    if proc.stdout:
        proc.stdout.close()


def wait_for(check: Callable[[], T], timeout: float = 60.0, every: float = 0.05, what: str = "condition") -> T:
    """Poll `check` until it returns something true (returned), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
