"""One agent's snapshots as remote-write samples, the way Rezolus's exporter offers them to Prometheus.

- Counters and gauges as they are: `NAME{labels}`.
- Histograms as cumulative buckets `NAME_bucket{le="…"}` (le = a bucket's inclusive upper edge; `+Inf` = all)
  plus `NAME_count`, downsampled to `grouping_power` (coarser buckets hold whole finer ones: H2 buckets nest), and
  per-interval percentile gauges `NAME{quantile="0.5"…}` computed with the Rezolus rule (`store.histogram.
  quantiles`) from the full-resolution buckets' increase since the previous snapshot. No increase (an idle
  interval), the first snapshot, or an agent restart: no percentile for that interval.
- Every series gets `node` (the agent) and the external labels (added where the series has no such label).

The series list of a snapshot is planned once and its encoding kept (`wire.Template`) while the agent sends the
same entries; a snapshot then costs a few numpy operations.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rezgen.agent.pieces import Snapshot
from rezgen.remote.wire import (
    Segment,
    Template,
    encode_labels,
    encode_series,
    label_name,
    metric_name,
    sample_tail,
    segment,
    series_head,
)
from rezgen.store.histogram import Layout, quantiles
from rezgen.store.model import SeriesKey

QUANTILES = (0.5, 0.9, 0.99, 0.999, 0.9999)
_QS = np.array(QUANTILES, dtype=np.float64)
_NQ = len(QUANTILES)


@dataclass(frozen=True)
class Chunk:
    """One snapshot's samples, encoded: a piece of a WriteRequest."""

    timestamp_ns: int
    samples: int
    data: bytes


@dataclass(frozen=True)
class Downsample:
    """Buckets of `layout` summed into those of grouping power `power` (`starts`: the first fine bucket of each
    coarse one), and the coarse buckets' `le` values."""

    layout: Layout
    starts: np.ndarray
    les: list[str]

    @classmethod
    def of(cls, layout: Layout, power: int) -> Downsample:
        coarse = Layout(min(power, layout.grouping_power), layout.max_value_power)
        target = [coarse.index_of(low) for low in _lows(layout)]
        starts = np.flatnonzero(np.diff(np.asarray(target), prepend=-1)).astype(np.intp)
        lows = _lows(coarse)
        les = [str(low - 1) for low in lows[1:]] + [str(2**coarse.max_value_power - 1)]
        return cls(layout, starts, les)


def _lows(layout: Layout) -> list[int]:
    """Each bucket's lowest value, exact (the float edges of `Layout` round above 2^53)."""
    g = layout.grouping_power
    out = []
    for i in range(layout.buckets):
        q, r = i >> g, i & ((1 << g) - 1)
        out.append(i if q == 0 else (1 << (g + q - 1)) + r * (1 << (q - 1)))
    return out


@dataclass
class _Plan:
    keys: tuple[Any, Any, list[SeriesKey]]  # counter identities, gauge identities, histogram keys
    layouts: list[Layout]
    template: Template
    quantile_heads: list[bytes]  # (histogram, quantile) in row-major order
    groups: list[tuple[Downsample, np.ndarray]]  # per distinct layout: its histograms' positions


class Translator:
    def __init__(self, node: str, external: Mapping[str, str] | None = None, grouping_power: int = 2):
        if not 0 <= grouping_power <= 3:
            raise ValueError("grouping_power must be 0..3")
        self.node = node
        self.external = {label_name(k): v for k, v in (external or {}).items()}
        self.grouping_power = grouping_power
        self._plan: _Plan | None = None
        self._previous: dict[SeriesKey, np.ndarray] = {}  # full-resolution buckets of the last snapshot
        self._downsamples: dict[Layout, Downsample] = {}

    def _labels(self, key: SeriesKey, suffix: str = "", **extra: str) -> list[tuple[str, str]]:
        labels = {label_name(k): v for k, v in key.labels}
        labels.update(extra)
        labels["node"] = self.node
        for k, v in self.external.items():
            labels.setdefault(k, v)
        labels["__name__"] = metric_name(key.metric) + suffix
        return list(labels.items())

    def translate(self, snapshot: Snapshot) -> Chunk:
        counters, gauges = snapshot.scalars(0), snapshot.scalars(1)
        histograms = snapshot.histograms
        plan = self._plan
        hkeys = [h.key for h in histograms]
        layouts = [h.layout for h in histograms]
        tail = sample_tail(snapshot.timestamp_ns // 1_000_000)
        if plan is None or not _same(plan.keys[0], counters.identities) or \
                not _same(plan.keys[1], gauges.identities) or plan.keys[2] != hkeys or plan.layouts != layouts or \
                plan.template.tail_size != len(tail):
            plan = self._plan = self._make_plan(counters.identities, gauges.identities, hkeys, layouts, len(tail))
        parts = [counters.values.astype(np.float64), gauges.values.astype(np.float64)]
        for downsample, members in plan.groups:
            stack = np.stack([histograms[i].value for i in members.tolist()]).astype(np.float64)
            cumulative = np.cumsum(np.add.reduceat(stack, downsample.starts, axis=1), axis=1)
            total = cumulative[:, -1:]
            parts.append(np.hstack([cumulative, total, total]).ravel())
        data = plan.template.fill(np.concatenate(parts), tail)
        samples = plan.template.count
        quantile_data, quantile_samples = self._quantiles(snapshot, plan, tail)
        return Chunk(snapshot.timestamp_ns, samples + quantile_samples, data + quantile_data)

    def _quantiles(self, snapshot: Snapshot, plan: _Plan, tail: bytes) -> tuple[bytes, int]:
        histograms = snapshot.histograms
        restart = snapshot.discontinuity is not None
        previous = self._previous
        self._previous = current = {h.key: np.asarray(h.value) for h in histograms}
        if restart:
            return b"", 0
        heads: list[bytes] = []
        values: list[np.ndarray] = []
        for downsample, members in plan.groups:
            rows, where = [], []
            for i in members.tolist():
                before = previous.get(hkey := histograms[i].key)
                now = current[hkey]
                if before is None or len(before) != len(now) or bool((now < before).any()):
                    continue  # first sight, or counts went down (a restart the client did not flag)
                rows.append(now - before)
                where.append(i)
            if not rows:
                continue
            found = quantiles(np.stack(rows), _QS, downsample.layout.highs).T.ravel()  # (rows, quantiles)
            slots = (np.asarray(where)[:, None] * _NQ + np.arange(_NQ)).ravel()
            keep = ~np.isnan(found)  # an idle interval has no percentiles
            heads.extend(plan.quantile_heads[k] for k in slots[keep].tolist())
            values.append(found[keep])
        if not heads:
            return b"", 0
        return encode_series(heads, np.concatenate(values), tail), len(heads)

    def _make_plan(self, counter_ids: Any, gauge_ids: Any, hkeys: list[SeriesKey], layouts: list[Any],
                   tail_size: int) -> _Plan:
        """The series of a snapshot and their encoding. Series the last plan had keep their encoding (a view of its
        template): a host's tasks and cgroups come and go every few seconds, and then only theirs are encoded.
        (The decoder hands out the same key objects while an entry stays, and the old plan keeps them alive: `id`
        is safe.)"""
        old = self._plan if self._plan is not None and self._plan.template.tail_size == tail_size else None
        scalars: dict[int, bytes] = {}
        blocks: dict[tuple[int, Layout], tuple[Segment, list[bytes]]] = {}
        if old is not None:
            template, position = old.template, len(old.keys[0]) + len(old.keys[1])
            scalars = {id(found[1]): head
                       for found, head in zip((*old.keys[0], *old.keys[1]), template.heads(0, position))}
            for old_downsample, old_members in old.groups:
                size = len(old_downsample.les) + 2
                for i in old_members.tolist():
                    blocks[(id(old.keys[2][i]), old_downsample.layout)] = (
                        template.segment(position, position + size), old.quantile_heads[i * _NQ:(i + 1) * _NQ])
                    position += size
        segments = [segment([scalars.get(id(found[1])) or self._head(tail_size, found[1])
                             for found in (*counter_ids, *gauge_ids)], tail_size)]
        quantile_heads: list[bytes] = [b""] * (len(hkeys) * _NQ)
        groups: dict[Layout, list[int]] = {}
        for i, layout in enumerate(layouts):
            groups.setdefault(layout, []).append(i)
        planned = []
        for layout, members in groups.items():
            downsample = self._downsamples.get(layout)
            if downsample is None:
                downsample = self._downsamples[layout] = Downsample.of(layout, self.grouping_power)
            for i in members:
                key = hkeys[i]
                found = blocks.get((id(key), layout))
                if found is None:
                    found = (segment([*self._heads_with(tail_size, key, "_bucket", "le", [*downsample.les, "+Inf"]),
                                      self._head(tail_size, key, "_count")], tail_size),
                             self._heads_with(tail_size, key, "", "quantile", [str(q) for q in QUANTILES]))
                segments.append(found[0])
                quantile_heads[i * _NQ:(i + 1) * _NQ] = found[1]
            planned.append((downsample, np.asarray(members, dtype=np.intp)))
        return _Plan((counter_ids, gauge_ids, hkeys), layouts, Template(segments, tail_size), quantile_heads, planned)

    def _head(self, tail_size: int, key: SeriesKey, suffix: str = "", **extra: str) -> bytes:
        return series_head(encode_labels(self._labels(key, suffix, **extra)), tail_size)

    def _heads_with(self, tail_size: int, key: SeriesKey, suffix: str, name: str, values: list[str]) -> list[bytes]:
        """`_head` of `key` with each of `values` as label `name`: the other labels encoded once (a histogram
        has ~100 buckets)."""
        labels = sorted(self._labels(key, suffix))
        names = [label for label, _ in labels]
        if name in names:  # a clash (a label of the key, `node`, an external one): `_labels` settles it
            return [self._head(tail_size, key, suffix, **{name: value}) for value in values]
        where = bisect.bisect(names, name)
        before, after = encode_labels(labels[:where]), encode_labels(labels[where:])
        return [series_head(before + encode_labels([(name, value)]) + after, tail_size) for value in values]


def _same(planned: Any, identities: Any) -> bool:
    """The decoder hands out the very same identities list while the entries stay the same."""
    return planned is identities or planned == identities
