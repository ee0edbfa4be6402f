"""The `rezgen` command line as a user meets it (run as `python -m rezgen`, never imported).

- `--help` describes every command; `--version` prints the version.
- `sample -o` creates the directories it needs and writes the same bytes for the same arguments.
- A usage error is one line on stderr, starting with `rezgen:`, never a traceback, with a non-zero exit.
- `query` takes an expression that starts with "-" as the expression, not as an option.
- `inspect` lists the metrics of a recording with their type.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rawparquet import RawRecording
from shared import REPO_ROOT

COMMANDS = ("build", "inspect", "query", "sample")


def rezgen(*args: object, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rezgen", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_one_line_error(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode != 0, f"succeeded: {done.stdout[:200]}"
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rezgen: "), f"stderr is {done.stderr!r}"
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert done.stdout == ""
    return lines[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """A small synthetic recording: 2 CPUs, 2 minutes."""
    path = tmp_path_factory.mktemp("cli") / "sample.parquet"
    done = rezgen("sample", "-o", path, "--duration", "2m", "--cpus", "2")
    assert done.returncode == 0, done.stderr
    return path


def instant(done: subprocess.CompletedProcess) -> list[dict]:
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["status"] == "success" and body["data"]["resultType"] == "vector", body
    return body["data"]["result"]


# -- help -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_command(flag):
    done = rezgen(flag)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("Usage: rezgen ")
    commands = done.stdout.split("Commands:", 1)[1]
    for command in COMMANDS:
        assert f"\n  {command} " in commands, f"{command} missing from --help"


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command):
    done = rezgen(command, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"Usage: rezgen {command} ")


def test_version_names_the_package():
    done = rezgen("--version")
    assert done.returncode == 0 and done.stdout.startswith("rezgen, version ")


def test_no_command_shows_usage_without_a_traceback():
    done = rezgen()
    assert "Traceback" not in done.stderr
    assert "Usage: rezgen " in done.stdout + done.stderr


def test_an_unknown_command_is_a_one_line_error():
    assert_one_line_error(rezgen("frobnicate"), "frobnicate")


# -- sample -----------------------------------------------------------------------------------------------------

def test_sample_creates_the_directories_of_its_output(tmp_path):
    out = tmp_path / "a" / "b" / "c" / "rec.parquet"
    done = rezgen("sample", "-o", out, "--duration", "1m", "--cpus", "2")
    assert done.returncode == 0, done.stderr
    assert out.is_file() and out.read_bytes()[:4] == b"PAR1"
    assert done.stdout.strip() == f"wrote {out}"
    assert sorted(p.name for p in out.parent.iterdir()) == ["rec.parquet"]  # no temporary file left behind


def test_sample_is_deterministic_and_the_seed_matters(tmp_path):
    def sample(name: str, *options: object) -> Path:
        path = tmp_path / name
        done = rezgen("sample", "-o", path, "--duration", "90s", "--cpus", "3", *options)
        assert done.returncode == 0, done.stderr
        return path

    first, again, seeded = sample("first.parquet"), sample("again.parquet"), sample("seeded.parquet", "--seed", "7")
    assert sha256(first) == sha256(again)
    assert sha256(first) != sha256(seeded)


def test_sample_writes_relative_paths_from_the_working_directory(tmp_path):
    done = rezgen("sample", "-o", "out/rel.parquet", "--duration", "1m", "--cpus", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "rel.parquet").is_file()


@pytest.mark.parametrize("options, word", [
    (["--cpus", "0"], "--cpus"),
    (["--duration", "soon"], "--duration"),
    (["--seed", "x"], "--seed"),
])
def test_sample_refuses_bad_options_in_one_line(tmp_path, options, word):
    out = tmp_path / "never.parquet"
    assert_one_line_error(rezgen("sample", "-o", out, *options), word)
    assert not out.exists()


# -- query ------------------------------------------------------------------------------------------------------

def test_query_without_options_is_a_range_query_over_the_recording(recording):
    """From the first timestamp rounded up to a whole ms to the last one, every sampling interval."""
    raw = RawRecording(recording)
    first, last = int(raw.timestamps[0]), int(raw.timestamps[-1])
    start = -(-first // 1_000_000) * 1_000_000
    steps = [t / 1e9 for t in range(start, last + 1, raw.interval_ns)]
    done = rezgen("query", recording, "sum(cpu_cores)")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["data"]["resultType"] == "matrix"
    (series,) = body["data"]["result"]
    assert [t for t, _ in series["values"]] == pytest.approx(steps, abs=1e-6)
    assert {v for _, v in series["values"]} == {"2"}


@pytest.mark.slow
@pytest.mark.parametrize("args, words", [
    (["cpu_cores", "--step", "bogus"], ["--step", "bogus"]),
    (["cpu_cores", "--step", "0s"], ["--step", "positive"]),
    (["cpu_cores", "--start", "1767225700", "--end", "1767225600"], ["end", "start"]),
    (["cpu_cores", "--start", "yesterday"], ["--start"]),
    (["cpu_cores", "--time", "1767225630", "--start", "1767225600"], ["--time", "--start"]),
    (["cpu_cores", "--time", "1767225630", "--step", "1s"], ["--time"]),
    ([], ["EXPR"]),
    (["sum(cpu_cores"], []),
    (["cpu_cores", "--colour"], ["--colour"]),
])
def test_query_usage_errors_are_one_line(recording, args, words):
    assert_one_line_error(rezgen("query", recording, *args), *words)


def test_query_of_a_missing_recording_is_one_line(tmp_path):
    assert_one_line_error(rezgen("query", tmp_path / "none.parquet", "cpu_cores"), "none.parquet")


@pytest.mark.parametrize("expr", ["-cpu_cores", "-sum(cpu_cores)", "- 1 * cpu_cores"])
def test_an_expression_starting_with_a_minus_is_the_expression(recording, expr):
    (sample,) = instant(rezgen("query", recording, expr, "--time", "1767225630"))
    assert sample["value"] == [1767225630, "-2"]


def test_an_option_after_a_minus_expression_still_counts(recording):
    (sample,) = instant(rezgen("query", recording, "--time", "1767225630", "-cpu_cores"))
    assert sample["value"] == [1767225630, "-2"]


# -- inspect ----------------------------------------------------------------------------------------------------

def test_inspect_lists_every_metric_with_its_type(recording):
    done = rezgen("inspect", recording)
    assert done.returncode == 0 and done.stderr == ""
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()
            if line and not line.startswith(" ") and len(line.split()) > 1}
    expected = {"cpu_usage": "counter", "cpu_cores": "gauge", "syscall_latency": "histogram",
                "memory_total": "gauge", "cgroup_cpu_usage": "counter"}
    assert expected.items() <= rows.items(), rows
    assert rows.get("METRIC") == "TYPE"


def test_inspect_json_agrees_with_the_text(recording):
    done = rezgen("inspect", recording, "--json")
    assert done.returncode == 0, done.stderr
    names = [m["name"] for m in json.loads(done.stdout)["metrics"]]
    text = rezgen("inspect", recording).stdout
    assert names and all(f"\n{name} " in text for name in names)


@pytest.mark.parametrize("content, word", [(b"", "empty"), (b"hello", "not a Parquet file")])
def test_inspect_of_something_else_is_one_line(tmp_path, content, word):
    path = tmp_path / "bad.parquet"
    path.write_bytes(content)
    assert_one_line_error(rezgen("inspect", path), word)


# -- signals ----------------------------------------------------------------------------------------------------

def _tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): sha256(p) for p in sorted(path.rglob("*")) if p.is_file()}


def test_sigterm_ends_a_build_like_ctrl_c_leaving_the_previous_site(tmp_path):
    from shared import shared_recording

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("the previous site\n")
    before = _tree(site)
    build = subprocess.Popen([sys.executable, "-m", "rezgen", "build", str(shared_recording("c16.parquet")), "-o",
                              str(site), "-q"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and build.poll() is None:
            if any(p.name.startswith(".site.") for p in tmp_path.iterdir()):  # the build's temporary directory
                break
            time.sleep(0.01)
        assert build.poll() is None, "the build ended before its temporary directory was seen"
        build.send_signal(signal.SIGTERM)
        _, stderr = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()
    assert build.returncode != 0 and "Traceback" not in stderr, stderr
    assert stderr.strip() == "rezgen: aborted", stderr  # as for Ctrl-C (after click's blank line)
    assert sorted(os.listdir(tmp_path)) == ["site"], os.listdir(tmp_path)
    assert _tree(site) == before


# -- query limits ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("args, words", [
    (["+".join(["1"] * 5000)], ["too many operators: 4999, limit 256"]),  # SIGSEGV in promql-parser before
    (["(" * 1000 + "1" + ")" * 1000], ["nested too deeply"]),  # RecursionError traceback before
    (["cpu_cores", "--start", "0", "--end", "4102444800", "--step", "1s"],  # "cannot allocate 30.6 GiB" before
     ["11,000 points per timeseries", "4,102,444,801 steps"]),
    (["cpu_cores", "--end", "1e30"], ["end is out of range"]),  # ValueError traceback before
    (["cpu_cores", "--time", "1e30"], ["time is out of range"]),
    (["cpu_cores", "--step", "1000000y"], ["step is out of range"]),
    (['cpu_cores{id=~"a{1001}"}'], ["invalid regular expression", "invalid repetition size"]),
    (["max_over_time(cpu_cores[1d:1ms])", "--time", "1767225630"], ["limit", "--query-max-samples"]),
    (["cpu_cores", "--query-max-samples", "10"], ["limit 10 (--query-max-samples)"]),
    (["cpu_cores", "--query-max-samples", "0"], ["--query-max-samples"]),
])
def test_queries_past_the_limits_are_one_line(recording, args, words):
    assert_one_line_error(rezgen("query", recording, *args), *words)


@pytest.mark.slow
def test_a_long_recording_is_queried_at_a_coarser_default_step(tmp_path):
    path = tmp_path / "long.parquet"
    assert rezgen("sample", "-o", path, "--duration", "4h", "--cpus", "1").returncode == 0
    done = rezgen("query", path, "cpu_cores")
    assert done.returncode == 0, done.stderr
    (series,) = json.loads(done.stdout)["data"]["result"]
    times = [t for t, _ in series["values"]]
    assert len(times) <= 11_001 and times[1] - times[0] == 2  # 4 h at 1 s is 14,401 points: every 2 s instead
