"""The metric catalog: every metric of a store as `rezgen inspect`, /api/metrics and the metric browser (static and
live) list it, and the browser's chart of each (a default query: the dashboards chart only the metrics they
name)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import promql_parser as pp

from rezgen.dashboards import Plot
from rezgen.promql.engine import parse
from rezgen.promql.values import PromQLError
from rezgen.store.model import PROVENANCE_KEYS, Kind

METRIC_TOP = 10


def default_query(metric: str, kind: Kind, source: str | None = None) -> tuple[str, str]:
    """The metric browser's chart for a metric: (kind of plot, query).

    Counters are charted as `irate` (the change between consecutive samples, what Rezolus shows; `rate` over
    5 minutes would ramp up through the first minutes of a recording). A name that is not a PromQL identifier
    (e.g. `ringline/bytes/received`) is selected as `{__name__="..."}`. With `source`, only that source's series."""
    selector = _selector(metric, source)
    if kind is Kind.HISTOGRAM:
        return "percentiles", selector
    if kind is Kind.COUNTER:
        return "multi", f"irate({selector}[5m])"
    return "multi", selector


def metric_plot(name: str, kind: Kind, unit: str | None, description: str | None, source: str | None = None
                ) -> Plot:
    """The metric browser's chart of a metric (see default_query)."""
    plot_kind, query = default_query(name, kind, source)
    chart_unit = _unit_of(unit, kind, name, description)
    if chart_unit == PERCENT:  # a 0–100 gauge; charts take a 0–1 fraction
        query, chart_unit = f"{query} / 100", "percentage"
    return Plot(id=f"metric-{metric_slug(name)}", title=name, query=query, unit=chart_unit,
                kind=plot_kind, width="full", log=plot_kind == "percentiles", top=METRIC_TOP, description=description)


def _selector(metric: str, source: str | None = None) -> str:
    try:
        tree = parse(metric)
    except PromQLError:
        tree = None
    plain = isinstance(tree, pp.VectorSelector) and tree.name == metric and tree.offset is None and tree.at is None
    matchers = [] if plain else [f'__name__="{quoted_label(metric)}"']
    if source is not None:
        matchers.append(f'source="{quoted_label(source)}"')
    return (metric if plain else "") + ("{" + ",".join(matchers) + "}" if matchers else "")


def quoted_label(value: str) -> str:
    """A label value as the inside of a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metric_catalog(store: Iterable[Any], describe: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """Every metric, by name: type, unit, series count, label names with their values, and description (the
    series' own, else `describe`'s: a recording's footer, an agent's help text). From the series' metadata alone:
    nothing is decoded, so a build or a live server lists a metric without reading its data."""
    catalog: dict[str, dict[str, Any]] = {}
    label_values: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for series in store:
        name = series.key.metric
        entry = catalog.setdefault(name, {
            "name": name, "type": series.kind.value, "unit": series.meta.unit, "series": 0, "labels": {},
            "description": series.meta.description or describe(name),
        })
        entry["series"] += 1
        for key, value in series.key.labels:
            label_values[name][key].add(value)
    for name, entry in catalog.items():
        entry["labels"] = {k: sorted(v) for k, v in sorted(label_values[name].items())}
    return [catalog[name] for name in sorted(catalog)]


def metric_summary(entry: dict[str, Any]) -> dict[str, Any]:
    """A catalog entry as `rezgen inspect` and the metric table show it: how many values each label has, and
    apart, where the series came from (provenance labels such as `node`, with their values)."""
    labels = entry["labels"]
    return {"name": entry["name"], "type": entry["type"], "unit": entry["unit"], "series": entry["series"],
            "description": entry["description"],
            "labels": {k: len(v) for k, v in labels.items() if k not in PROVENANCE_KEYS},
            "provenance": {k: v for k, v in labels.items() if k in PROVENANCE_KEYS}}


def metric_rows(catalog: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metric browser's table: each metric's summary and its chart's data script (per host)."""
    return [{**metric_summary(entry), "data": f"data/{{host}}/metrics/{metric_slug(entry['name'])}.js"}
            for entry in catalog]


def catalog_plot(entry: dict[str, Any]) -> Plot:
    """The metric browser's chart of a catalog entry."""
    return metric_plot(entry["name"], Kind(entry["type"]), entry["unit"], entry["description"])


PERCENT = "percent"  # _unit_of's answer for a 0–100 value, which metric_plot scales to a fraction
SAMPLE_SUFFIXES = ("_total", "_sum")  # a Prometheus counter's sample suffixes, after the unit (_bytes_total)
# What a metric's description says of its unit, for names without a unit suffix ("Resident memory size in bytes.").
DESCRIBED = ((re.compile(r"\bin nanoseconds\b", re.IGNORECASE), "nanoseconds"),
             (re.compile(r"\bin seconds\b", re.IGNORECASE), "seconds"),
             (re.compile(r"\bin bytes\b", re.IGNORECASE), "bytes"),
             (re.compile(r"\b1 means 100 ?(%|percent)", re.IGNORECASE), "ratio"))


def _unit_of(unit: str | None, kind: Kind, name: str = "", description: str | None = None) -> str:
    """The chart unit for a metric's default query (a counter is charted as a per-second rate).

    Rezolus gives the unit in the column's metadata. Other sources (Prometheus endpoints) do not: their unit is
    inferred from the naming conventions (`_seconds`, `_bytes`, `_ratio`, `_percent`; `_total` marks a counter)
    or else from the description. The recorder stores a `_seconds` histogram in nanoseconds (format doc §2.7),
    other values as they were scraped (the rate of a `_seconds_total` counter is charted as time per second, as
    that of a nanoseconds counter is). Anything else is a count, formatted with k/M/G."""
    if not unit:
        unit = _inferred_unit(name, description)
    if kind is Kind.HISTOGRAM:
        return {"nanoseconds": "time", "seconds": "time", "bytes": "bytes"}.get(unit or "", "count")
    if kind is Kind.COUNTER:
        return {"nanoseconds": "time", "bytes": "datarate", "seconds": "seconds"}.get(unit or "", "rate")
    return {"nanoseconds": "time", "seconds": "seconds", "bytes": "bytes", "percentage": "percentage",
            "ratio": "percentage", "percent": PERCENT, "Hz": "frequency", "bytes/second": "datarate"}.get(unit or "",
                                                                                                      "count")


def _inferred_unit(name: str, description: str | None) -> str | None:
    base = name
    for suffix in SAMPLE_SUFFIXES:
        base = base.removesuffix(suffix)
    for suffix, unit in (("_seconds", "seconds"), ("_bytes", "bytes"), ("_ratio", "ratio"), ("_percent", "percent")):
        if base.endswith(suffix):
            return unit
    for pattern, unit in DESCRIBED:
        if description and pattern.search(description):
            return unit
    return None


def metric_slug(name: str) -> str:
    """A metric's data file name (metric names may hold characters a path should not)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
