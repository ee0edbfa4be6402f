"""Series identity and metric kinds, shared by every layer.

A series is identified by its metric name plus its label set (all strings). Labels are kept as a sorted tuple of
(key, value) pairs so they hash, compare and serialise the same way everywhere.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]

# Keys of a column's field metadata that describe the series rather than identify it.
PROPERTY_KEYS = frozenset({"metric", "metric_type", "unit", "grouping_power", "max_value_power", "description"})
# Labels stamped by recorders and combiners: they say where a series came from.
PROVENANCE_KEYS = frozenset({"source", "endpoint", "node", "instance", "sampler"})


class Kind(str, enum.Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


def make_labels(pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> Labels:
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return tuple(sorted((str(k), str(v)) for k, v in items))


@dataclass(frozen=True)
class SeriesKey:
    metric: str
    labels: Labels = ()

    def label(self, name: str) -> str | None:
        for key, value in self.labels:
            if key == name:
                return value
        return None

    def prometheus_labels(self) -> dict[str, str]:
        """Labels as Prometheus shows them: the metric name under `__name__`."""
        return {"__name__": self.metric, **dict(self.labels)}

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.metric}{{{inner}}}"


@dataclass
class SeriesMeta:
    """What a source knows about one series besides its samples."""

    key: SeriesKey
    kind: Kind
    unit: str | None = None
    description: str | None = None
    grouping_power: int | None = None
    max_value_power: int | None = None
