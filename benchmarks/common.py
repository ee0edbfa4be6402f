"""Helpers shared by the benchmarks: run a child process, time it and read its peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def recording(name: str) -> Path:
    path = SHARED / "recordings" / name
    if not path.exists():
        sys.exit(f"benchmark needs {path} (the shared recordings)")
    return path


# Prepended to a child's code: at exit it writes its own peak RSS and that of the children it waited for (the
# build's second process), which wait4 would report as the larger of the two rather than their sum.
PEAKS = """
import atexit, os, resource
def _peaks():
    with open(os.environ["REZGEN_BENCH_PEAKS"], "w") as out:
        out.write(" ".join(str(resource.getrusage(who).ru_maxrss) for who in (resource.RUSAGE_SELF,
                                                                          resource.RUSAGE_CHILDREN)))
atexit.register(_peaks)
"""


@dataclass
class Run:
    wall: float  # seconds
    rss: float  # MB: peak RSS of the process plus that of its children (an upper bound: shared pages count twice)
    children_rss: float  # MB: the children's part


def run_child(code: str, *args: str) -> Run:
    """Run `python -c code args` in a fresh process."""
    with tempfile.NamedTemporaryFile("r") as peaks:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", PEAKS + code, *args], cwd=ROOT,
                                env={**os.environ, "REZGEN_BENCH_PEAKS": peaks.name})
        _, status, _ = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"benchmark child failed: {code[:60]}...")
        own, children = (int(kb) / 1024 for kb in peaks.read().split())
    return Run(wall, own + children, children)


@dataclass
class Measured:
    runs: list[Run]

    @property
    def wall(self) -> float:
        """Median wall time."""
        return statistics.median(run.wall for run in self.runs)

    @property
    def rss(self) -> float:
        """Largest peak RSS."""
        return max(run.rss for run in self.runs)

    @property
    def children_rss(self) -> float:
        return max(run.children_rss for run in self.runs)

    def walls(self) -> str:
        return " ".join(f"{run.wall:.3f}" for run in self.runs)


def measure_pair(floor: tuple[str, ...], subject: tuple[str, ...], runs: int = 5) -> tuple[Measured, Measured]:
    """`runs` fresh processes of each of two `(code, *args)`, taken in turns (see `measure_turns`)."""
    floor_runs, subject_runs = measure_turns([floor, subject], runs)
    return floor_runs, subject_runs


def measure_turns(subjects: list[tuple[str, ...]], runs: int = 5) -> list[Measured]:
    """`runs` fresh processes of each `(code, *args)`, taken in turns (A, B, C, A, B, C, ...) after one discarded
    warm-up of each, so that a machine whose speed drifts (a shared VM's does, by tens of percent over minutes)
    weighs on all of them alike."""
    for subject in subjects:
        run_child(*subject)
    rounds = [[run_child(*subject) for subject in subjects] for _ in range(runs)]
    return [Measured([done[i] for done in rounds]) for i in range(len(subjects))]
