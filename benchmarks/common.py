"""Helpers shared by the benchmarks: run a child process, time it and read its peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def recording(name: str) -> Path:
    path = SHARED / "recordings" / name
    if not path.exists():
        sys.exit(f"benchmark needs {path} (the shared recordings)")
    return path


def run_child(code: str, *args: str) -> tuple[float, float]:
    """Run `python -c code args` in a fresh process; returns (wall seconds, peak RSS in MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark child failed: {code[:60]}...")
    return wall, usage.ru_maxrss / 1024


def measure(code: str, *args: str, runs: int = 5) -> tuple[float, float, list[float]]:
    """Median wall time and maximum peak RSS over `runs` fresh processes (after one discarded warm-up)."""
    run_child(code, *args)
    results = [run_child(code, *args) for _ in range(runs)]
    walls = [w for w, _ in results]
    return statistics.median(walls), max(r for _, r in results), walls
