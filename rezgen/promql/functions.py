"""PromQL functions over instant vectors and scalars, including the Rezolus histogram functions.

Histogram functions treat Rezolus histograms as Prometheus native histograms. `histogram_quantile` follows the
percentile rule of Rezolus itself (`store.histogram.quantiles`) and gives no point for an interval with no
observations. `histogram_sum` is an estimate: every observation counts at its bucket's
midpoint. `histogram_heatmap` (a rezgen extension) returns one series per non-empty bucket, labelled `le` with
the bucket's upper edge, holding that bucket's count: the bucket-by-time matrix of a heatmap.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import promql_parser as pp

from rezgen.promql.regex import anchored
from rezgen.promql.result import format_value
from rezgen.promql.values import PromQLError, Sample, Scalar, String, Value, Vector, drop_name, label_value, with_label
from rezgen.store.histogram import quantile_rows

EXTRA_FUNCTIONS = [pp.Function("histogram_heatmap", [pp.ValueType.Vector], pp.ValueType.Vector)]

MATH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "exp": np.exp, "ln": np.log, "log2": np.log2,
    "log10": np.log10, "sqrt": np.sqrt, "sgn": np.sign, "deg": np.degrees, "rad": np.radians, "sin": np.sin,
    "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh,
    "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
}


def register_extensions() -> None:
    with contextlib.suppress(ValueError):  # already registered in this process
        pp.register_extra_functions(EXTRA_FUNCTIONS)


def _floats(vector: Vector, name: str) -> list[Sample]:
    if any(s.is_histogram for s in vector.series):
        raise PromQLError(f"{name}() does not take histograms")
    return vector.series


def _map(vector: Vector, name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Vector:
    with np.errstate(all="ignore"):
        return Vector([Sample(drop_name(s.labels), fn(s.values), s.present) for s in _floats(vector, name)])


def call(name: str, args: list[Value], steps: int, times: np.ndarray) -> Value:
    if name in MATH:
        return _map(_vector(args[0], name), name, MATH[name])
    if name == "round":
        nearest = _scalar(args[1]) if len(args) > 1 else np.ones(steps)
        return _map(_vector(args[0], name), name, lambda v: np.floor(v / nearest + 0.5) * nearest)
    if name in ("clamp", "clamp_min", "clamp_max"):
        lo = _scalar(args[1]) if name in ("clamp", "clamp_min") else np.full(steps, -np.inf)
        hi = _scalar(args[-1]) if name in ("clamp", "clamp_max") else np.full(steps, np.inf)
        vector = _map(_vector(args[0], name), name, lambda v: np.minimum(np.maximum(v, lo), hi))
        if name == "clamp":  # an empty range gives no samples
            for sample in vector.series:
                sample.present = sample.present & (lo <= hi)
        return vector
    if name == "scalar":
        series = _floats(_vector(args[0], name), name)
        present = np.stack([s.present for s in series]) if series else np.zeros((0, steps), dtype=bool)
        values = np.stack([s.values for s in series]) if series else np.zeros((0, steps))
        single = present.sum(axis=0) == 1
        picked = np.where(present, values, 0.0).sum(axis=0)
        return Scalar(np.where(single, picked, np.nan))
    if name == "vector":
        return Vector([Sample((), _scalar(args[0]).copy(), np.ones(steps, dtype=bool))])
    if name == "time":
        return Scalar(times / 1e9)
    if name in ("sort", "sort_desc"):
        return _vector(args[0], name)  # a range query has no order; instant results are sorted on output
    if name == "label_replace":
        return _label_replace(_vector(args[0], name), *(_string(a) for a in args[1:5]))
    if name == "label_join":
        return _label_join(_vector(args[0], name), _string(args[1]), _string(args[2]), [_string(a) for a in args[3:]])
    if name.startswith("histogram_"):
        return histogram_function(name, args, steps)
    raise PromQLError(f"function {name}() is not supported")


def _vector(value: Value, name: str) -> Vector:
    if not isinstance(value, Vector):
        raise PromQLError(f"{name}() expects an instant vector")
    return value


def _scalar(value: Value) -> np.ndarray:
    if not isinstance(value, Scalar):
        raise PromQLError("expected a scalar argument")
    return value.values


def _string(value: Value) -> str:
    if not isinstance(value, String):
        raise PromQLError("expected a string argument")
    return value.value


def _label_replace(vector: Vector, dst: str, replacement: str, src: str, pattern: str) -> Vector:
    regex = anchored(pattern)
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", dst):
        raise PromQLError(f"invalid destination label name in label_replace(): {dst!r}")
    out = []
    for sample in vector.series:
        match = regex.search(label_value(sample.labels, src))
        labels = sample.labels if match is None else with_label(sample.labels, dst, _expand(match, replacement))
        out.append(Sample(labels, sample.values, sample.present, sample.layout))
    return Vector(out)


def _expand(match: Any, template: str) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, ${name}; a group that does not exist expands to nothing; $$ is $."""
    def group(ref: re.Match[str]) -> str:
        if ref.group(0) == "$$":
            return "$"
        name = ref.group(1) or ref.group(2)
        try:
            value = match.group(int(name) if name.isdigit() else name)
        except IndexError:  # no such group
            return ""
        return value or ""

    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", group, template)


def _label_join(vector: Vector, dst: str, separator: str, sources: list[str]) -> Vector:
    return Vector([
        Sample(with_label(s.labels, dst, separator.join(label_value(s.labels, n) for n in sources)), s.values,
               s.present, s.layout)
        for s in vector.series
    ])


def _histograms(value: Value, name: str) -> list[Sample]:
    vector = _vector(value, name)
    if not all(s.is_histogram for s in vector.series):
        raise PromQLError(f"{name}() needs histograms (a Rezolus histogram metric or a rate of one)")
    return vector.series


def histogram_function(name: str, args: list[Value], steps: int) -> Vector:
    out = Vector()
    if name == "histogram_quantile":
        q = _scalar(args[0])
        for h in _histograms(args[1], name):
            assert h.layout is not None
            values = np.full(steps, np.nan)
            for qv in np.unique(q):
                rows = q == qv
                values[rows] = quantile_rows(h.values[rows], float(qv), h.layout.highs)
            out.series.append(Sample(drop_name(h.labels), values, h.present & (h.values.sum(axis=1) > 0)))
        return out
    if name == "histogram_heatmap":
        for h in _histograms(args[0], name):
            assert h.layout is not None
            used = np.flatnonzero((h.values[h.present] != 0).any(axis=0))
            for bucket in used:
                le = format_value(float(h.layout.highs[bucket]))
                out.series.append(Sample(with_label(drop_name(h.labels), "le", le), h.values[:, bucket], h.present))
        return out
    if name == "histogram_fraction":
        lower, upper = _scalar(args[0]), _scalar(args[1])
        for h in _histograms(args[2], name):
            assert h.layout is not None
            inside = (h.layout.lows[None, :] >= lower[:, None]) & (h.layout.highs[None, :] <= upper[:, None])
            total = h.values.sum(axis=1)
            with np.errstate(all="ignore"):
                values = (h.values * inside).sum(axis=1) / total
            out.series.append(Sample(drop_name(h.labels), values, h.present & (total > 0)))
        return out
    for h in _histograms(args[0], name):
        assert h.layout is not None
        if name == "histogram_count":
            values, present = h.values.sum(axis=1), h.present
        elif name == "histogram_sum":
            values, present = _weighted(h.values, h.layout.midpoints), h.present
        elif name == "histogram_avg":
            count = h.values.sum(axis=1)
            with np.errstate(all="ignore"):
                values = _weighted(h.values, h.layout.midpoints) / count
            present = h.present & (count > 0)
        else:
            raise PromQLError(f"function {name}() is not supported")
        out.series.append(Sample(drop_name(h.labels), values, present))
    return out


def _weighted(values: np.ndarray, midpoints: np.ndarray) -> np.ndarray:
    """Per-row sum of counts x bucket midpoints. Not `values @ midpoints`: a BLAS product wakes OpenBLAS's threads,
    which then spin on the other core for a while after every call."""
    return np.einsum("ij,j->i", values, midpoints)
