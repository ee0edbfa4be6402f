"""Static-site benchmarks: build time and memory against a bare pyarrow read, a day-long build, first paint.

    .venv/bin/python benchmarks/bench_build.py [--only c16,day,paint,modes] [--runs 7] [--mode-runs 5] [--cache DIR]

(a) `rezgen build` of c16.parquet vs `pq.ParquetFile(p).read()`, each in fresh processes (interpreter start and
    imports included), taken in turns, median of --runs after a discarded warm-up; peak RSS of the process plus
    that of its decoding child process (an upper bound of their sum: shared pages count twice).
    Goals: time ratio <= 2, rezgen peak RSS <= 400 MB.
(b) A 24-hour recording at 1 s made by tiling c16 (benchmarks/tile.py; written once into the cache directory,
    default /tmp/rezgen-bench, or $REZGEN_BENCH_CACHE): one build, its peak RSS, build time and site size on disk,
    against reading the file row group by row group (its decoded size, ~140 GB, does not fit in memory).
    Goals: peak RSS <= 1 GB, site <= 50 MB.
(c) The overview of the c16 site opened from file:// in headless Chromium (Playwright, Debian's chromium):
    milliseconds from navigation start until the first chart ([data-plot-id]) has an ECharts instance whose
    first series holds data and a canvas; median of 5 fresh pages after a warm-up. Goal: <= 1000 ms.
(d) `rezgen build` of c16.parquet and of demo.parquet tiled to 6 h and to 24 h: fresh processes taken in turns
    with a floor (c16: a bare pyarrow read; the tiled ones: a row-group-by-row-group read), --mode-runs times after
    a discarded warm-up of each; median wall time as a ratio to the floor, and the largest peak RSS of process +
    children. Goal: peak RSS <= 1 GB for both tiled recordings. (A forked second process and a decoding thread
    were measured against this one-thread build and removed: see README.md, Design.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, measure_pair, recording, run_child

PYARROW_READ = """
import sys
import pyarrow.parquet as pq
pq.ParquetFile(sys.argv[1]).read()
"""

PYARROW_ROW_GROUPS = """
import sys
import pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
for i in range(f.metadata.num_row_groups):
    f.read_row_group(i)
"""

BUILD = """
import sys
from rezgen.cli import main
sys.argv = ["rezgen", "build", sys.argv[1], "-o", sys.argv[2], "-q"]
main()
"""

TILED_HOURS = (6, 24)

GOAL_RATIO = 2.0
GOAL_RSS_MB = 400
GOAL_DAY_RSS_MB = 1024
GOAL_DAY_SITE_MB = 50
GOAL_PAINT_MS = 1000
DAY_HOURS = 24


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def site_bytes(path: Path) -> tuple[int, int]:
    """(sum of file sizes, bytes of the blocks they take on disk)."""
    size = blocks = 0
    for root, _, files in os.walk(path):
        for name in files:
            st = os.stat(os.path.join(root, name))
            size += st.st_size
            blocks += st.st_blocks * 512
    return size, blocks


def bench_c16(cache: Path, runs: int) -> Path:
    path = str(recording("c16.parquet"))
    out = cache / "site-c16"
    floor, build = measure_pair((PYARROW_READ, path), (BUILD, path, str(out)), runs=runs)
    ratio = build.wall / floor.wall
    print(f"(a) c16.parquet ({Path(path).stat().st_size / 1e6:.1f} MB on disk), runs taken in turns")
    print(f"    pyarrow read   median {floor.wall:.3f} s  runs {floor.walls()}  peak RSS {floor.rss:.0f} MB")
    print(f"    rezgen build   median {build.wall:.3f} s  runs {build.walls()}  peak RSS {build.rss:.0f} MB "
          f"(of which its child process {build.children_rss:.0f} MB)")
    print(f"    time ratio {ratio:.2f}x (goal <= {GOAL_RATIO:g})  {verdict(ratio <= GOAL_RATIO)}")
    print(f"    peak RSS {build.rss:.0f} MB (goal <= {GOAL_RSS_MB})  {verdict(build.rss <= GOAL_RSS_MB)}")
    size, disk = site_bytes(out)
    print(f"    site {size / 1e6:.1f} MB ({disk / 1e6:.1f} MB on disk)")
    return out


def bench_day(cache: Path) -> None:
    path = tiled(cache, "c16.parquet", DAY_HOURS)
    out = cache / "site-day"
    print(f"(b) {path.name}: {DAY_HOURS} h of c16 at 1 s ({path.stat().st_size / 1e6:.0f} MB on disk)", flush=True)
    floor = run_child(PYARROW_ROW_GROUPS, str(path))
    print(f"    pyarrow read, row group by row group   {floor.wall:.1f} s  peak RSS {floor.rss:.0f} MB", flush=True)
    build = run_child(BUILD, str(path), str(out))
    size, disk = site_bytes(out)
    print(f"    rezgen build   {build.wall:.1f} s ({build.wall / floor.wall:.1f}x the read)  "
          f"peak RSS {build.rss:.0f} MB")
    print(f"    peak RSS {build.rss:.0f} MB (goal <= {GOAL_DAY_RSS_MB})  {verdict(build.rss <= GOAL_DAY_RSS_MB)}")
    print(f"    site {size / 1e6:.1f} MB, {disk / 1e6:.1f} MB on disk (goal <= {GOAL_DAY_SITE_MB} MB)  "
          f"{verdict(disk <= GOAL_DAY_SITE_MB * 1e6)}")


def tiled(cache: Path, source: str, hours: int) -> Path:
    path = cache / f"{Path(source).stem}-{hours}h.parquet"
    if not path.exists():
        print(f"    making {path} (once; c16 to 24 h takes about 10 minutes)", flush=True)
        done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tile.py"), str(recording(source)),
                               str(path), "--hours", str(hours)], cwd=ROOT)
        if done.returncode != 0:
            sys.exit("benchmark: tiling failed")
    return path


def bench_builds(cache: Path, runs: int) -> None:
    print(f"(d) builds, {runs} runs of each taken in turns with the floor")
    # (recording, floor, its name, whether the memory goal applies)
    cases = [(recording("c16.parquet"), PYARROW_READ, "pyarrow read", False)] + \
        [(tiled(cache, "demo.parquet", hours), PYARROW_ROW_GROUPS, "pyarrow row groups", True)
         for hours in TILED_HOURS]
    for path, floor_code, floor_name, memory_goal in cases:
        floor, build = measure_pair((floor_code, str(path)), (BUILD, str(path), str(cache / "site-d")), runs=runs)
        print(f"    {path.name} ({path.stat().st_size / 1e6:.1f} MB on disk)")
        print(f"      {floor_name:<18} median {floor.wall:7.2f} s               peak RSS {floor.rss:5.0f} MB  "
              f"runs {floor.walls()}")
        print(f"      {'rezgen build':<18} median {build.wall:7.2f} s  {build.wall / floor.wall:5.2f}x floor  "
              f"peak RSS {build.rss:5.0f} MB  runs {build.walls()}", flush=True)
        if memory_goal:
            ok = build.rss <= GOAL_DAY_RSS_MB
            print(f"      peak RSS {build.rss:.0f} MB (goal <= {GOAL_DAY_RSS_MB})  {verdict(ok)}")


# Installed before any page script: polls (every few ms) for the first chart to hold drawn data.
PAINT_PROBE = """
(function () {
  function probe() {
    var el = document.querySelector('[data-plot-id]');
    var inst = el && window.echarts && echarts.getInstanceByDom(el);
    if (inst) {
      var series = inst.getOption().series || [];
      if (series.length && series[0].data && series[0].data.length && el.querySelector('canvas')) {
        window.__firstChart = performance.now();
        return;
      }
    }
    setTimeout(probe, 4);
  }
  probe();
})();
"""


def bench_paint(site: Path, runs: int = 5) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("benchmark: no chromium on PATH (apt-get install chromium)")
    index = (site / "index.html").resolve()
    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for run in range(runs + 1):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                context.add_init_script(PAINT_PROBE)
                page = context.new_page()
                page.goto(index.as_uri(), wait_until="commit")
                page.wait_for_function("() => window.__firstChart !== undefined", timeout=30000, polling=50)
                if run:  # the first page warms the browser up
                    times.append(page.evaluate("() => window.__firstChart"))
                context.close()
        finally:
            browser.close()
    median = statistics.median(times)
    print("(c) first chart of the c16 overview (file://, headless Chromium)")
    print(f"    median {median:.0f} ms  runs {' '.join(f'{t:.0f}' for t in times)}")
    print(f"    first paint {median:.0f} ms (goal <= {GOAL_PAINT_MS})  {verdict(median <= GOAL_PAINT_MS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="c16,day,paint,modes", help="comma-separated: c16, day, paint, modes")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of (a) after the warm-up")
    parser.add_argument("--mode-runs", type=int, default=5, help="timed runs of each build in (d)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("REZGEN_BENCH_CACHE", "/tmp/rezgen-bench")))
    args = parser.parse_args()
    parts = set(args.only.split(","))
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    site = args.cache / "site-c16"
    if "c16" in parts:
        site = bench_c16(args.cache, args.runs)
    if "paint" in parts:
        if not (site / "index.html").exists():
            run_child(BUILD, str(recording("c16.parquet")), str(site))
        bench_paint(site)
    if "day" in parts:
        bench_day(args.cache)
    if "modes" in parts:
        bench_builds(args.cache, args.mode_runs)
    print(f"(benchmarks took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
