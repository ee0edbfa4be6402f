"""The values PromQL expressions evaluate to, for every evaluation step at once.

An expression is evaluated over a grid of S steps in one go: a scalar is S floats, an instant vector is a list
of series each holding S values and an S-long presence mask (a sample may be absent at some steps; NaN is a
legitimate value, so absence needs its own mask). Histogram series hold an (S, buckets) array of bucket counts.
Range vectors only exist as function arguments: raw samples per series, windowed per step by the function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rezgen.errors import RezgenError
from rezgen.store.histogram import Layout
from rezgen.store.histograms import HistogramWindow
from rezgen.store.model import Labels

NAME = "__name__"


class PromQLError(RezgenError):
    """A query that cannot be evaluated; the message is one line meant for the user."""


def drop_name(labels: Labels) -> Labels:
    for i, (key, _) in enumerate(labels):
        if key == NAME:
            return labels[:i] + drop_name(labels[i + 1 :])
    return labels


def with_label(labels: Labels, name: str, value: str) -> Labels:
    """Set (or, with an empty value, remove) one label: Prometheus treats an empty label as absent."""
    rest = [pair for pair in labels if pair[0] != name]
    if value:
        rest.append((name, value))
    return tuple(sorted(rest))


def label_value(labels: Labels, name: str) -> str:
    for key, value in labels:
        if key == name:
            return value
    return ""


@dataclass
class Scalar:
    values: np.ndarray  # (S,)


@dataclass
class String:
    value: str


@dataclass
class Sample:
    """One series of an instant vector over all steps."""

    labels: Labels
    values: np.ndarray  # (S,) floats, or (S, buckets) for histograms
    present: np.ndarray  # (S,) bool
    layout: Layout | None = None  # set for histogram series

    @property
    def is_histogram(self) -> bool:
        return self.layout is not None


@dataclass
class Vector:
    series: list[Sample] = field(default_factory=list)


@dataclass
class RangeSeries:
    """Raw samples of one series, for a function that windows them per step."""

    labels: Labels
    times: np.ndarray  # int64 ns, increasing
    values: np.ndarray | None = None  # floats; None for histograms
    histogram: HistogramWindow | None = None
    layout: Layout | None = None
    breaks: np.ndarray | None = None  # restarts of its table (`Table.breaks`): windows start after the last one

    @property
    def float_values(self) -> np.ndarray:
        """`values` of a float series: only a histogram series (`histogram` set) has none."""
        assert self.values is not None, "a histogram series has no float values"
        return self.values


@dataclass
class Matrix:
    series: list[RangeSeries]
    range_ns: int
    times: np.ndarray  # evaluation times the windows end at (already shifted by offset / @)


Value = Scalar | String | Vector | Matrix


def type_name(value: Value) -> str:
    return {Scalar: "scalar", String: "string", Vector: "instant vector", Matrix: "range vector"}[type(value)]
