"""Results shared by the queries of one build: parsed expressions, selected series and range-function results.

A dashboard reads the same counters under many aggregations (`irate(cpu_usage[5m])` feeds a dozen charts, and
the metric browser charts it again), and selecting and windowing series is most of what an evaluation costs. A
build whose series stay loaded (see `recording.budget`) evaluates each distinct selection once per chunk of steps.

Keys are built from the parsed selector's fields, not from its printed form, which does not escape quotes in
label values. Cached values are shared between queries: evaluation never modifies a value in place.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np
import promql_parser as pp

from rezgen.promql.limits import check_text, check_tree
from rezgen.promql.regex import check_regexes
from rezgen.promql.values import PromQLError, Vector

T = TypeVar("T")


@lru_cache(maxsize=4096)
def parse(expr: str) -> pp.Expr:
    """A parsed expression (the same object for the same text; parsed trees are only read). Text the parser could
    not survive, or a tree too deep to evaluate, is refused (see limits.py)."""
    check_text(expr)
    try:
        tree = pp.parse(expr)
    except (ValueError, TypeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        raise PromQLError(f"invalid query: {message}") from None
    check_tree(tree)
    check_regexes(tree)
    return tree


class EvalCache:
    """Memoised evaluation pieces of one build, over a store that does not change meanwhile."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable, compute: Callable[[], T], keep: Callable[[T], bool] | None = None) -> T:
        """The value under `key`, computed on first use; kept only if `keep` (when given) says so."""
        if key in self._values:
            return self._values[key]
        value = compute()
        if keep is None or keep(value):
            self._values[key] = value
        return value


def without_histograms(value: object) -> bool:
    """Whether a value is small enough to keep: a histogram's dense (steps x buckets) arrays are not."""
    return not (isinstance(value, Vector) and any(s.is_histogram for s in value.series))


def selector_key(selector: pp.VectorSelector) -> Hashable:
    """Everything that decides what a vector selector selects and at which times."""
    matchers = selector.matchers
    at = selector.at
    return (selector.name, _matchers_key(matchers.matchers),
            tuple(_matchers_key(branch) for branch in matchers.or_matchers or []),
            selector.offset, None if at is None else (str(at.type), at.at))


def matrix_key(matrix: pp.MatrixSelector) -> Hashable:
    return selector_key(matrix.vector_selector), matrix.range


def times_key(times: np.ndarray) -> Hashable:
    return times.tobytes()


def _matchers_key(matchers: list[pp.Matcher]) -> tuple[tuple[str, str, str], ...]:
    return tuple((m.name, str(m.op), m.value) for m in matchers)
