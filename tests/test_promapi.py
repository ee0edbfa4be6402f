"""The Prometheus HTTP API of `rezgen serve` (/api/v1/*), against a real server process and real clients.

Expected query results come from the `rezgen query` CLI (itself checked against a real Prometheus), label and
series look-ups from the parquet file read with pyarrow, and Debian's `promtool` is the client for its
`query instant|range|series|labels` commands.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from rawparquet import RawRecording
from shared import shared_recording, unavailable

READY = re.compile(r"serving .* at (http://127\.0\.0\.1:\d+)/")
C16_FIRST, C16_LAST = 1779156029, 1779156389  # c16.parquet: 361 rows, one a second
AT = C16_FIRST + 200
AB_FIRST, AB_GAP, AB_LAST = 1776803963, 1776804242, 1776804263  # AB_base.parquet: no row at AB_GAP


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


@pytest.fixture(scope="module")
def c16() -> Path:
    return shared_recording("c16.parquet")


@pytest.fixture(scope="module")
def url(c16: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(c16, tmp_path_factory.mktemp("serve") / "serve.log")


@pytest.fixture(scope="module")
def ab() -> Path:
    return shared_recording("AB_base.parquet")


@pytest.fixture(scope="module")
def ab_url(ab: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(ab, tmp_path_factory.mktemp("serve-ab") / "serve.log")


def cli(recording: Path, expr: str, *options: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "rezgen", "query", str(recording), expr, *options],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def get(url: str, path: str, **params: str | list[str]) -> httpx.Response:
    response = httpx.get(url + path, params=params, timeout=60)
    assert response.status_code != 500, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    return response


def ok(response: httpx.Response) -> object:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        unavailable("promtool is needed as a Prometheus API client (apt-get install prometheus)")
    return subprocess.run(["promtool", "query", *args], capture_output=True, text=True, timeout=120)


# -- queries equal the CLI -----------------------------------------------------------------------------------------

INSTANT = [
    "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9",
    "sum by (op) (rate(blockio_operations[1m]))",
    "histogram_quantile(0.99, sum by (op) (rate(blockio_latency[1m])))",
    "cpu_cores[5s]",  # a matrix
    "1 + 1",  # a scalar (Grafana's health check)
    '"hello"',  # a string
]


@pytest.mark.parametrize("expr", INSTANT)
def test_instant_query_equals_the_cli(url: str, c16: Path, expr: str) -> None:
    expected = cli(c16, expr, "--time", str(AT))
    assert get(url, "/api/v1/query", query=expr, time=str(AT)).json() == expected
    # POST, form-encoded, as Grafana and promtool send it; RFC 3339 names the same time.
    posted = httpx.post(url + "/api/v1/query", data={"query": expr, "time": "2026-05-19T02:03:49Z"}, timeout=60)
    assert posted.status_code == 200 and posted.json() == expected


RANGE = [
    ("sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9", str(C16_FIRST), str(C16_LAST), "1"),
    ("sum by (op) (rate(blockio_operations[1m]))", "2026-05-19T02:01:00Z", "2026-05-19T02:05:00Z", "15s"),
    ("topk(3, sum by (id) (rate(cpu_usage[30s])))", str(C16_FIRST + 10), str(C16_LAST - 10), "2.5"),
    ("histogram_quantile(0.5, sum(rate(blockio_latency[1m])))", str(C16_FIRST), str(C16_LAST), "1m"),
    ("cpu_cores", "1779156100.25", "1779156110.75", "500ms"),  # sub-second times and step
]


@pytest.mark.parametrize(("expr", "start", "end", "step"), RANGE)
def test_range_query_equals_the_cli(url: str, c16: Path, expr: str, start: str, end: str, step: str) -> None:
    expected = cli(c16, expr, "--start", start, "--end", end, "--step", step)
    assert expected["data"]["result"], "the comparison needs data"
    assert get(url, "/api/v1/query_range", query=expr, start=start, end=end, step=step).json() == expected
    posted = httpx.post(url + "/api/v1/query_range", data={"query": expr, "start": start, "end": end, "step": step},
                        timeout=60)
    assert posted.json() == expected


AB_RANGE = [
    ("sum(rate(cgroup_cpu_usage[1m]))", str(AB_FIRST), str(AB_LAST), "1"),  # counters that decrease (resets)
    ('irate(cpu_usage{id="0"}[5m])', str(AB_GAP - 5), str(AB_GAP + 5), "1"),  # across the missing row
    ("sum by (state) (increase(cpu_usage[30s]))", "2026-04-21T20:39:23Z", "2026-04-21T20:44:23Z", "10s"),
]


@pytest.mark.parametrize(("expr", "start", "end", "step"), AB_RANGE)
def test_queries_over_a_recording_with_a_gap_equal_the_cli(ab_url: str, ab: Path, expr: str, start: str, end: str,
                                                          step: str) -> None:
    expected = cli(ab, expr, "--start", start, "--end", end, "--step", step)
    assert expected["data"]["result"], "the comparison needs data"
    assert get(ab_url, "/api/v1/query_range", query=expr, start=start, end=end, step=step).json() == expected
    for at in (AB_GAP, AB_LAST):
        assert get(ab_url, "/api/v1/query", query=expr, time=str(at)).json() == cli(ab, expr, "--time", str(at))


def test_an_instant_query_without_time_is_at_the_newest_sample(url: str, c16: Path) -> None:
    expected = cli(c16, "sum(cpu_cores)", "--time", str(C16_LAST))
    assert ok(get(url, "/api/v1/query", query="sum(cpu_cores)")) == expected["data"]


# -- promtool as the client ----------------------------------------------------------------------------------------


def test_promtool_query_instant(url: str, c16: Path) -> None:
    expr = "sum by (op) (rate(blockio_operations[1m]))"
    expected = cli(c16, expr, "--time", str(AT))["data"]["result"]
    proc = promtool("instant", "-o", "json", url, expr, f"--time={AT}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected
    text = promtool("instant", url, "sum(cpu_cores)", "--time=2026-05-19T02:03:49Z")
    assert text.returncode == 0 and text.stdout.strip() == f"{{}} => 16 @[{AT}]"


def test_promtool_query_range(url: str, c16: Path) -> None:
    expr = "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9"
    expected = cli(c16, expr, "--start", str(C16_FIRST), "--end", str(C16_LAST), "--step", "10s")["data"]["result"]
    proc = promtool("range", "-o", "json", url, expr, f"--start={C16_FIRST}", f"--end={C16_LAST}", "--step=10s")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected
    assert len(expected[0]["values"]) == 36  # every 10 s; irate has no value at the first sample


def test_promtool_query_series(url: str, c16: Path) -> None:
    raw = RawRecording(c16)
    expected = sorted([{"__name__": c.metric, **c.labels} for c in raw.select("blockio_bytes")]
                      + [{"__name__": c.metric, **c.labels} for c in raw.select("cpu_cores")],
                      key=lambda labels: sorted(labels.items()))
    proc = promtool("series", "-o", "json", url, "--match=blockio_bytes", "--match=cpu_cores")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected
    read = promtool("series", url, '--match=blockio_bytes{op="read"}')
    assert read.returncode == 0
    assert read.stdout.strip() == ('{__name__="blockio_bytes", endpoint="http://0.0.0.0:4241/", node="rezolus", '
                                   'op="read", source="rezolus"}')


def test_promtool_query_labels(url: str, c16: Path) -> None:
    raw = RawRecording(c16)
    ops = sorted({c.labels["op"] for c in raw.metric_columns if "op" in c.labels})
    proc = promtool("labels", url, "op")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ops
    names = promtool("labels", "-o", "json", url, "__name__")
    assert names.returncode == 0
    assert "blockio_latency" in json.loads(names.stdout) and "cpu_cores" in json.loads(names.stdout)


def test_promtool_against_a_second_recording(ab_url: str, ab: Path) -> None:
    expected = cli(ab, "sum by (state) (rate(cpu_usage[1m]))", "--time", str(AB_GAP))["data"]["result"]
    proc = promtool("instant", "-o", "json", ab_url, "sum by (state) (rate(cpu_usage[1m]))", f"--time={AB_GAP}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected and len(expected) == 2
    raw = RawRecording(ab)
    series = promtool("series", "-o", "json", ab_url, '--match={__name__="cpu_usage", state="user"}')
    assert series.returncode == 0, series.stderr
    assert sorted(s["id"] for s in json.loads(series.stdout)) == sorted(
        c.labels["id"] for c in raw.select("cpu_usage", state="user"))


def test_promtool_reports_errors(url: str) -> None:
    proc = promtool("instant", url, "sum(", f"--time={AT}")
    assert proc.returncode != 0 and "bad_data" in proc.stderr and "Traceback" not in proc.stderr
    too_many = promtool("range", url, "cpu_cores", "--start=0", f"--end={C16_LAST}", "--step=1s")
    assert too_many.returncode != 0 and "exceeded maximum resolution of 11,000 points" in too_many.stderr


# -- series and labels against the parquet file --------------------------------------------------------------------


def test_metric_names_are_those_of_the_recording_with_data(url: str, c16: Path) -> None:
    names = ok(get(url, "/api/v1/label/__name__/values"))
    raw = RawRecording(c16)
    recorded = {c.metric for c in raw.metric_columns}
    assert names == sorted(names) and set(names) <= recorded
    for metric in recorded - set(names):  # left out only when no series of it has a single sample
        for column in raw.select(metric):
            assert raw._column(column).null_count == len(raw.timestamps), column


def test_series_labels_and_values_follow_match_and_range(url: str, c16: Path) -> None:
    raw = RawRecording(c16)
    ops = sorted(c.labels["op"] for c in raw.select("blockio_bytes"))
    assert ok(get(url, "/api/v1/label/op/values", **{"match[]": "blockio_bytes"})) == ops
    assert ok(get(url, "/api/v1/labels", **{"match[]": "blockio_bytes"})) == sorted(
        {"__name__", *raw.select("blockio_bytes")[0].labels})
    regex = ok(get(url, "/api/v1/series", **{"match[]": ['{__name__=~"blockio_(bytes|operations)", op="read"}']}))
    assert [s["__name__"] for s in regex] == ["blockio_bytes", "blockio_operations"]
    after = {"start": str(C16_LAST + 1), "end": str(C16_LAST + 100)}
    assert ok(get(url, "/api/v1/series", **{"match[]": "cpu_cores"}, **after)) == []
    assert ok(get(url, "/api/v1/labels", **after)) == []
    edge = {"start": str(C16_LAST), "end": str(C16_LAST + 100)}  # both ends are inclusive
    assert len(ok(get(url, "/api/v1/series", **{"match[]": "cpu_cores"}, **edge))) == 1
    posted = httpx.post(url + "/api/v1/series", data={"match[]": ["cpu_cores", "blockio_bytes"]}, timeout=60)
    assert len(posted.json()["data"]) == 1 + len(ops)


def test_metadata(url: str, c16: Path) -> None:
    data = ok(get(url, "/api/v1/metadata", metric="blockio_latency"))
    recording = RawRecording(c16)
    raw = recording.select("blockio_latency")[0]
    help_text = raw.meta.get("description") or recording.descriptions().get("blockio_latency", "")
    assert help_text and data == {"blockio_latency": [{"type": "histogram", "unit": raw.meta["unit"],
                                                       "help": help_text}]}


# -- refusals ------------------------------------------------------------------------------------------------------


def test_more_than_11000_points_per_series_are_refused(url: str) -> None:
    limit = {"query": "vector(1)", "start": str(C16_FIRST), "step": "1"}
    allowed = ok(get(url, "/api/v1/query_range", **limit, end=str(C16_FIRST + 11_000)))
    assert len(allowed["result"][0]["values"]) == 11_001  # as Prometheus: (end - start) / step <= 11,000
    refused = get(url, "/api/v1/query_range", **limit, end=str(C16_FIRST + 11_001))
    assert refused.status_code == 400
    assert refused.json() == {"status": "error", "errorType": "bad_data", "error": (
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution "
        "(?step=XX)")}


RANGE_OK = {"query": "sum(cpu_cores)", "start": str(C16_FIRST), "end": str(C16_LAST), "step": "15s"}
BAD = [
    ("/api/v1/query", {"query": "sum(", "time": str(AT)}, 400, 'invalid parameter "query"'),
    ("/api/v1/query", {"time": str(AT)}, 400, 'invalid parameter "query"'),
    ("/api/v1/query", {"query": "up", "time": "yesterday"}, 400, 'invalid parameter "time": cannot parse'),
    ("/api/v1/query", {"query": "up", "time": "NaN"}, 400, 'invalid parameter "time"'),
    ("/api/v1/query", {"query": "up", "time": "1e999999999"}, 400, "out of range"),
    ("/api/v1/query", {"query": "up", "time": "9" * 5000}, 400, "out of range"),
    ("/api/v1/query", {"query": 'label_replace(cpu_cores, "a", "$1", "source", "(")'}, 422, "regular expression"),
    ("/api/v1/query", {"query": "cpu_cores @ 1e15"}, 422, ""),
    ("/api/v1/query", {"query": "blockio_latency"}, 422, "histograms"),
    ("/api/v1/query_range", {**RANGE_OK, "step": "-15"}, 400, "zero or negative query resolution step"),
    ("/api/v1/query_range", {**RANGE_OK, "step": "0"}, 400, "zero or negative query resolution step"),
    ("/api/v1/query_range", {**RANGE_OK, "step": "fast"}, 400, 'invalid parameter "step": cannot parse'),
    ("/api/v1/query_range", {**RANGE_OK, "step": "1e400"}, 400, "overflows int64"),
    ("/api/v1/query_range", {**RANGE_OK, "start": str(C16_LAST), "end": str(C16_FIRST)}, 400,
     "end timestamp must not be before start time"),
    ("/api/v1/query_range", {**RANGE_OK, "start": "garbage"}, 400, 'invalid parameter "start"'),
    ("/api/v1/query_range", {**RANGE_OK, "end": ""}, 400, 'invalid parameter "end"'),
    ("/api/v1/query_range", {**RANGE_OK, "start": "-1e300", "step": "1e299"}, 400, "out of range"),
    ("/api/v1/query_range", {**RANGE_OK, "query": "cpu_cores[5m]"}, 400, 'invalid expression type "range vector"'),
    ("/api/v1/query_range", {**RANGE_OK, "query": "rate(cpu_cores)"}, 400, "expected type matrix"),
    ("/api/v1/series", {}, 400, "no match[] parameter provided"),
    ("/api/v1/series", {"match[]": "rate(cpu_usage[1m])"}, 400, "not a series selector"),
    ("/api/v1/series", {"match[]": "{}"}, 400, "at least one non-empty matcher"),
    ("/api/v1/series", {"match[]": "cpu_cores", "start": "soon"}, 400, 'invalid parameter "start"'),
    ("/api/v1/labels", {"start": str(C16_LAST), "end": str(C16_FIRST)}, 400, "must not be before"),
    ("/api/v1/label/0bad/values", {}, 400, "invalid label name"),
    ("/api/v1/metadata", {"limit": "many"}, 400, 'invalid parameter "limit"'),
    ("/api/v1/nonsense", {}, 404, "unknown API endpoint"),
]


@pytest.mark.parametrize(("path", "params", "status", "message"), BAD)
def test_bad_requests_are_prometheus_errors(url: str, path: str, params: dict[str, str], status: int,
                                            message: str) -> None:
    for response in (get(url, path, **params), httpx.post(url + path, data=params, timeout=60)):
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"status", "errorType", "error"} and body["status"] == "error"
        assert body["errorType"] == {400: "bad_data", 422: "execution", 404: "bad_data"}[status]
        assert message in body["error"] and "Traceback" not in body["error"]


def test_unknown_parameters_are_ignored_and_url_and_body_combine(url: str, c16: Path) -> None:
    expected = cli(c16, "sum(cpu_cores)", "--time", str(AT))
    assert get(url, "/api/v1/query", query="sum(cpu_cores)", time=str(AT), timeout="5s", stats="all",
               nonsense="1").json() == expected
    # Form values take precedence over the URL's, as in Prometheus (Go's FormValue).
    mixed = httpx.post(url + "/api/v1/query", params={"query": "sum(cpu_cores)", "time": "0"},
                       data={"time": str(AT)}, timeout=60)
    assert mixed.json() == expected


def test_other_methods_and_oversized_bodies_are_refused(url: str) -> None:
    put = httpx.put(url + "/api/v1/query", data={"query": "1"}, timeout=60)
    assert put.status_code == 405 and put.json()["status"] == "error"
    big = httpx.post(url + "/api/v1/query", data={"query": "1", "pad": "x" * (2 << 20)}, timeout=60)
    assert big.status_code == 413 and big.json()["status"] == "error"


# -- no query can crash, freeze or exhaust the server ----------------------------------------------------------------


def serve_with(recording: Path, log: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """A server process started with extra options, yielded with its process (for its memory)."""
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "rezgen", "serve", str(recording), "--port", "0", *options],
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert proc.stdout is not None
    try:
        match = READY.search(proc.stdout.readline())
        assert match, log.read_text()
        yield match.group(1), proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proc.stdout.close()
    assert "Traceback" not in log.read_text(), log.read_text()


def refused(response: httpx.Response, status: int, kind: str, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["errorType"] == kind, body
    for word in words:
        assert word in body["error"], body["error"]
    return body["error"]


CRASHERS = {  # each killed the server (SIGSEGV in promql-parser) or gave a 500 RecursionError
    "5,000 terms": "+".join(["1"] * 5000),
    "2,000 terms": "+".join(["1"] * 2000),
    "1,000 parentheses": "(" * 1000 + "1" + ")" * 1000,
    "8,500 nested calls": "abs(" * 8500 + "x" + ")" * 8500,
    "500 terms": "+".join(["1"] * 500),
}


def test_queries_that_crashed_the_server_are_bad_data_and_it_keeps_answering(url: str) -> None:
    for name, expr in CRASHERS.items():
        response = httpx.post(url + "/api/v1/query", data={"query": expr}, timeout=60)
        error = refused(response, 400, "bad_data")
        assert any(words in error for words in ("too many operators", "nested too deeply", "query too long")), name
        assert ok(get(url, "/api/v1/query", query="1", time="100")) == {"resultType": "scalar",
                                                                         "result": [100, "1"]}
    long = refused(httpx.post(url + "/api/v1/query", data={"query": "x" + " " * 70_000}, timeout=60), 400, "bad_data")
    assert "query too long: 70,001 bytes, limit 65,536" in long


def test_pathological_regexes_return_promptly_without_starving_other_requests(url: str, c16: Path) -> None:
    import concurrent.futures

    names = {c.metric for c in RawRecording(c16).metric_columns}
    slow = [("/api/v1/query", {"query": '{__name__=~"(.|.)*X"}'}),  # 467 CPU-seconds with Python's re
            ("/api/v1/query", {"query": '{__name__=~"(.|.){0,18}X"}'}),  # 11 s
            ("/api/v1/label/__name__/values", {"match[]": '{__name__=~"(.|.){0,18}X"}'}),  # 5 s
            ("/api/v1/query", {"query": '{__name__=~"(.|.){0,18}_cores"}', "time": str(AT)})]
    with concurrent.futures.ThreadPoolExecutor(len(slow) + 1) as pool:
        futures = [pool.submit(httpx.get, url + path, params=params, timeout=60) for path, params in slow]
        quick = pool.submit(httpx.get, url + "/api/v1/query", params={"query": "1"}, timeout=60)
        assert ok(quick.result(timeout=10))["resultType"] == "scalar"
        answers = [f.result(timeout=10) for f in futures]
    assert not any(name.endswith("X") for name in names)
    assert ok(answers[0])["result"] == [] and ok(answers[1])["result"] == [] and ok(answers[2]) == []
    cores = {r["metric"]["__name__"] for r in ok(answers[3])["result"]}
    assert cores == {n for n in names if n.endswith("_cores") and len(n) - len("_cores") <= 18}


def test_a_regex_re2_refuses_is_bad_data(url: str) -> None:
    refused(get(url, "/api/v1/query", query='cpu_cores{id=~"a{1001}"}'), 400, "bad_data",
            "invalid regular expression", "invalid repetition size")
    refused(get(url, "/api/v1/series", **{"match[]": 'cpu_cores{id=~"a{1001}"}'}), 400, "bad_data",
            "invalid repetition size")


def test_count_values_of_every_series_is_answered(url: str, c16: Path) -> None:
    """It was a 422 "all input arrays must have the same shape" (histograms among the series)."""
    raw = RawRecording(c16)
    row = int(np.searchsorted(raw.timestamps, AT * 10**9, side="right")) - 1
    floats = sum(1 for c in raw.metric_columns if c.kind in ("counter", "gauge")
                 and not np.isnan(raw.values(c)[: row + 1]).all())  # c16 has no gap as long as the lookback
    result = ok(get(url, "/api/v1/query", query='count_values("v", {__name__=~".+"})', time=str(AT)))["result"]
    assert sum(float(r["value"][1]) for r in result) == floats
    assert len({r["metric"]["v"] for r in result}) == len(result)


@pytest.mark.slow
def test_a_query_over_the_sample_limit_is_refused_and_memory_stays_bounded(c16: Path, tmp_path: Path) -> None:
    import psutil

    for url, proc in serve_with(c16, tmp_path / "serve.log"):
        server = psutil.Process(proc.pid)
        error = refused(get(url, "/api/v1/query", query="max_over_time(rate(cgroup_syscall[1m])[1d:100ms])"),
                        422, "execution", "limit 40,000,000", "--query-max-samples")
        assert "samples" in error
        # 26.7M estimated samples, under the limit: it runs, and its memory is given back
        big = get(url, "/api/v1/query", query="max_over_time(rate(cgroup_syscall[1m])[6m:10ms])")
        raw = RawRecording(c16)
        # a series has a rate once two of its samples are less than a minute apart (rows are a second apart)
        with_rate = [c for c in raw.select("cgroup_syscall")
                     if (np.diff(raw.timestamps[~np.isnan(raw.values(c))]) < 60 * 10**9).any()]
        assert len(ok(big)["result"]) == len(with_rate)
        assert server.memory_info().rss < 600 * 2**20  # it peaked at 3-5.5 GB and kept 2 GB before
        assert ok(get(url, "/api/v1/query", query="1"))["resultType"] == "scalar"


@pytest.mark.slow
def test_the_sample_limit_is_a_serve_option(c16: Path, tmp_path: Path) -> None:
    for url, _ in serve_with(c16, tmp_path / "serve.log", "--query-max-samples", "1000"):
        refused(get(url, "/api/v1/query_range", query="cpu_usage", start=str(C16_FIRST), end=str(C16_LAST),
                    step="1"), 422, "execution", "limit 1,000 (--query-max-samples)")
        assert ok(get(url, "/api/v1/query", query="cpu_cores", time=str(AT)))["result"]


@pytest.mark.slow
def test_a_query_past_the_timeout_is_a_prometheus_timeout(c16: Path, tmp_path: Path) -> None:
    for url, _ in serve_with(c16, tmp_path / "serve.log", "--query-timeout", "1ms"):
        # quantile_over_time works window by window in Python: well over a millisecond for 369 series x 361 steps
        response = get(url, "/api/v1/query_range", query="quantile_over_time(0.5, cgroup_syscall[1m])",
                       start=str(C16_FIRST), end=str(C16_LAST), step="1")
        assert response.status_code == 503
        assert response.json() == {"status": "error", "errorType": "timeout",
                                   "error": "query timed out in expression evaluation"}


def test_a_long_run_of_digits_as_a_time_is_refused_promptly(url: str) -> None:
    """The number pattern backtracked quadratically: 35 s of CPU, holding the GIL, for 40 KB of digits."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(httpx.post, url + "/api/v1/query", data={"query": "1", "time": "1" * 100_000 + "x"},
                             timeout=60)
        refused(answer.result(timeout=10), 400, "bad_data", 'invalid parameter "time"')
