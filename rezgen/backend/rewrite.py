"""Dashboard queries as a backend runs them: the host's `node` matcher added to every selector, and rezgen's
native-histogram forms turned into what the TSDB holds (`NAME_bucket{le}`, `NAME_count`, quantile gauges).
"""

from __future__ import annotations

from dataclasses import dataclass

import promql_parser as pp

from rezgen.promql.cache import parse
from rezgen.promql.selectors import vector_selectors
from rezgen.promql.values import PromQLError

Scope = tuple[tuple[str, str], ...]
RATES = ("irate", "rate", "increase")
BUCKET_FUNCTIONS = ("histogram_quantile", "histogram_avg", "histogram_sum", "histogram_fraction", "histogram_heatmap")


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def scoped(query: str, scope: Scope) -> str:
    """`query` with the scope's matchers in every selector's braces (the printed form of a parsed query always
    has braces; braces inside string literals are left alone)."""
    if not scope:
        return query
    added = ",".join(f"{name}={quoted(value)}" for name, value in scope)
    out, quote, i = [], "", 0
    while i < len(query):
        char = query[i]
        if quote:
            out.append(char)
            if char == "\\":
                out.append(query[i + 1 : i + 2])
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
            out.append(char)
        elif char == "{":
            inner = query[i + 1 :].lstrip()
            out.append("{" + added + ("" if inner.startswith("}") else ","))
        else:
            out.append(char)
        i += 1
    return "".join(out)


def renamed(selector: pp.VectorSelector, suffix: str, extra: str = "") -> str:
    """The selector's text for its metric's `suffix` series (`_bucket`, `_count` or "" for the quantile gauges),
    with `extra` matchers."""
    text = str(selector)
    name = selector.name or ""
    if not name or not text.startswith(name + "{"):
        raise PromQLError(f"{text}: a histogram selector needs a metric name")
    inner = text[len(name) + 1 : -1]
    matchers = ",".join(part for part in (inner, extra) if part)
    return f"{name}{suffix}{{{matchers}}}"


@dataclass
class HistogramForm:
    """`FUNC(sum [by (labels)] (RATE(H{...}[r])))`: the shape of histogram query the dashboards (`sum`) and the
    fleet page (`sum by (node)`) use."""

    function: str
    args: list[pp.Expr]  # the function's other arguments (a quantile, fraction bounds)
    rate: str
    selector: pp.VectorSelector
    range_text: str
    by: list[str]

    def count_query(self) -> str:
        return f"sum by ({', '.join(self.by)}) ({self.rate}({renamed(self.selector, '_count')}[{self.range_text}]))"

    def buckets_query(self) -> str:
        by = ", ".join([*self.by, "le"])
        return f"sum by ({by}) ({self.rate}({renamed(self.selector, '_bucket')}[{self.range_text}]))"


def histogram_names(tree: pp.Expr, histograms: set[str]) -> list[str]:
    return [s.name for s in vector_selectors(tree) if s.name in histograms]


def histogram_form(tree: pp.Expr) -> HistogramForm | None:
    if not isinstance(tree, pp.Call) or not tree.func.name.startswith("histogram_"):
        return None
    inner = tree.args[-1]
    if not (isinstance(inner, pp.AggregateExpr) and str(inner.op) == "sum"
            and isinstance(inner.expr, pp.Call) and inner.expr.func.name in RATES):
        return None
    modifier = inner.modifier
    if modifier is not None and (str(modifier.type) != "AggModifierType.By" or "le" in modifier.labels):
        return None
    matrix = inner.expr.args[0]
    if not isinstance(matrix, pp.MatrixSelector):
        return None
    selector = matrix.vector_selector
    if selector.offset is not None or selector.at is not None:
        return None
    range_text = str(matrix)[str(matrix).rindex("[") + 1 : -1]
    return HistogramForm(tree.func.name, list(tree.args[:-1]), inner.expr.func.name, selector, range_text,
                         list(modifier.labels) if modifier is not None else [])


def histogram_selector(query: str) -> pp.VectorSelector:
    """A percentile plot's query: a plain selector of a histogram metric."""
    tree = parse(query)
    if not isinstance(tree, pp.VectorSelector) or not tree.name or tree.offset is not None or tree.at is not None:
        raise PromQLError(f"{query}: over a TSDB a percentiles plot needs a plain histogram selector")
    return tree


def rated_metrics(queries: list[str]) -> set[str]:
    """Metrics the queries take a rate of: counters (a TSDB does not say which metrics are)."""
    found: set[str] = set()

    def walk(node: object, rated: bool) -> None:
        if isinstance(node, pp.VectorSelector):
            if rated and node.name:
                found.add(node.name)
            return
        if isinstance(node, pp.MatrixSelector):
            walk(node.vector_selector, rated)
            return
        inside = rated or (isinstance(node, pp.Call) and node.func.name in RATES)
        for name in ("expr", "lhs", "rhs", "param"):
            child = getattr(node, name, None)
            if isinstance(child, pp.Expr):
                walk(child, inside)
        for child in getattr(node, "args", None) or []:
            walk(child, inside)

    for query in queries:
        try:
            walk(parse(query), False)
        except PromQLError:
            continue
    return found
