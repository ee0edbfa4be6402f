"""What one query may cost, checked before it runs: its size and nesting, the samples it would hold, and its time.

promql-parser (a Rust extension) recurses once per nested expression and per chained binary operator, about 1 KB
and 2 KB of C stack each: `1+1+…` with ~4,190 terms or ~8,180 nested parentheses overflow an 8 MB stack and kill
the process (SIGSEGV), and ~1,050 terms already do in a thread with a 2 MB stack (glibc's default when the stack
ulimit is unlimited). A lexical scan bounds both before parsing, well below that; a bound on the parsed tree's
depth keeps the recursive evaluator far from Python's recursion limit.

Memory is bounded as Prometheus bounds it (`--query.max-samples`): the samples a query would hold are estimated
from the parsed tree and the store's series counts before anything is evaluated. Time is bounded cooperatively:
evaluation is numpy driven from Python, so it checks a deadline between nodes, series and windows.
"""

from __future__ import annotations

import ctypes
import gc
import re
from collections.abc import Iterator
from dataclasses import dataclass

import promql_parser as pp
import pyarrow as pa

from rezgen.promql.values import PromQLError

MAX_QUERY_BYTES = 65_536
MAX_NESTING = 128  # brackets open at once, and the depth of the parsed tree
MAX_OPERATORS = 256  # operator tokens (binary and unary) outside label matchers
MAX_POINTS_PER_SERIES = 11_000  # steps of a range query, as Prometheus refuses more
MAX_TIME_NS = 2**62  # times the engine works with (int64 ns with room for lookback and ranges): years 1824 to 2116
# Estimated samples (values of series x steps, window points, subquery grids) one query may hold. Measured on c16,
# dense subqueries (`max_over_time(rate(cgroup_syscall[1m])[6m:2ms])`, 133M) peak at 9-12.7 bytes of RSS per
# estimated sample (values, presence masks, window indices, subquery copies), so 40M keeps a query near 0.5 GB, as
# Prometheus's --query.max-samples=50M does with its own per-sample cost.
DEFAULT_MAX_SAMPLES = 40_000_000
DEFAULT_TIMEOUT_S = 30.0
TRIM_AFTER_SAMPLES = 1_000_000  # after a query this big, hand freed memory back to the system


@dataclass(frozen=True)
class QueryLimits:
    """What the server allows one query (`rezgen serve --query-max-samples / --query-timeout`)."""

    max_samples: int = DEFAULT_MAX_SAMPLES
    timeout_s: float | None = DEFAULT_TIMEOUT_S


DEFAULT_LIMITS = QueryLimits()
KEYWORD_OPERATORS = {"and", "or", "unless", "atan2"}
_TOKEN = re.compile(r"""
     (?P<string>"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)
    |(?P<comment>\#[^\n]*)
    |(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<word>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<operator>==|!=|>=|<=|=~|!~|[-+*/%^<>])
    |(?P<open>[(\[{])
    |(?P<close>[)\]}])
""", re.VERBOSE | re.DOTALL)


class QueryTooExpensive(PromQLError):
    """A query refused because it would hold more samples than allowed."""


def check_text(text: str) -> None:
    """Refuse a query the parser could not survive: too long, too deeply nested, or with too many operators.
    Strings, comments and label matchers are skipped, so `"("` or `{a!="b"}` count for nothing."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_QUERY_BYTES:
        raise PromQLError(f"query too long: {size:,} bytes, limit {MAX_QUERY_BYTES:,}")
    depth = braces = operators = 0
    for token in _TOKEN.finditer(text):
        kind = token.lastgroup
        if kind == "open":
            depth += 1
            braces += token.group() == "{"
            if depth > MAX_NESTING:
                raise PromQLError(f"query nested too deeply: more than {MAX_NESTING} brackets open at once")
        elif kind == "close":
            depth = max(0, depth - 1)
            braces = max(0, braces - (token.group() == "}"))
        elif not braces and (kind == "operator" or (kind == "word" and token.group().lower() in KEYWORD_OPERATORS)):
            operators += 1
    if operators > MAX_OPERATORS:
        raise PromQLError(f"query has too many operators: {operators}, limit {MAX_OPERATORS}")


def children(node: pp.Expr) -> list[pp.Expr]:
    if isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
        return [node.expr]
    if isinstance(node, pp.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, pp.Call):
        return list(node.args)
    if isinstance(node, pp.AggregateExpr):
        return [node.expr] if node.param is None else [node.param, node.expr]
    return []  # literals and selectors


def walk(tree: pp.Expr) -> Iterator[pp.Expr]:
    """Every node of a parsed tree, without recursion; PromQLError past a depth of MAX_NESTING."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise PromQLError(f"query nested too deeply: expression depth over {MAX_NESTING}")
        yield node
        stack.extend((child, depth + 1) for child in children(node))


def check_tree(tree: pp.Expr) -> None:
    """Refuse a parsed tree deeper than MAX_NESTING, which the recursive evaluator would not survive."""
    for _ in walk(tree):
        pass


def check_range(start_ns: int, end_ns: int, step_ns: int) -> None:
    """The bounds of a range query's grid that every entry point shares (times, and points per series)."""
    for name, value in (("start", start_ns), ("end", end_ns)):
        if abs(value) > MAX_TIME_NS:
            raise PromQLError(f"{name} is out of range (years 1824 to 2116)")
    if step_ns > MAX_TIME_NS:
        raise PromQLError("step is out of range (at most 146 years)")
    if step_ns <= 0:
        raise PromQLError("the step must be positive")
    if end_ns < start_ns:
        raise PromQLError("the end time must not be before the start time")
    if (end_ns - start_ns) // step_ns > MAX_POINTS_PER_SERIES:
        raise PromQLError(f"exceeded maximum resolution of {MAX_POINTS_PER_SERIES:,} points per timeseries: "
                          f"{(end_ns - start_ns) // step_ns + 1:,} steps; use a larger step")


# -- samples and memory ----------------------------------------------------------------------------------------------


def check_samples(estimated: int, limit: int | None) -> None:
    if limit is not None and estimated > limit:
        raise QueryTooExpensive(f"query processing would load too many samples into memory in query execution: "
                                f"about {estimated:,} samples, limit {limit:,} (--query-max-samples)")


# The C library the interpreter already has loaded (find_library would run `ldconfig` in a child process).
_LIBC = ctypes.CDLL(None)


def trim_heap() -> None:
    """Hand freed memory back to the system: large numpy arrays come from glibc's heap once its mmap threshold has
    grown, and Arrow keeps freed buffers in its pool; both keep them until trimmed."""
    pa.default_memory_pool().release_unused()
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def release_memory() -> None:
    """After a big query: collect what it left (cycles included), then trim the heap."""
    gc.collect()
    trim_heap()
