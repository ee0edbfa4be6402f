"""Shared fixtures for rezgen's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared import in_ci, shared_recording, unavailable


def pytest_configure(config: pytest.Config) -> None:
    """Every run lists its skips with their reasons (as `-rs` does), however pytest was started."""
    chars = config.option.reportchars
    if not any(c in chars for c in "sa") and "A" not in chars:
        config.option.reportchars = chars + "s"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A skip must say why; in CI (where `unavailable()` fails rather than skips) no test may skip at all."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr or "")
    reason = reason.removeprefix("Skipped: ").strip()
    if reason in ("", "Skipped", "unconditional skip"):  # pytest.skip() or a bare @pytest.mark.skip
        report.outcome, report.longrepr = "failed", f"{item.nodeid} skipped without saying why"
    elif in_ci():
        report.outcome, report.longrepr = "failed", f"skipped in CI: {reason}"


@pytest.fixture(scope="module")
def browser():
    """A real headless Chromium (Debian's, driven by Playwright), one per test module."""
    from browser import launched

    with launched() as instance:
        yield instance


@pytest.fixture
def tab(browser):
    """`tab(site_dir)` → a `browser.Tab` on that static site, closed after the test."""
    from browser import Tab

    opened: list[Tab] = []

    def make(site: Path, kind: type[Tab] = Tab) -> Tab:
        opened.append(kind(browser, site))
        return opened[-1]

    yield make
    for t in opened:
        t.context.close()


@pytest.fixture(scope="session")
def prometheus_for(tmp_path_factory):
    """`prometheus_for("c16.parquet")` → a `RecordingOracle`: that recording's counters and gauges, served by a real
    Prometheus on 127.0.0.1.

    Each recording is exported and started once per session (lazily, on first use); every Prometheus is stopped at
    the end of the session, whatever the outcome. Skips (fails in CI) when prometheus/promtool are not installed.
    """
    from prometheus_oracle import binaries, start_oracle

    oracles = {}
    failures: dict[str, BaseException] = {}

    def get(name: str):
        if name in oracles:
            return oracles[name]
        if name in failures:  # do not retry a failed export/start for every test
            raise failures[name]
        found = binaries()
        if found is None:
            unavailable("prometheus and promtool are needed for the PromQL oracle tests (apt-get install prometheus)")
        path = shared_recording(name)
        prometheus, promtool = found
        try:
            oracles[name] = start_oracle(path, tmp_path_factory.mktemp(f"prometheus-{path.stem}"), prometheus, promtool)
        except Exception as e:
            failures[name] = e
            raise
        return oracles[name]

    try:
        yield get
    finally:
        for oracle in oracles.values():
            oracle.stop()


@pytest.fixture(autouse=True)
def _live_data_dir(tmp_path_factory, monkeypatch) -> None:
    """`serve --live` keeps history in a data dir by default (output/live): each test's servers get their own."""
    monkeypatch.setenv("REZGEN_DATA_DIR", str(tmp_path_factory.mktemp("live-data")))
