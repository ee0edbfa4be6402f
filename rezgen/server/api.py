"""The HTTP API over a data source (placeholder wiring; the full API lands next)."""

from __future__ import annotations

from typing import Callable

from starlette.routing import BaseRoute

from .source import DataSource


def api_routes(source: Callable[[], DataSource]) -> list[BaseRoute]:
    return []
