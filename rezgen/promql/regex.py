"""Regular expressions from queries (label matchers, label_replace), compiled with RE2 as Prometheus does.

RE2 matches in time linear in the input: Python's `re` backtracks, and `{__name__=~"(.|.)*X"}` ran for minutes
holding the GIL. Prometheus anchors a pattern as `^(?s:pattern)$` (a dot matches a newline too); the pattern is
first compiled alone, so `a)|(b` is an error there as in Prometheus rather than a regex of two halves.
"""

from __future__ import annotations

from functools import lru_cache

import promql_parser as pp
import re2

from rezgen.promql.limits import walk
from rezgen.promql.values import PromQLError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would also log every syntax error to stderr; the caller reports it once


@lru_cache(maxsize=512)
def anchored(pattern: str) -> re2._Regexp:
    """The compiled `^(?s:pattern)$`, to use with `search`; PromQLError for what RE2 cannot compile."""
    try:
        re2.compile(pattern, _OPTIONS)
        return re2.compile(f"^(?s:{pattern})$", _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PromQLError(f"invalid regular expression {pattern!r}: {detail}") from None


def check_regexes(tree: pp.Expr) -> None:
    """Compile every regex matcher of a parsed query, so that one RE2 refuses is a bad query (PromQLError) before
    anything is evaluated."""
    for node in walk(tree):
        selector = node.vector_selector if isinstance(node, pp.MatrixSelector) else node
        if isinstance(selector, pp.VectorSelector):
            matchers = selector.matchers
            for branch in [matchers.matchers, *(matchers.or_matchers or [])]:
                for matcher in branch:
                    if matcher.op in (pp.MatchOp.Re, pp.MatchOp.NotRe):
                        anchored(matcher.value)
