"""Rollups of closed segments (rezgen.server.rollups, long_range, rollup_builder): real segments written by the
project's writer, rollups built by the server's builder into real files, and a long range read back from them,
against the static site that `rezgen build DIR --start --end` makes of the same rows.

The stated rule a long range from rollups keeps: its finest level's buckets are whole 10 s cells on multiples of
10 s, each point the minimum and maximum of the full-resolution values of its cell; so each cell of the static
site's full-resolution level gives exactly those two numbers (rounded alike), and every row's overall minimum and
maximum are the static site's.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rezgen.dashboards import load_dashboards
from rezgen.live.datadir import list_segments, segment_file_name
from rezgen.live.segments import merge_streams
from rezgen.plotdata.levels import ROUND_DIGITS, round_significant
from rezgen.plotdata.plots import TimeRange
from rezgen.recording.reader import open_recording
from rezgen.server.long_range import LongRange
from rezgen.server.rollup_builder import RollupBuilder
from rezgen.server.rollups import digest, rollup_path, segment_sections
from rezgen.synthetic.sample import generate_sample

S = 1_000_000_000
START = 1_796_000_000 * S
SECONDS = 1800
NODE = "host-a"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Half an hour at 1 s as three ten-minute segments (the project's writer), and the unsplit recording."""
    root = tmp_path_factory.mktemp("rollups")
    whole = root / "whole.parquet"
    generate_sample(whole, duration_s=SECONDS, cpus=2, interval_ms=1000, start_ns=START, seed=5)
    # Samples on whole seconds (an agent sampling on its clock's seconds): the static site's grid and the rollups'
    # (multiples of the step) then take the same sample at every step, whatever their phases.
    table = pq.read_table(whole)
    stamps = table.column(0).to_numpy().astype(np.int64)
    exact = pa.array((stamps + S // 2) // S * S, type=table.schema.field(0).type)
    pq.write_table(table.set_column(0, table.schema.field(0), exact), whole)
    folder = root / "data" / NODE
    folder.mkdir(parents=True)
    stamps = pq.read_table(whole, columns=["timestamp"]).column(0).to_numpy().astype(np.int64)
    for lo in range(0, len(stamps), 600):
        rows = stamps[lo : lo + 600]
        merge_streams([[whole]], folder / segment_file_name(int(rows[0]), int(rows[-1])), int(rows[0]), int(rows[-1]))
    return root


@pytest.fixture(scope="module")
def static_site(data_dir: Path) -> dict[str, dict]:
    """The overview's plots of `rezgen build DIR --start --end` over the whole half hour."""
    out = data_dir / "site"
    done = subprocess.run([sys.executable, "-m", "rezgen", "build", str(data_dir / "data"), "--start",
                           str(START / S), "--end", str((START + (SECONDS - 1) * S) / S), "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    text = next((out / "data").rglob("overview.js")).read_text()
    payload = json.loads(text[text.index(",") + 1 : text.rindex(")")])
    return {p["id"]: p for g in payload["groups"] for p in g["plots"]}


def built(root: Path, sections=None) -> RollupBuilder:
    sections = sections or load_dashboards()
    builder = RollupBuilder(root, digest(sections, S), segment_sections(sections, lambda name: None), S)
    builder.build_pending()
    return builder


def overview():
    return next(s for s in load_dashboards() if s.route == "overview")


def long_range(data_dir: Path, window_from: int | None = None, reader: LongRange | None = None) -> dict:
    """The overview over the half hour from the rollups; the live window is the recording's rows from
    `window_from` on (default: none of the rolled-up time)."""
    recording = open_recording(data_dir / "whole.parquet")
    store = recording.store
    if window_from is not None:
        from rezgen.live.history import history_store

        store = history_store(data_dir / "data", window_from, START + SECONDS * S, S, lookback_ns=0)
    reader = reader or LongRange(data_dir / "data", NODE, digest(load_dashboards(), S), S)
    span = TimeRange(START, START + (SECONDS - 1) * S, S)
    plots = reader.section_plots(overview(), span, store, threading.RLock())
    assert plots is not None
    return plots


def cells_of(level: dict) -> dict[int, tuple[float, float]]:
    """A full-resolution level's rows as (min, max) per 10 s cell, rounded as reduced levels are."""
    out = []
    for row in level["values"]:
        found: dict[int, list[float]] = defaultdict(list)
        for t, v in zip(level["t"], row):
            if v is not None:
                found[t // 10_000].append(v)
        out.append({cell: tuple(round_significant(np.array([min(vs), max(vs)]), ROUND_DIGITS).tolist())
                    for cell, vs in found.items()})
    return out


def rolled_cells(level: dict) -> list[dict[int, tuple[float, float]]]:
    out = []
    for row in level["values"]:
        out.append({t // 10_000: (lo, hi) for t, lo, hi in zip(level["t"][0::2], row[0::2], row[1::2])
                    if lo is not None})
    return out


def extremes(level: dict) -> list[tuple[float, float]]:
    return [(min(v for v in row if v is not None), max(v for v in row if v is not None)) for row in level["values"]]


@pytest.mark.parametrize("seam", [None, 2], ids=["all-rolled-up", "last-segment-from-the-window"])
def test_a_long_range_is_the_static_sites_envelope_at_whole_cells(data_dir: Path, static_site: dict, seam) -> None:
    builder = built(data_dir / "data")
    files = list_segments(data_dir / "data", with_open=False)[NODE]
    assert builder.pending() == [] and all(rollup_path(s.path, builder.key).exists() for s in files)
    window_from = None
    if seam is not None:  # the newest segment not rolled up yet: the live window answers from its first sample
        rollup_path(files[seam].path, builder.key).unlink()
        window_from = files[seam - 1].start_ns  # and what its rates look back to
    reader = LongRange(data_dir / "data", NODE, builder.key, S)
    plots = long_range(data_dir, window_from, reader)
    if seam is not None:  # the window's settled cells are kept between loads: the same answer again
        assert long_range(data_dir, window_from, reader) == plots
    checked = 0
    for plot_id, expected in static_site.items():
        served = plots[plot_id]
        assert served is not None and served["names"] == expected["names"], plot_id
        assert all(level["bucket"] % 10 == 0 for level in served["levels"])
        finest = served["levels"][-1]
        full = next((level for level in expected["levels"] if level["bucket"] == 1), None)
        heatmap = served["kind"] == "heatmap"  # a heatmap keeps each bucket's maximum alone
        if full is not None:  # each cell's min and max of the full resolution
            want = cells_of(full)
            if heatmap:
                assert [{t // 10_000: v for t, v in zip(finest["t"], row) if v is not None}
                        for row in finest["values"]] == [{c: hi for c, (_, hi) in row.items()} for row in want]
            else:
                assert rolled_cells(finest) == want, plot_id
            checked += 1
        # every row's extremes are the static site's, whatever the buckets
        rounded = [tuple(round_significant(np.array(pair), ROUND_DIGITS).tolist())
                   for pair in extremes(expected["levels"][0])]
        served_extremes = extremes(finest)
        assert [hi for _, hi in served_extremes] == [hi for _, hi in rounded], plot_id
        if not heatmap:
            assert served_extremes == rounded, plot_id
    assert checked >= 5
    if seam is not None:
        built(data_dir / "data")  # back as it was for the other tests


def test_a_percentile_plot_keeps_its_bucket_heatmap(data_dir: Path, static_site: dict) -> None:
    built(data_dir / "data")
    plots = long_range(data_dir)
    for plot_id, expected in static_site.items():
        if expected["kind"] != "percentiles":
            continue
        heat, want = plots[plot_id]["buckets"], expected["buckets"]
        assert heat["edges"] == want["edges"]
        # the rates summed over the half hour per bucket: the same (cells are means over their steps)
        def total(h: dict) -> np.ndarray:
            stride = (h["t"][1] - h["t"][0]) // 1000 if len(h["t"]) > 1 else 1
            sums = np.zeros(len(h["edges"]))
            for _, bucket, rate in h["cells"]:
                sums[bucket] += rate * stride
            return sums
        np.testing.assert_allclose(total(heat), total(want), rtol=2e-3)


def test_changed_dashboards_make_the_rollups_stale(data_dir: Path) -> None:
    sections = load_dashboards()
    changed = load_dashboards()
    plot = next(s for s in changed if s.route == "overview").plots[0]
    plot.query = f"2 * ({plot.query})"
    assert digest(changed, S) != digest(sections, S)
    builder = built(data_dir / "data")
    old = {rollup_path(s.path, builder.key) for s in list_segments(data_dir / "data", with_open=False)[NODE]}
    other = RollupBuilder(data_dir / "data", digest(changed, S), segment_sections(changed, lambda name: None), S)
    assert len(other.pending()) == len(old)  # the old ones do not count
    other.build_pending()
    assert not any(path.exists() for path in old)  # pruned
    built(data_dir / "data")
    assert all(path.exists() for path in old)


def test_a_corrupt_or_missing_rollup_is_skipped_with_a_warning_and_the_segments_answer(data_dir: Path,
                                                                                       caplog) -> None:
    builder = built(data_dir / "data")
    files = list_segments(data_dir / "data", with_open=False)[NODE]
    broken = rollup_path(files[0].path, builder.key)
    broken.write_bytes(b"PK\x03\x04 not a rollup")
    reader = LongRange(data_dir / "data", NODE, builder.key, S)
    span = TimeRange(START, START + (SECONDS - 1) * S, S)
    window = open_recording(files[-1].path).store  # the live window holds the last segment only
    with caplog.at_level(logging.WARNING):
        assert reader.section_plots(overview(), span, window, threading.RLock()) is None
    assert "skipping a rollup" in caplog.text and broken.name in caplog.text
    assert not broken.exists()  # removed, for the builder to make again
    assert reader.section_plots(overview(), span, window, threading.RLock()) is None  # missing: the same
    built(data_dir / "data")
    assert reader.section_plots(overview(), span, window, threading.RLock()) is not None


@pytest.mark.live
@pytest.mark.slow
def test_a_live_server_rolls_up_its_data_dir_and_serves_a_long_range_from_it(tmp_path: Path) -> None:
    """A real `serve --live --data-dir` over segments of half an hour that ended ten minutes ago (another tool's
    files: no hook in the writer), `rezgen replay` as the agent: its builder rolls them up, the last hour is the
    static site's envelope where the segments are, and a corrupt rollup is skipped with a warning (the segments
    answer) and made again."""
    import time

    import httpx
    from processes import wait_for
    from shared import shared_recording
    from test_live_history import node_dir, serve
    from test_live_record import Proc, status

    agent = Proc(["replay", str(shared_recording("demo.parquet")), "--port", "0"], tmp_path / "replay.log")
    server = None
    try:
        start = (time.time_ns() // S - 2400) // 10 * 10 * S
        whole = tmp_path / "whole.parquet"
        generate_sample(whole, duration_s=SECONDS, cpus=2, interval_ms=1000, start_ns=start, seed=7)
        table = pq.read_table(whole)
        stamps = (table.column(0).to_numpy().astype(np.int64) + S // 2) // S * S
        pq.write_table(table.set_column(0, table.schema.field(0), pa.array(stamps, table.schema.field(0).type)), whole)
        folder = node_dir(tmp_path / "data", agent)
        folder.mkdir(parents=True)
        for lo in range(0, len(stamps), 600):
            rows = stamps[lo : lo + 600]
            merge_streams([[whole]], folder / segment_file_name(int(rows[0]), int(rows[-1])), int(rows[0]),
                          int(rows[-1]))
        server = serve(agent, tmp_path / "data", tmp_path / "live.log", "--retention", "5m", flush_s=None,
                       interval="1s")
        segments = len(list(folder.glob("*.parquet")))
        wait_for(lambda: (found := status(server.url)["history"]["rollups"])["built"] >= segments
                 and found["pending"] == 0, timeout=300)
        site = tmp_path / "site"
        done = subprocess.run([sys.executable, "-m", "rezgen", "build", str(whole), "-o", str(site), "-q"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        text = next((site / "data").rglob("overview.js")).read_text()
        static = next(p for g in json.loads(text[text.index(",") + 1 : text.rindex(")")])["groups"]
                      for p in g["plots"] if p["id"] == "cpu-busy")
        want = cells_of(next(level for level in static["levels"] if level["bucket"] == 1))[0]

        def last_hour() -> dict:
            text = httpx.get(server.url + "data/_/overview.js?range=1h", timeout=300).text
            payload = json.loads(text[text.index(",") + 1 : text.rindex(")")])
            return next(p for g in payload["groups"] for p in g["plots"] if p["id"] == "cpu-busy")["levels"][-1]

        level = last_hour()
        assert level["bucket"] % 10 == 0
        got = rolled_cells(level)[0]
        inside = [cell for cell in want if start // S // 10 < cell < int(stamps[-1]) // S // 10]  # whole cells
        assert inside and {c: got.get(c) for c in inside} == {c: want[c] for c in inside}
        for path in folder.glob(".rollups/*.rollup"):
            path.write_bytes(b"not a rollup")
        raw = last_hour()  # the segments answer, as before rollups
        assert raw["bucket"] != level["bucket"] or raw["t"] != level["t"]
        assert "skipping a rollup" in server.log.read_text()
        wait_for(lambda: status(server.url)["history"]["rollups"]["built"] >= 2 * segments, timeout=300)
        again = last_hour()
        assert {c: rolled_cells(again)[0].get(c) for c in inside} == {c: want[c] for c in inside}
        assert "Traceback" not in server.log.read_text()
    finally:
        if server is not None:
            server.kill()
        agent.kill()
