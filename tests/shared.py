"""Helpers shared by test modules: where the real sample recordings live.

The recordings are read from `../shared/recordings/` beside the repository and are never copied into it. Without them
a test skips on a developer machine and fails in CI (`CI` set), where their absence is a setup error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
RECORDINGS = SHARED / "recordings"


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it in CI, where nothing may be silently skipped."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


def shared_recording(name: str) -> Path:
    """Path of a real sample recording, e.g. `shared_recording("c16.parquet")`."""
    if not RECORDINGS.is_dir():
        unavailable(f"sample recordings not found: {RECORDINGS} is missing (they live beside the repository)")
    path = RECORDINGS / name
    if not path.is_file():
        unavailable(f"sample recording not found: {path}")
    return path
