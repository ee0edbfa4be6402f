"""Aggregation operators (`sum`, `avg`, `topk`, ... with `by` / `without`), per step over a group's series.

Histogram series aggregate bucket-wise (`sum`, `avg`); series whose layouts share a grouping power differ only
in how many buckets they have, so shorter ones are padded with empty buckets.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from rezgen.promql.deadline import check_deadline
from rezgen.promql.result import format_value
from rezgen.promql.values import NAME, PromQLError, Sample, Vector, with_label
from rezgen.store.histogram import Layout
from rezgen.store.model import Labels

SIMPLE = ("sum", "avg", "min", "max", "count", "group", "stddev", "stdvar")
GROUPED = ("sum", "avg", "count", "group")  # reduced for all groups at once
MAX_COUNT_VALUES_CELLS = 20_000_000  # distinct values x steps of count_values()'s dense output


def group_key(labels: Labels, names: list[str], without: bool) -> Labels:
    if without:
        drop = set(names) | {NAME}
        return tuple(pair for pair in labels if pair[0] not in drop)
    keep = set(names)
    return tuple(pair for pair in labels if pair[0] in keep)


def aggregate(op: str, vector: Vector, names: list[str], without: bool, param: object, steps: int) -> Vector:
    groups: dict[Labels, list[Sample]] = defaultdict(list)
    for sample in vector.series:
        groups[group_key(sample.labels, names, without)].append(sample)
    if op in GROUPED and vector.series and not any(sample.is_histogram for sample in vector.series):
        return _grouped(op, groups)
    out = Vector()
    for key, members in sorted(groups.items()):
        check_deadline()
        if op in SIMPLE:
            out.series.extend(_simple(op, key, members))
        elif op in ("topk", "bottomk"):
            out.series.extend(_top(op, members, np.asarray(param), steps))
        elif op == "quantile":
            out.series.extend(_quantile(key, members, np.asarray(param)))
        elif op == "count_values":
            out.series.extend(_count_values(key, members, str(param)))
        else:
            raise PromQLError(f"aggregation {op}() is not supported")
    return out


def _grouped(op: str, groups: dict[Labels, list[Sample]]) -> Vector:
    """`_simple` for every group at once (sum, avg, count, group): one array of all the members, each group a run
    of its rows (summed as `_simple` sums them, to the last bit)."""
    keys = sorted(groups)
    members = [sample for key in keys for sample in groups[key]]
    bounds = np.cumsum([0] + [len(groups[key]) for key in keys])
    values, present = _stack(members)
    count = np.add.reduceat(present, bounds[:-1], axis=0, dtype=np.int64)
    any_present = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        if op in ("sum", "avg"):
            masked = np.where(present, values, 0.0)
            result = np.stack([masked[start:end].sum(axis=0) for start, end in itertools.pairwise(bounds)])
            if op == "avg":
                result = result / count
        elif op == "count":
            result = count.astype(np.float64)
        else:
            result = np.ones(count.shape)
    result = np.where(any_present, result, 0.0)
    return Vector([Sample(key, result[i], any_present[i]) for i, key in enumerate(keys)])


def _stack(members: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    values = np.stack([m.values for m in members])
    present = np.stack([m.present for m in members])
    return values, present


def _simple(op: str, key: Labels, members: list[Sample]) -> list[Sample]:
    if any(m.is_histogram for m in members):
        return [_histogram_aggregate(op, key, members)]
    values, present = _stack(members)
    count = present.sum(axis=0)
    any_present = count > 0
    masked = np.where(present, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if op == "sum":
            result = masked.sum(axis=0)
        elif op == "avg":
            result = masked.sum(axis=0) / count
        elif op == "count":
            result = count.astype(np.float64)
        elif op == "group":
            result = np.ones(len(count))
        elif op in ("min", "max"):
            # NaN only wins when every present value is NaN, as in Prometheus.
            fill = np.inf if op == "min" else -np.inf
            candidates = np.where(present & ~np.isnan(values), values, fill)
            result = candidates.min(axis=0) if op == "min" else candidates.max(axis=0)
            only_nan = ((present & ~np.isnan(values)).sum(axis=0) == 0) & any_present
            result = np.where(only_nan, np.nan, result)
        else:
            mean = masked.sum(axis=0) / count
            variance = np.where(present, (values - mean) ** 2, 0.0).sum(axis=0) / count
            result = np.sqrt(variance) if op == "stddev" else variance
    return [Sample(key, np.where(any_present, result, 0.0), any_present)]


def _histogram_aggregate(op: str, key: Labels, members: list[Sample]) -> Sample:
    if op not in ("sum", "avg") or not all(m.is_histogram for m in members):
        raise PromQLError(f"{op}() cannot mix histograms and numbers" if op in ("sum", "avg")
                          else f"{op}() does not take histograms")
    powers = {m.layout.grouping_power for m in members if m.layout}
    if len(powers) > 1:
        raise PromQLError(f"cannot aggregate histograms with different grouping powers {sorted(powers)}")
    widest = max((m.layout for m in members if m.layout), key=lambda layout: layout.buckets)
    steps = len(members[0].present)
    total = np.zeros((steps, widest.buckets))
    count = np.zeros(steps)
    for m in members:
        n = m.values.shape[1]
        total[:, :n] += np.where(m.present[:, None], m.values, 0.0)
        count += m.present
    present = count > 0
    if op == "avg":
        total[present] /= count[present, None]
    return Sample(key, total, present, Layout(widest.grouping_power, widest.max_value_power))


def _top(op: str, members: list[Sample], k: np.ndarray, steps: int) -> list[Sample]:
    if any(m.is_histogram for m in members):
        raise PromQLError(f"{op}() does not take histograms")
    values, present = _stack(members)
    # Rank absent samples last and NaN after every number, as Prometheus does.
    sortable = np.where(np.isnan(values), -np.inf if op == "topk" else np.inf, values)
    order_key = -sortable if op == "topk" else sortable
    order_key = np.where(present, order_key, np.inf)
    nan_last = np.where(present & np.isnan(values), 1, 0) + np.where(present, 0, 2)
    ranks = np.lexsort((order_key, nan_last), axis=0).argsort(axis=0)
    limit = np.clip(np.broadcast_to(np.nan_to_num(k, nan=0.0), (steps,)), 0, len(members)).astype(np.int64)
    chosen = present & (ranks < limit[None, :])
    return [Sample(m.labels, m.values, chosen[i]) for i, m in enumerate(members) if chosen[i].any()]


def _quantile(key: Labels, members: list[Sample], q: np.ndarray) -> list[Sample]:
    values, present = _stack(members)
    steps = values.shape[1]
    qs = np.broadcast_to(q, (steps,))
    result = np.zeros(steps)
    any_present = np.any(present, axis=0)
    for step in np.flatnonzero(any_present):
        window = values[present[:, step], step]
        qv = qs[step]
        result[step] = -np.inf if qv < 0 else np.inf if qv > 1 else np.quantile(window, qv)
    return [Sample(key, result, any_present)]


def _count_values(key: Labels, members: list[Sample], label: str) -> list[Sample]:
    # A histogram sample has no single value to count; stacking its (steps x buckets) array with the float series'
    # (steps,) ones was the "same shape" error.
    floats = [m for m in members if not m.is_histogram]
    if not floats:
        return []
    values, present = _stack(floats)
    steps = values.shape[1]
    rows, cols = np.nonzero(present)
    # Distinct bit patterns, then their texts: -0 and 0 print apart, every NaN prints as "NaN".
    bits, inverse = np.unique(values[rows, cols].view(np.int64), return_inverse=True)
    texts = [format_value(float(v)) for v in bits.view(np.float64)]
    names = sorted(set(texts))
    if len(names) * steps > MAX_COUNT_VALUES_CELLS:
        raise PromQLError(f"count_values() would make {len(names):,} series of {steps:,} steps: too many")
    position = {text: i for i, text in enumerate(names)}
    which = np.array([position[text] for text in texts], dtype=np.int64)[inverse.ravel()]
    counts = np.zeros((len(names), steps))
    np.add.at(counts, (which, cols), 1)
    present = counts > 0
    return [Sample(with_label(key, label, text), counts[i], present[i]) for i, text in enumerate(names)]
