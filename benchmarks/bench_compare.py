"""A/B compare build vs a single build, and the sizes of their sites.

    .venv/bin/python benchmarks/bench_compare.py [--runs 5]

`rezgen build base=c16.parquet exp=<a copy of c16.parquet>` (two c16-size recordings, each opened and evaluated
on its own) against `rezgen build c16.parquet`, fresh processes taken in turns, median of --runs after a discarded
warm-up of each; the ratio of the medians, and the size of each site (a compare site has the dashboards' sections
and the What-changed page; a single site also has the metric browser and the system page).
Goals: time ratio <= 2.2, compare site <= 2x the single site.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from common import measure_turns, recording

BUILD = """
import sys
from rezgen.cli import main
sys.argv = ["rezgen", "build", *sys.argv[1:], "-q"]
main()
"""

GOAL_RATIO = 2.2
GOAL_SIZE = 2.0


def site_size(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, files in os.walk(path) for name in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    c16 = recording("c16.parquet")
    with tempfile.TemporaryDirectory(prefix="rezgen-bench-compare-") as tmp:
        copy = Path(tmp) / "c16-copy.parquet"
        shutil.copyfile(c16, copy)
        single_out, compare_out = Path(tmp) / "single", Path(tmp) / "compare"
        single, compare = measure_turns([(BUILD, str(c16), "-o", str(single_out)),
                                         (BUILD, f"base={c16}", f"exp={copy}", "-o", str(compare_out))], args.runs)
        ratio = compare.wall / single.wall
        sizes = site_size(single_out), site_size(compare_out)
    print(f"c16.parquet ({c16.stat().st_size / 1e6:.1f} MB), {args.runs} runs each, taken in turns")
    print(f"  single build    median {single.wall:.3f} s  runs {single.walls()}  peak RSS {single.rss:.0f} MB")
    print(f"  compare build   median {compare.wall:.3f} s  runs {compare.walls()}  peak RSS {compare.rss:.0f} MB")
    print(f"  time ratio {ratio:.2f}x (goal <= {GOAL_RATIO:g})  {'ok' if ratio <= GOAL_RATIO else 'MISSED'}")
    print(f"  site: single {sizes[0] / 1e6:.1f} MB, compare {sizes[1] / 1e6:.1f} MB, {sizes[1] / sizes[0]:.2f}x "
          f"(goal <= {GOAL_SIZE:g})  {'ok' if sizes[1] <= GOAL_SIZE * sizes[0] else 'MISSED'}")


if __name__ == "__main__":
    main()
