"""A real headless Chromium for page tests (Debian's chromium driven by Playwright; never a downloaded browser).

Without Playwright or Chromium the tests that need it skip with a message, or fail in CI.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

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


class Tab:
    """A page of one site: records console errors, uncaught exceptions, dialogs and every request; requests that
    are not file:// are aborted (and recorded), so nothing ever leaves the machine."""

    def __init__(self, browser, site: Path):
        self.site = site.resolve()
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.route(lambda url: not url.startswith("file:"), self._refuse)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", self._dialog)

    def _refuse(self, route) -> None:
        self.requests.append(route.request.url)
        route.abort()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, name: str, charts: bool = True):
        """Open a page of the site by name, e.g. "cpu.html?host=beta"; wait for its first chart if `charts`."""
        page, _, query = name.partition("?")
        self.page.goto((self.site / page).as_uri() + (f"?{query}" if query else ""))
        if charts:
            self.page.wait_for_function("() => window.REZGEN && REZGEN.state && REZGEN.state.charts.length > 0",
                                        timeout=20000)
        return self.page

    def draw_every_chart(self) -> None:
        """Scroll every chart panel into view and wait until each is drawn (or says why not)."""
        page = self.page
        for element in page.query_selector_all(".chart[data-plot-id]"):
            element.scroll_into_view_if_needed()
            page.wait_for_timeout(20)
        page.wait_for_function("""() => document.querySelectorAll('.chart[data-plot-id]').length ===
            REZGEN.state.charts.length + document.querySelectorAll('.chart[data-plot-id].chart-message').length""",
                               timeout=20000)

    def outside(self) -> list[str]:
        """Requests for anything but a file inside the site directory."""
        out = []
        for url in self.requests:
            parts = urlparse(url)
            path = Path(unquote(parts.path)).resolve() if parts.scheme == "file" else None
            if path is None or not path.is_relative_to(self.site):
                out.append(url)
        return out

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"
        assert self.outside() == [], f"requests outside the site: {self.outside()}"
