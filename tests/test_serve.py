"""`rezgen serve RECORDING`: a real server process on 127.0.0.1 that rebuilds and reloads open pages on change."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rezgen.resources import resource_dir

READY = re.compile(r"serving .* at (http://127\.0\.0\.1:\d+/)")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "host.parquet"
    subprocess.run([sys.executable, "-m", "rezgen", "sample", "-o", str(path), "--duration", "2m", "--cpus", "2"],
                   check=True, capture_output=True)
    return path


@pytest.fixture
def dashboards(tmp_path: Path) -> Path:
    target = tmp_path / "dashboards"
    shutil.copytree(resource_dir("dashboards"), target)
    return target


@pytest.fixture
def server(recording: Path, dashboards: Path, tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "serve.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "rezgen", "serve", str(recording), "--port", "0",
                                 "--dashboards", str(dashboards)], stdout=subprocess.PIPE, stderr=stderr, text=True)
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


def events(url: str, count: int, timeout: float = 30.0, then: Callable[[], None] = lambda: None
           ) -> list[tuple[str, dict]]:
    """The first `count` named events of the reload stream; `then` runs once the first has arrived (the page is
    listening), which is when a test changes an input."""
    out: list[tuple[str, dict]] = []
    name = None
    with httpx.stream("GET", url + "_rezgen/reload", timeout=timeout) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                out.append((name, json.loads(line.split(":", 1)[1])))
                name = None
                if len(out) == 1:
                    then()
                if len(out) == count:
                    return out
    return out


def edit(path: Path, old: str, new: str) -> Callable[[], None]:
    """A change to a file, to make once the page listens."""
    return lambda: path.write_text(path.read_text().replace(old, new))


def test_serves_the_same_pages_as_the_static_site(server: str) -> None:
    page = httpx.get(server)
    assert page.status_code == 200
    assert 'data-plot-id="cpu-busy"' in page.text
    assert "static/js/reload.js" in page.text
    data = httpx.get(server + "data/_/overview.js")
    assert data.status_code == 200 and data.text.startswith("REZGEN.register(")


def test_a_changed_dashboard_rebuilds_and_reloads_open_pages(server: str, dashboards: Path) -> None:
    change = edit(dashboards / "overview.toml", 'title = "Busy %"', 'title = "Busy right now"')
    (first, hello), (second, state) = events(server, 2, then=change)
    assert (first, hello["epoch"], hello["error"]) == ("hello", 0, None)
    assert (second, state["epoch"]) == ("reload", 1)
    assert "Busy right now" in httpx.get(server).text


def test_a_broken_dashboard_reports_the_error_and_keeps_the_last_good_site(server: str, dashboards: Path) -> None:
    change = edit(dashboards / "overview.toml", 'title = "Overview"', 'title = "Overview" broken [')
    (_, hello), (kind, state) = events(server, 2, then=change)
    assert kind == "error" and "overview.toml" in state["error"] and state["epoch"] == hello["epoch"]
    assert 'data-plot-id="cpu-busy"' in httpx.get(server).text
    # A page that connects now learns about the error straight away.
    assert events(server, 1)[0][1]["error"] == state["error"]


def test_a_replaced_recording_rebuilds(server: str, recording: Path, tmp_path: Path) -> None:
    def replace() -> None:
        copy = tmp_path / "copy.parquet"
        shutil.copyfile(recording, copy)
        copy.replace(recording)  # how recorders write files: a new file renamed into place

    assert [kind for kind, _ in events(server, 2, then=replace)] == ["hello", "reload"]


def test_binds_only_to_localhost_by_default(server: str) -> None:
    assert server.startswith("http://127.0.0.1:")


def test_a_busy_port_is_one_clear_error(server: str, recording: Path) -> None:
    port = server.rstrip("/").rsplit(":", 1)[1]
    proc = subprocess.run([sys.executable, "-m", "rezgen", "serve", str(recording), "--port", port],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [f"rezgen: cannot listen on 127.0.0.1:{port}: Address already in use"]


@pytest.mark.browser
def test_an_open_page_reloads_itself_and_shows_a_failed_rebuild(server: str, dashboards: Path) -> None:
    from browser import launched

    with launched() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        page.wait_for_function("() => window.REZGEN && REZGEN.state && REZGEN.state.charts.length > 0",
                               timeout=20000)
        page.evaluate("() => { window.__before_reload = true; }")
        overview = dashboards / "overview.toml"
        overview.write_text(overview.read_text().replace('title = "Busy %"', 'title = "Busy right now"'))
        page.wait_for_function("() => !window.__before_reload && document.body.textContent.includes('Busy right now')",
                               timeout=30000)
        overview.write_text(overview.read_text() + "\nbroken [\n")
        banner = page.wait_for_selector(".rezgen-banner", timeout=30000)
        assert "overview.toml" in banner.text_content()
        assert errors == []


def test_the_stream_of_a_recording_says_it_will_not_change(server: str) -> None:
    with httpx.stream("GET", server + "api/stream", params={"section": "overview"}, timeout=10) as response:
        lines = response.iter_lines()
        assert next(lines) == "event: status"
        assert json.loads(next(lines).split(":", 1)[1])["mode"] == "recording"
    assert httpx.get(server + "api/stream", params={"section": "nope"}).status_code == 400
