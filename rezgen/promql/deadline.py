"""A per-query time limit, checked cooperatively: evaluation is numpy driven from Python, so the evaluator checks
the deadline between nodes, series and windows and gives up by raising QueryTimeout."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

from rezgen.errors import RezgenError

_DEADLINE: ContextVar[float | None] = ContextVar("rezgen_query_deadline", default=None)


class QueryTimeout(RezgenError):
    """Evaluation passed its deadline (not a PromQLError: the API answers it with 503, not 422)."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Evaluation in this context (this thread) raises QueryTimeout once `seconds` have passed (None: no limit)."""
    token = _DEADLINE.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> None:
    limit = _DEADLINE.get()
    if limit is not None and time.monotonic() > limit:
        raise QueryTimeout("query timed out in expression evaluation")
