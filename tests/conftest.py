"""Shared fixtures for rezgen's tests."""

from __future__ import annotations

import pytest
from shared import shared_recording, unavailable


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
