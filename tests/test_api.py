"""rezgen's own HTTP API of `rezgen serve` (/api/metrics, /api/dashboard, /api/plot, /api/query), against a real
server process: metadata and raw values are checked against the parquet file read with pyarrow, plot data against
the data files of a site built by `rezgen build`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from rawparquet import RawRecording
from shared import shared_recording

from rezgen.resources import resource_dir

READY = re.compile(r"serving .* at (http://127\.0\.0\.1:\d+)/")
FIRST, LAST = 1779156029, 1779156389  # c16.parquet: 361 rows, one a second
REGISTER = re.compile(r'REZGEN\.register\("([^"]*)",(.*)\);\s*\Z', re.S)


@pytest.fixture(scope="module")
def c16() -> Path:
    return shared_recording("c16.parquet")


@pytest.fixture(scope="module")
def raw(c16: Path) -> RawRecording:
    return RawRecording(c16)


def serve(recording: Path, log: Path) -> Iterator[str]:
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "rezgen", "serve", str(recording), "--port", "0"],
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        match = READY.search(line)
        assert match, f"no ready line: {line!r} {log.read_text()}"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proc.stdout.close()
    assert "Traceback" not in log.read_text(), log.read_text()


def build(recording: Path, out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "rezgen", "build", str(recording), "-o", str(out), "-q"], check=True,
                   capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def url(c16: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(c16, tmp_path_factory.mktemp("serve") / "serve.log")


@pytest.fixture(scope="module")
def ab() -> Path:
    return shared_recording("AB_base.parquet")


@pytest.fixture(scope="module")
def ab_url(ab: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(ab, tmp_path_factory.mktemp("serve-ab") / "serve.log")


@pytest.fixture(scope="module")
def site(c16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(c16, tmp_path_factory.mktemp("site") / "site")


def get(url: str, path: str, status: int = 200, **params: str) -> object:
    response = httpx.get(url + path, params=params, timeout=60)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    if status != 200:
        assert set(body) == {"error"} and "Traceback" not in body["error"]
    return body


def static_plot(site: Path, route: str, plot_id: str) -> dict:
    match = REGISTER.match((site / "data" / "_" / f"{route}.js").read_text())
    assert match and match.group(1) == f"_/{route}"
    payload = json.loads(match.group(2))
    return next(p for group in payload["groups"] for p in group["plots"] if p["id"] == plot_id)


# -- /api/metrics --------------------------------------------------------------------------------------------------


def test_metrics_describe_the_recording(url: str, raw: RawRecording) -> None:
    metrics = {m["name"]: m for m in get(url, "/api/metrics")["metrics"]}
    assert list(metrics) == sorted({c.metric for c in raw.metric_columns})
    descriptions = raw.descriptions()
    for name, entry in metrics.items():
        columns = raw.select(name)
        assert entry["series"] == len(columns), name
        assert entry["type"] == columns[0].kind, name
        assert entry["unit"] == columns[0].meta.get("unit"), name
        exact = columns[0].meta.get("description") or descriptions.get(name)
        if exact or entry["description"] is None:
            assert entry["description"] == exact, name
        else:  # a Prometheus family's help on one of its samples (`x_count` described as `x`)
            assert any(name.startswith(family) and entry["description"] == text
                       for family, text in descriptions.items()), name
        labels = dict(entry["labels"])
        if len({c.identity for c in columns}) < len(columns):  # same identity twice: kept apart by column position
            assert set(labels.pop("column")) == {str(c.index) for c in columns if c.identity in {
                d.identity for d in columns if d is not c}}, name
        names = sorted({k for c in columns for k in c.labels})
        assert labels == {k: sorted({c.labels[k] for c in columns if k in c.labels}) for k in names}, name


def test_series_count_of_one_metric_counted_with_pyarrow(url: str, c16: Path) -> None:
    import pyarrow.parquet as pq

    fields = [f for f in pq.read_schema(c16) if (f.metadata or {}).get(b"metric") == b"cgroup_syscall"]
    entry = next(m for m in get(url, "/api/metrics")["metrics"] if m["name"] == "cgroup_syscall")
    assert entry["series"] == len(fields) == 369
    assert entry["labels"]["op"] == sorted({f.metadata[b"op"].decode() for f in fields})


# -- /api/dashboard ------------------------------------------------------------------------------------------------


def test_dashboard_structure_is_the_dashboard_file(url: str) -> None:
    with open(resource_dir("dashboards") / "overview.toml", "rb") as handle:
        source = tomllib.load(handle)
    section = get(url, "/api/dashboard/overview")
    assert (section["title"], section["route"]) == (source["title"], source["route"])
    # c16 carries services with a throughput KPI (vllm, llm-perf): the overview ends with their normalized group.
    assert [g["name"] for g in section["groups"]] == [g["name"] for g in source["group"]] + ["Normalized by Throughput"]
    for group, expected in zip(section["groups"], source["group"]):
        assert group["description"] == expected.get("description")
        assert [(p["id"], p["title"], p["query"]) for p in group["plots"]] == [
            (p["id"], p["title"], p["query"]) for p in expected["plot"]]
    busy = section["groups"][0]["plots"][0]
    assert busy == {"id": "cpu-busy", "title": "Busy %", "query": source["group"][0]["plot"][0]["query"],
                    "unit": "percentage", "kind": "line", "width": "half", "range": [0, 1], "log": False,
                    "description": source["group"][0]["plot"][0]["description"]}
    assert "levels" not in json.dumps(section)  # structure only, no data
    index = get(url, "/api/dashboard")["sections"]
    assert index[0]["route"] == "overview" and {"route", "title", "order", "plots"} == set(index[0])
    assert [s["route"] for s in index if s["route"].startswith("service-")] == ["service-llm-perf", "service-vllm"]


def test_an_unknown_section_is_404(url: str) -> None:
    assert "nope" in get(url, "/api/dashboard/nope", 404)["error"]


# -- /api/plot -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "plot_id"), [("overview", "cpu-busy"), ("overview", "cpu-busy-heatmap"),
                                                ("blockio", "latency-read")])
def test_plot_data_equals_the_static_site(url: str, site: Path, route: str, plot_id: str) -> None:
    served = get(url, f"/api/plot/{route}/{plot_id}")
    window = served.pop("window")
    assert served == static_plot(site, route, plot_id)
    assert window == {"start": FIRST * 1000, "end": LAST * 1000, "step": 1000}


@pytest.mark.slow
def test_plots_of_a_second_recording_equal_its_static_site(ab_url: str, ab: Path, tmp_path: Path) -> None:
    site = build(ab, tmp_path / "site")
    for route, plot_id in [("overview", "cpu-busy"), ("cpu", "busy-pct-per-cpu"), ("blockio", "latency-read")]:
        served = get(ab_url, f"/api/plot/{route}/{plot_id}")
        served.pop("window")
        assert served == static_plot(site, route, plot_id), (route, plot_id)


def test_a_zoomed_plot_has_the_points_of_the_whole_one(url: str) -> None:
    whole = get(url, "/api/plot/overview/cpu-busy")
    part = get(url, "/api/plot/overview/cpu-busy", start=str(FIRST + 99.5), end="2026-05-19T02:03:20.5Z")
    assert part["window"] == {"start": (FIRST + 100) * 1000, "end": (FIRST + 171) * 1000 + 500, "step": 1000}
    full = next(level for level in whole["levels"] if level["bucket"] == 1)
    zoom = next(level for level in part["levels"] if level["bucket"] == 1)
    assert zoom["t"] == list(range((FIRST + 100) * 1000, (FIRST + 172) * 1000, 1000))
    first = full["t"].index(zoom["t"][0])
    assert zoom["values"] == [row[first: first + len(zoom["t"])] for row in full["values"]]


def test_a_plot_outside_the_data_is_empty(url: str) -> None:
    after = get(url, "/api/plot/overview/cpu-busy", start=str(LAST + 10))
    assert (after["names"], after["levels"], after["window"]) == ([], [], None)
    assert after["id"] == "cpu-busy"


@pytest.mark.parametrize(("path", "params", "status", "message"), [
    ("/api/plot/overview/nope", {}, 404, "no plot 'nope'"),
    ("/api/plot/nope/cpu-busy", {}, 404, "no dashboard section 'nope'"),
    ("/api/plot/overview/cpu-busy", {"start": "soon"}, 400, 'invalid parameter "start"'),
    ("/api/plot/overview/cpu-busy", {"start": str(LAST), "end": str(FIRST)}, 400, "end must not be before start"),
    ("/api/plot/overview/cpu-busy", {"end": "1e999999999"}, 400, "out of range"),
    ("/api/plot/overview/cpu-busy", {"host": "elsewhere"}, 400, "unknown host 'elsewhere'"),
])
def test_plot_errors(url: str, path: str, params: dict[str, str], status: int, message: str) -> None:
    assert message in get(url, path, status, **params)["error"]


def test_a_plot_ignores_unknown_parameters_and_takes_the_single_host_name(url: str) -> None:
    plain = get(url, "/api/plot/overview/cpu-busy")
    assert get(url, "/api/plot/overview/cpu-busy", host="_", color="blue") == plain


# -- /api/query ----------------------------------------------------------------------------------------------------


def expected_values(raw: RawRecording, metric: str, labels: dict[str, str], lo: int = 0, hi: int = 2**62
                    ) -> list[list[float]]:
    [column] = raw.select(metric, **labels)
    t_ms = raw.timestamps // 1_000_000
    if column.kind == "histogram":
        present, dense = raw.histogram(column)
        values = np.where(present, dense.sum(axis=1).astype(float), np.nan)
    else:
        values = raw.values(column)
    keep = ~np.isnan(values) & (raw.timestamps >= lo * 10**9) & (raw.timestamps <= hi * 10**9)
    return [[int(t), float(v)] for t, v in zip(t_ms[keep], values[keep])]


@pytest.mark.parametrize(("metric", "labels"), [("cpu_cores", {}), ("blockio_bytes", {"op": "read"}),
                                                ("cpu_usage", {"id": "3", "state": "user"}),
                                                ("blockio_latency", {"op": "write"})])
def test_raw_series_equal_the_parquet_columns(url: str, raw: RawRecording, metric: str, labels: dict) -> None:
    answer = get(url, "/api/query", metric=metric, labels=json.dumps(labels))
    [series] = answer["series"]
    assert answer["metric"] == metric and answer["type"] == raw.select(metric)[0].kind
    assert {k: series["labels"][k] for k in labels} == labels
    assert series["values"] == expected_values(raw, metric, labels)
    assert len(series["values"]) > 100
    window = get(url, "/api/query", metric=metric, labels=json.dumps(labels), start=str(FIRST + 10),
                 end=str(FIRST + 20))
    assert window["series"][0]["values"] == expected_values(raw, metric, labels, FIRST + 10, FIRST + 20)
    assert len(window["series"][0]["values"]) == 11  # both ends inclusive


def test_raw_series_of_a_recording_with_a_gap(ab_url: str, ab: Path) -> None:
    raw = RawRecording(ab)
    labels = {"id": "0", "state": "user"}
    [series] = get(ab_url, "/api/query", metric="cpu_usage", labels=json.dumps(labels))["series"]
    assert series["values"] == expected_values(raw, "cpu_usage", labels)
    gap = 1776804242_000
    assert gap not in [t for t, _ in series["values"]] and gap - 1000 in [t for t, _ in series["values"]]


def test_raw_query_without_labels_gives_every_series(url: str, raw: RawRecording) -> None:
    answer = get(url, "/api/query", metric="blockio_bytes")
    assert sorted(s["labels"]["op"] for s in answer["series"]) == sorted(
        c.labels["op"] for c in raw.select("blockio_bytes"))
    assert get(url, "/api/query", metric="blockio_bytes", labels='{"op": "nope"}')["series"] == []


@pytest.mark.parametrize(("params", "status", "message"), [
    ({}, 400, "missing parameter 'metric'"),
    ({"metric": "no_such_metric"}, 404, "no metric 'no_such_metric'"),
    ({"metric": "cpu_cores", "labels": "{op: read}"}, 400, "labels must be a JSON object"),
    ({"metric": "cpu_cores", "labels": '["op"]'}, 400, "labels must be a JSON object"),
    ({"metric": "cpu_cores", "labels": '{"op": 1}'}, 400, "string values"),
    ({"metric": "cpu_cores", "start": "then"}, 400, 'invalid parameter "start"'),
    ({"metric": "cpu_cores", "start": str(LAST), "end": str(FIRST)}, 400, "end must not be before start"),
])
def test_raw_query_errors(url: str, params: dict[str, str], status: int, message: str) -> None:
    assert message in get(url, "/api/query", status, **params)["error"]


# -- limits (in-process: the recordings are too short to reach them) ------------------------------------------------


@pytest.fixture(scope="module")
def source(c16: Path):
    from rezgen.dashboards import load_dashboards
    from rezgen.recording.reader import open_recording
    from rezgen.server.source import RecordingSource

    return RecordingSource(open_recording(c16), load_dashboards())


def test_a_raw_query_with_too_many_samples_is_refused(source, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.datastructures import ImmutableMultiDict

    from rezgen.server import api

    monkeypatch.setattr(api, "MAX_RAW_POINTS", 361)
    assert len(api.raw_query(source, ImmutableMultiDict({"metric": "cpu_cores"}), {})["series"][0]["values"]) == 361
    with pytest.raises(api.ApiError, match=r"too many samples \(1,444; at most 361\): narrow") as refused:
        api.raw_query(source, ImmutableMultiDict({"metric": "blockio_bytes", "labels": "{}"}), {})
    assert refused.value.status == 400


def test_a_plot_longer_than_the_limit_is_evaluated_at_a_coarser_step(source, monkeypatch: pytest.MonkeyPatch
                                                                     ) -> None:
    from starlette.datastructures import ImmutableMultiDict

    from rezgen.server import api

    monkeypatch.setattr(api, "MAX_PLOT_STEPS", 100)
    payload = api.plot(source, ImmutableMultiDict(), {"section": "overview", "id": "cpu-busy"})
    assert payload["window"] == {"start": FIRST * 1000, "end": LAST * 1000, "step": 4000}
    assert payload["levels"][-1]["t"][:3] == [FIRST * 1000, (FIRST + 4) * 1000, (FIRST + 8) * 1000]


# -- step and spectrum (the viewer's step selector and quantile spectrum) -------------------------------------------


@pytest.mark.parametrize(("step", "ms"), [("5s", 5000), ("15", 15000), ("1m", 60000), ("1.4s", 1000), ("0.2", 1000)])
def test_a_plot_at_a_chosen_step_is_evaluated_every_whole_sampling_interval_nearest_it(url: str, step: str, ms: int
                                                                                     ) -> None:
    payload = get(url, "/api/plot/overview/cpu-busy", step=step)
    assert payload["window"] == {"start": FIRST * 1000, "end": LAST * 1000, "step": ms}
    level = payload["levels"][-1]
    assert level["t"] == list(range(FIRST * 1000, LAST * 1000 + 1, ms))
    # The same values as a range query of the Prometheus API at that step.
    (series,) = get(url, "/api/v1/query_range", query="sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9",
                    start=str(FIRST), end=str(LAST), step=str(ms / 1000))["data"]["result"]
    expected = {int(t * 1000): float(v) for t, v in series["values"]}
    got = dict(zip(level["t"], level["values"][0]))
    assert {t: v for t, v in got.items() if v is not None} == pytest.approx(expected, rel=1e-3)


def test_a_spectrum_from_the_server_equals_the_static_sites_file(url: str, site: Path) -> None:
    from rezgen.pages.spectra import spectrum_file

    for mode in ("full", "tail"):
        path, key = spectrum_file("_", "blockio", "latency-read", mode)
        match = REGISTER.match((site / path).read_text())
        assert match and match.group(1) == key
        assert get(url, "/api/spectrum/blockio/latency-read", mode=mode) == json.loads(match.group(2))


@pytest.mark.parametrize(("path", "params", "status", "message"), [
    ("/api/spectrum/blockio/latency-read", {"mode": "wide"}, 400, "mode must be one of full, tail"),
    ("/api/spectrum/overview/cpu-busy", {}, 400, "not a percentile plot"),
    ("/api/spectrum/overview/nope", {}, 404, "no plot 'nope'"),
    ("/api/plot/overview/cpu-busy", {"step": "0s"}, 400, "step must be positive"),
    ("/api/plot/overview/cpu-busy", {"step": "soon"}, 400, "cannot parse"),
])
def test_bad_step_and_spectrum_requests_are_refused_with_a_reason(url: str, path: str, params: dict, status: int,
                                                                  message: str) -> None:
    assert message in get(url, path, status, **params)["error"]


def test_a_plot_on_another_grid_has_its_steps_on_that_grid(url: str) -> None:
    payload = get(url, "/api/plot/overview/cpu-busy", grid=str(FIRST + 0.5), start=str(FIRST + 10), step="5s")
    assert payload["window"] == {"start": (FIRST + 10) * 1000 + 500, "end": LAST * 1000, "step": 5000}
    assert payload["levels"][-1]["t"][:2] == [(FIRST + 10) * 1000 + 500, (FIRST + 15) * 1000 + 500]
