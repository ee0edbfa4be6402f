"""A/B compare without a browser: `[ALIAS=]PATH` arguments, host pairing, the compare build's data and the
What-changed ranking (`rezgen diff`), on real recordings and on two `rezgen sample` recordings of the same seed,
one with a known change injected (`--scale network_bytes=1.5`).

- Each side of a compare chart is that recording's own single-mode plot data, on ms since its start.
- `rezgen diff` and the What-changed page rank the injected change first; its medians, p99s, relative change
  and effect size equal those computed here with numpy from the parquet columns (irate of consecutive rows).
- Series all zero or absent in both are left out; a series only one recording has is listed as appeared or
  disappeared. Errors (a file missing, a bad alias, three files) are one line and a non-zero exit.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from processes import start, stop
from rawparquet import RawRecording
from shared import shared_recording
from siterecordings import write_nodes, write_two_hosts
from test_serve import events

from rezgen.compare.changes import MAD_NORMAL, effect_size, plot_changes
from rezgen.compare.inputs import CompareError, parse_input, parse_inputs
from rezgen.compare.pairing import HostPair, pair_hosts

REL = 1e-9


def rezgen(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rezgen", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def data_of(site: Path, host: str, route: str) -> dict:
    text = (site / "data" / host / f"{route}.js").read_text()
    return json.loads(text[text.index(",") + 1 : text.rindex(")")])


def plots_of(data: dict) -> dict[str, dict]:
    return {p["id"]: p for g in data["groups"] for p in g["plots"]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """Two recordings of the same seed; B's network byte counters grow 1.5 times as fast."""
    tmp = tmp_path_factory.mktemp("pair")
    base, exp = tmp / "base.parquet", tmp / "exp.parquet"
    for path, extra in ((base, []), (exp, ["--scale", "network_bytes=1.5"])):
        done = rezgen("sample", "--seed", 11, "--duration", "10m", "--cpus", 4, "-o", path, *extra)
        assert done.returncode == 0, done.stderr
    return base, exp


@pytest.fixture(scope="module")
def diffed(pair) -> dict:
    done = rezgen("diff", f"base={pair[0]}", f"exp={pair[1]}", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def real_site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real") / "site"
    done = rezgen("build", "-q", f"ab={shared_recording('AB_base.parquet')}", shared_recording("demo.parquet"),
                  "-o", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def single_sites(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name in ("AB_base", "demo"):
        site = tmp_path_factory.mktemp(name) / "site"
        done = rezgen("build", "-q", shared_recording(f"{name}.parquet"), "-o", site)
        assert done.returncode == 0, done.stderr
        out[name] = site
    return out


# -- arguments and pairing --------------------------------------------------------------------------------------

def test_an_alias_names_a_recording_and_defaults_to_the_file_stem():
    assert parse_input("base=runs/a.parquet").alias == "base"
    assert parse_input("base=runs/a.parquet").path == Path("runs/a.parquet")
    assert parse_input("runs/kernel-6.8.parquet").alias == "kernel-6.8"


def test_two_files_of_the_same_stem_get_distinct_aliases():
    a, b = parse_inputs(["x/run.parquet", "y/run.parquet"])
    assert (a.alias, b.alias) == ("run", "run-2")


@pytest.mark.parametrize("arguments,words", [
    (["a.parquet"], "two recordings, not 1"),
    (["a.parquet", "b.parquet", "c.parquet"], "two recordings, not 3"),
    (["<b>=a.parquet", "b.parquet"], "bad alias"),
    (["same=a.parquet", "same=b.parquet"], "different aliases"),
])
def test_arguments_that_cannot_make_a_compare_are_refused(arguments, words):
    with pytest.raises(CompareError, match=words):
        parse_inputs(arguments)


def test_single_host_recordings_pair_with_each_other():
    assert pair_hosts([], []) == [HostPair("_", "_", "_")]


def test_nodes_pair_by_name_and_a_node_of_one_recording_is_shown_alone():
    assert pair_hosts(["alpha", "beta"], ["beta", "gamma"]) == [
        HostPair("alpha", "alpha", None), HostPair("beta", "beta", "beta"), HostPair("gamma", None, "gamma")]


def test_a_single_host_recording_pairs_with_the_node_of_its_hostname():
    assert pair_hosts([], ["web1", "web2"], hostname_a="web2") == [
        HostPair("web1", None, "web1"), HostPair("web2", "_", "web2")]


# -- the compare build's data -----------------------------------------------------------------------------------

def test_each_side_is_that_recordings_single_mode_data_on_time_since_its_start(real_site, single_sites):
    compare = plots_of(data_of(real_site, "_", "overview"))
    assert compare, "the compare overview has no plots"
    for side, name in ((0, "AB_base"), (1, "demo")):
        single = data_of(single_sites[name], "_", "overview")
        start = single["range"]["start"]
        singles = plots_of(single)
        for plot_id, plot in compare.items():
            data = plot["sides"][side]["data"]
            if plot["kind"] == "multi" or plot_id not in singles:
                continue
            assert data is not None, (plot_id, name)
            expected = singles[plot_id]
            assert data["names"] == expected["names"]
            for got, want in zip(data["levels"], expected["levels"], strict=True):
                assert got["t"] == [t - start for t in want["t"]]
                assert got["values"] == want["values"]


def test_a_plot_only_one_recording_can_draw_has_that_side_alone(real_site):
    # AB_base (agent 5.11 with cgroup metrics) and demo (5.4, none) differ in what they record.
    one_sided = [(p["id"], [s["data"] is None for s in p["sides"]])
                 for route in ("cgroups", "cpu") if (real_site / "data" / "_" / f"{route}.js").exists()
                 for p in plots_of(data_of(real_site, "_", route)).values() if "sides" in p]
    assert any(missing == [False, True] for _, missing in one_sided), one_sided


def test_a_multi_series_plot_shows_the_top_k_of_either_recording(pair, tmp_path):
    base, exp = pair
    site = tmp_path / "site"
    assert rezgen("build", "-q", base, exp, "-o", site).returncode == 0
    multi = [p for p in plots_of(data_of(site, "_", "cgroups")).values() if p["kind"] == "multi"]
    assert multi
    for plot in multi:
        names = [set(side["data"]["names"]) for side in plot["sides"]]
        assert names[0] == names[1] and "Other" not in names[0]


def test_nodes_of_multi_node_recordings_pair_by_name_with_a_host_selector(tmp_path):
    two, nodes = tmp_path / "two.parquet", tmp_path / "nodes.parquet"
    write_two_hosts(two)
    write_nodes(nodes, ["beta", "gamma"])
    site, single = tmp_path / "site", tmp_path / "single"
    assert rezgen("build", "-q", f"two={two}", f"nodes={nodes}", "-o", site).returncode == 0
    assert rezgen("build", "-q", two, "-o", single).returncode == 0
    index = (site / "index.html").read_text()
    assert all(f'<option value="{host}">' in index for host in ("alpha", "beta", "gamma"))
    hosts = {host: data_of(site, host, "overview") for host in ("alpha", "beta", "gamma")}
    assert [s["host"] for s in hosts["alpha"]["compare"]["sides"]] == ["alpha", None]
    assert [s["host"] for s in hosts["gamma"]["compare"]["sides"]] == [None, "gamma"]
    busy = {host: plots_of(data)["cpu-busy"]["sides"] for host, data in hosts.items()}
    assert busy["alpha"][1]["data"] is None and busy["gamma"][0]["data"] is None
    assert busy["beta"][0]["data"] and busy["beta"][1]["data"]
    # beta's A side is what the single site shows for beta, on time since the recording's start
    expected = plots_of(data_of(single, "beta", "overview"))["cpu-busy"]
    start = data_of(single, "beta", "overview")["range"]["start"]
    assert busy["beta"][0]["data"]["levels"][-1]["values"] == expected["levels"][-1]["values"]
    assert busy["beta"][0]["data"]["levels"][-1]["t"] == [t - start for t in expected["levels"][-1]["t"]]


# -- what changed -----------------------------------------------------------------------------------------------

def _rates(path: Path, direction: str) -> np.ndarray:
    """Bits per second of network_bytes{direction} at each chart step (from the first timestamp rounded up to a
    whole ms, every sampling interval) as Prometheus' irate gives it: the last two rows in (t - 5m, t]; steps in
    a hole of the data (no row in the last two intervals, or the next row more than two intervals on) left out."""
    rec = RawRecording(path)
    total = sum(rec.values(c) for c in rec.select("network_bytes", direction=direction))
    times = rec.timestamps.astype(np.int64)
    step = rec.interval_ns
    steps = np.arange(-(-int(times[0]) // 1_000_000) * 1_000_000, int(times[-1]) + 1, step)
    b = np.searchsorted(times, steps, side="right") - 1
    a = b - 1
    after = np.minimum(b + 1, len(times) - 1)
    ok = (a >= 0) & (times[np.maximum(a, 0)] > steps - 300 * 10**9) & (steps - times[b] <= 2 * step) & (
        (b + 1 >= len(times)) | (times[after] - times[b] <= 2 * step))
    a, b = a[ok], b[ok]
    return (total[b] - total[a]) / ((times[b] - times[a]) / 1e9) * 8


def test_diff_ranks_the_injected_change_first_with_the_injected_effect(pair, diffed):
    base, exp = pair
    top = diffed["changes"][:4]  # transmit and receive bandwidth, on the overview and the network page
    assert {(c["route"], c["plot"]) for c in top} == {
        ("overview", "network-transmit-bandwidth"), ("overview", "network-receive-bandwidth"),
        ("network", "bandwidth-tx"), ("network", "bandwidth-rx")}
    assert all(c["status"] == "changed" for c in top)
    for change in top:
        direction = "transmit" if change["plot"].endswith(("transmit-bandwidth", "tx")) else "receive"
        a, b = _rates(base, direction), _rates(exp, direction)
        med_a, med_b = np.median(a), np.median(b)
        mad_a, mad_b = np.median(np.abs(a - med_a)), np.median(np.abs(b - med_b))
        assert math.isclose(change["a_median"], med_a, rel_tol=REL)
        assert math.isclose(change["b_median"], med_b, rel_tol=REL)
        assert math.isclose(change["a_p99"], np.percentile(a, 99), rel_tol=REL)
        assert math.isclose(change["b_p99"], np.percentile(b, 99), rel_tol=REL)
        assert math.isclose(change["change"], 0.5, abs_tol=1e-3)  # the injected 1.5x (counters are whole bytes)
        spread = MAD_NORMAL * math.sqrt((mad_a**2 + mad_b**2) / 2)
        assert math.isclose(change["effect"], (med_b - med_a) / spread, rel_tol=1e-9)
    assert all(abs(c["effect"]) < 1e-9 for c in diffed["changes"][4:]), "nothing else changed"


def test_the_table_says_the_same_in_text(pair):
    done = rezgen("diff", f"base={pair[0]}", f"exp={pair[1]}", "--top", 3)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["#", "section", "chart", "series"]
    assert len(lines) == 5 and "more" in lines[-1]
    assert "Bandwidth" in lines[1] and "+50.0%" in lines[1]


def test_series_present_in_one_recording_only_are_listed_as_appeared_or_disappeared():
    payload = {"id": "p", "title": "P", "kind": "multi", "unit": "", "sides": [
        {"duration": 3000, "data": {"names": ["x", "gone", "zero"],
                                    "levels": [{"t": [0, 1000, 2000], "values": [[1, 2, 3], [5, 5, 5], [0, 0, 0]]}]}},
        {"duration": 2000, "data": {"names": ["x", "new"],
                                    "levels": [{"t": [0, 1000, 2000, 3000], "values": [[2, 4, 6, 99], [7, 7, 7, 7]]}]}},
    ]}
    rows = {c.series: c for c in plot_changes(("S", "s"), "_", payload)}
    assert set(rows) == {"x", "gone", "new"}  # "zero" is all zero in A and absent in B
    assert rows["gone"].status == "disappeared" and rows["gone"].a_median == 5 and rows["gone"].b_median is None
    assert rows["new"].status == "appeared" and rows["new"].b_median == 7
    x = rows["x"]  # over the common 2 s: A [1, 2, 3], B [2, 4, 6] (B's 99 at 3 s is beyond A's end)
    assert (x.a_median, x.b_median, x.change) == (2, 4, 1.0)
    assert x.effect == pytest.approx(effect_size(2, 1, 4, 2))


def test_a_flat_series_that_moved_has_a_large_finite_effect():
    assert effect_size(10, 0, 20, 0) == pytest.approx(10 / (1e-3 * 20))  # the floor: a thousandth of 20
    assert effect_size(0, 0, 0, 0) == 0.0


# -- command line errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["build", "diff"])
@pytest.mark.parametrize("case", ["missing", "alias", "three"])
def test_a_bad_compare_is_one_line_and_a_non_zero_exit(command, case, pair, tmp_path):
    base, exp = pair
    arguments = {"missing": [base, tmp_path / "nope.parquet"], "alias": [f"a/b={base}", exp],
                 "three": [base, exp, base]}[case]
    extra = ["-o", tmp_path / "site"] if command == "build" else []
    done = rezgen(command, *arguments, *extra)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rezgen: "), done.stderr
    assert not (tmp_path / "site").exists()


# -- served -----------------------------------------------------------------------------------------------------

def test_serve_a_b_serves_the_compare_site_and_reloads_when_a_recording_changes(pair, tmp_path):
    base, exp = (tmp_path / "base.parquet", tmp_path / "exp.parquet")
    for source, copy in zip(pair, (base, exp)):
        copy.write_bytes(source.read_bytes())
    proc, url = start(["serve", f"base={base}", f"exp={exp}", "--port", "0"], tmp_path / "serve.log")
    try:
        page = httpx.get(url)
        assert page.status_code == 200 and "compare.js" in page.text and "static/js/reload.js" in page.text
        assert httpx.get(url + "changes.html").status_code == 200
        data = httpx.get(url + "data/_/overview.js").text
        assert '"alias":"base"' in data and '"alias":"exp"' in data

        def replace() -> None:
            copy = tmp_path / "copy.parquet"
            copy.write_bytes(pair[0].read_bytes())
            copy.replace(exp)  # B is now the same as A

        assert [kind for kind, _ in events(url, 2, then=replace)] == ["hello", "reload"]
        changes = httpx.get(url + "changes.html").text
        assert "+50.0 %" not in changes
    finally:
        stop(proc)
