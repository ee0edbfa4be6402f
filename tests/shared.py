"""Helpers shared by test modules: where the real sample recordings and protocol vectors live.

They ship inside the repository (`tests/data/`, see its README for their origin and licence), so a fresh clone runs
every test. A file that is missing is a broken checkout: the test fails rather than skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / "tests" / "data"
RECORDINGS = DATA
VECTORS = DATA / "vectors"


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it in CI, where nothing may be silently skipped."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


def shared_recording(name: str) -> Path:
    """Path of a real sample recording, e.g. `shared_recording("c16.parquet")`."""
    path = RECORDINGS / name
    if not path.is_file():
        pytest.fail(f"sample recording not found: {path} (it ships in tests/data/)")
    return path
