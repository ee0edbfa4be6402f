"""The GPU picker (pages.gpus, static/js/gpus.js): with several GPUs, the GPU section's charts that are not per-GPU
can show one GPU (named by its model from systeminfo); per-GPU charts stay as they are. Expected values from the
Parquet file with numpy (rawparquet); the page in a real Chromium.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import Tab
from rawparquet import RawRecording
from shared import shared_recording
from siterecordings import Columns, timestamps, write_recording
from test_cgroups import served
from test_live_page import replayed_page
from test_site import build, eval_times, payload

from rezgen.pages.gpus import gpu_file

MODELS = ["NVIDIA H100 80GB HBM3", '<b onmouseover="window.__xss=1">Fake GPU</b>']
BUSY = {"0": 80.0, "1": 20.0}  # typical utilization %, far apart so that a mix-up shows


def write_two_gpus(path: Path) -> RawRecording:
    rng = np.random.default_rng(11)
    rows = 120
    stamps = timestamps(rng, rows)
    out = Columns({"source": "rezolus"})
    out.counter("cpu_usage", {"id": "0", "state": "user"}, "nanoseconds", np.cumsum(rng.integers(1, 9, rows)) * 1e8)
    out.gauge("cpu_cores", {}, None, np.ones(rows))
    for gpu, busy in BUSY.items():
        out.gauge("gpu_utilization", {"id": gpu}, "percentage", np.clip(busy + rng.normal(0, 5, rows), 0, 100).round())
        used = (10 + 60 * (gpu == "0")) * 2**30 + rng.integers(0, 2**28, rows)
        out.gauge("gpu_memory", {"id": gpu, "state": "used"}, "bytes", used.astype(float))
        out.gauge("gpu_memory", {"id": gpu, "state": "free"}, "bytes", (80 * 2**30 - used).astype(float))
    footer = {"systeminfo": {"hostname": "gpu-host", "gpus": [{"name": m, "vendor": "nvidia"} for m in MODELS]}}
    write_recording(path, stamps, [out], footer)
    return RawRecording(path)


def expected_utilization(rec: RawRecording, gpus: list[str]) -> list[tuple[int, float | None]]:
    """avg(gpu_utilization{id in gpus}) / 100 per step: each GPU's newest sample at or before the step."""
    columns = [c for c in rec.select("gpu_utilization") if c.labels["id"] in gpus]
    out = []
    for t in eval_times(rec):
        before = np.flatnonzero(rec.timestamps <= t)
        values = [rec.values(c)[before[-1]] for c in columns] if len(before) else []
        out.append((t // 1_000_000, sum(values) / len(values) / 100 if values else None))
    return out


@pytest.fixture(scope="module")
def gpu_site(tmp_path_factory) -> tuple[Path, RawRecording]:
    tmp = tmp_path_factory.mktemp("gpus")
    rec = write_two_gpus(tmp / "gpus.parquet")
    return build(rec.path, tmp / "site"), rec


def assert_points(points: list, expected: list[tuple[int, float | None]], what: str) -> None:
    by_ms = dict(expected)
    compared = 0
    for t, v in points:
        if v is not None:
            assert math.isclose(v, by_ms[t], rel_tol=1e-12), (what, t, v, by_ms[t])
            compared += 1
    assert compared > 100, what


def test_several_gpus_get_a_picker_with_their_models_and_a_file_per_gpu(gpu_site):
    site, rec = gpu_site
    data = payload(site, "_", "gpu")
    picker = data["gpus"]
    assert picker["ids"] == ["0", "1"] and picker["models"] == {"0": MODELS[0], "1": MODELS[1]}
    assert "gpu-pct" in picker["plots"] and "mem-used" in picker["plots"]
    assert not [p for p in picker["plots"] if "per-gpu" in p]  # per-GPU charts are per GPU already
    for gpu in picker["ids"]:
        assert re.fullmatch(r"[0-9a-f]{20}", picker["files"][gpu]) and picker["files"][gpu] == gpu_file(gpu)
        part = payload(site, "_", f"gpus/{picker['files'][gpu]}")
        assert part["gpu"] == gpu
        level = part["plots"]["gpu-pct"]["levels"][-1]
        assert_points(list(zip(level["t"], level["values"][0])), expected_utilization(rec, [gpu]), f"gpu {gpu}")


def test_one_gpu_gets_no_picker(tmp_path):
    site = build(shared_recording("sglang_gemma3.parquet"), tmp_path / "site")
    assert "gpus" not in payload(site, "_", "gpu") and not (site / "data" / "_" / "gpus").exists()


@pytest.mark.browser
def test_picking_a_gpu_filters_the_charts_that_are_not_per_gpu(gpu_site, browser):
    site, rec = gpu_site
    t = Tab(browser, site)
    try:
        page = t.open("gpu.html")
        options = page.eval_on_selector_all("#gpu-select option", "os => os.map(o => [o.value, o.textContent])")
        assert options == [["", "All GPUs (2)"], ["0", f"GPU 0 · {MODELS[0]}"], ["1", f"GPU 1 · {MODELS[1]}"]]

        def series(plot_id: str) -> list:
            return page.evaluate("""(id) => { const el = document.querySelector(`[data-plot-id="${id}"]`);
                el.scrollIntoView(); return el.__rezgen.inst.getOption().series.map(s => s.data); }""", plot_id)

        page.wait_for_function("() => document.querySelector('[data-plot-id=\"gpu-pct\"]').__rezgen")
        assert_points(series("gpu-pct")[0], expected_utilization(rec, ["0", "1"]), "all GPUs")
        heatmap = series("gpu-pct-per-gpu")
        page.select_option("#gpu-select", "1")
        page.wait_for_function("() => REZGEN.gpus.picked() === '1'")
        page.wait_for_timeout(100)
        assert_points(series("gpu-pct")[0], expected_utilization(rec, ["1"]), "GPU 1")
        assert series("gpu-pct-per-gpu") == heatmap  # per-GPU already: unchanged
        page.select_option("#gpu-select", "")
        page.wait_for_function("() => REZGEN.gpus.picked() === ''")
        page.wait_for_timeout(100)
        assert_points(series("gpu-pct")[0], expected_utilization(rec, ["0", "1"]), "all GPUs again")
        assert page.evaluate("window.__xss") is None and page.locator("#content b").count() == 0
        t.assert_clean()
    finally:
        t.context.close()


@pytest.mark.browser
@pytest.mark.live
def test_a_live_page_picks_a_gpu_and_keeps_it_live(gpu_site, browser, tmp_path):
    """`rezgen replay` of the two-GPU recording feeding `rezgen serve --live`: GPU 1's twin is drawn, and the
    points pushed afterwards extend it."""
    _, rec = gpu_site
    with replayed_page(browser, rec.path, tmp_path, "gpu.html") as (page, errors):
        page.wait_for_function("() => { const el = document.querySelector('[data-plot-id=\"gpu-pct\"]');"
                               " return el && el.__rezgen; }", timeout=30000)
        page.select_option("#gpu-select", "1")
        page.wait_for_function("() => REZGEN.gpus.picked() === '1'")
        script = """() => document.querySelector('[data-plot-id="gpu-pct"]').__rezgen.inst.getOption().series[0].data
                         .filter(p => p[1] !== null).map(p => p[1])"""
        first = page.evaluate(script)
        page.wait_for_function(f"() => ({script})().length > {len(first) + 2}", timeout=30000)
        values = page.evaluate(script)
        recorded = {gpu: {v / 100 for v in rec.values(c)} for c in rec.select("gpu_utilization")
                    for gpu in [c.labels["id"]]}
        assert values and set(values) <= recorded["1"] and not set(values) <= recorded["0"]
        assert errors == []


def test_the_twins_are_hidden_groups_in_the_api_and_not_charts_of_the_page(gpu_site, tmp_path):
    _, rec = gpu_site
    with served(rec.path, tmp_path) as url:
        groups = httpx.get(url + "api/dashboard/gpu").json()["groups"]
        hidden = [g for g in groups if g.get("hidden")]
        assert [g["name"] for g in hidden] == ["GPU 0", "GPU 1"]
        twin = next(p for p in hidden[1]["plots"] if p["id"] == "gpu-pct@gpu1")
        assert twin["query"] == 'avg(gpu_utilization{id="1"}) / 100'
        page = httpx.get(url + "gpu.html").text
        assert "@gpu" not in page and 'data-plot-id="gpu-pct"' in page
