"""A real headless Chromium for page tests (Debian's chromium driven by Playwright; never a downloaded browser).

Without Playwright or Chromium the tests that need it skip with a message, or fail in CI.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

from shared import unavailable

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    unavailable("no Chromium binary on PATH (apt-get install chromium)")
    raise AssertionError("unreachable")


@contextlib.contextmanager
def launched() -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            yield instance
        finally:
            instance.close()
