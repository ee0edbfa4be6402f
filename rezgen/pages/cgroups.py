"""The cgroup selector: a section with `selector = "cgroups"` ships every cgroup's series, and the page picks.

Its `individual-<x>` plots (one series per cgroup `name`) are evaluated for every cgroup, not only the top k; the
page shows the picked cgroups there (the `top` busiest by the rank plot's mean at first, as Rezolus preselects the
top 5 by CPU) and, in each `aggregate-<x>` plot whose query is a sum (scaled by a number at most), the aggregate
minus the picked ones: the cgroups not picked (with series without a name), as Rezolus's `name!~"<picked>"`. An
aggregate that is a ratio of sums (IPC) is the ratio of the sums minus the picked ones' (see `_ratio_parts`).

A static site holds every cgroup's series in the section's data file, unless that makes the file more than
`SPLIT_FACTOR` times the size it has with the preselected cgroups alone: then each cgroup's series go to a data file
of its own (named by a digest of the name: names are untrusted), loaded when the cgroup is picked.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import orjson
import promql_parser as pp

from rezgen.dashboards import Group, Plot, Section
from rezgen.plotdata.topk import EVERY_SERIES
from rezgen.promql.cache import parse
from rezgen.promql.values import PromQLError

CGROUPS = "cgroups"
INDIVIDUAL, AGGREGATE = "individual-", "aggregate-"
RANK = "individual-total-cores"  # cgroups are ranked by CPU, as Rezolus ranks them
SPLIT_FACTOR = 2
PART = "@"  # the ratio parts' ids: <plot id>@num, <plot id>@den
PICKS = 5  # cgroups picked at first without a rank plot


def selectable(section: Section) -> Section:
    """The section as pages evaluate it: with a cgroup selector, its individual plots keep every cgroup."""
    if section.selector != CGROUPS:
        return section
    if section.picks:
        return section  # done already
    groups = [dataclasses.replace(g, plots=[dataclasses.replace(p, top=EVERY_SERIES, other=False)
                                            if p.id.startswith(INDIVIDUAL) else p for p in g.plots])
              for g in section.groups]
    parts = _ratio_parts(section)
    if parts:
        groups.append(Group("cgroup ratio parts", parts, hidden=True))
    # As many are picked at first as the dashboard file's `top` of the rank plot.
    picks = next((p.top for p in section.plots if p.id == RANK), PICKS)
    return dataclasses.replace(section, groups=groups, picks=picks)


def _ratio_parts(section: Section) -> list[Plot]:
    """For each aggregate plot that is a ratio of sums (IPC: instructions / cycles) paired with an individual plot
    that is the same ratio by name, the four sums it is made of: the others' ratio is then (whole numerator minus
    the picked ones') / (whole denominator minus the picked ones'). Ids `<plot id>@num`, `<plot id>@den`."""
    plots = {p.id: p for p in section.plots}
    parts = []
    for aggregate in [p for p in section.plots if p.id.startswith(AGGREGATE)]:
        individual = plots.get(INDIVIDUAL + aggregate.id.removeprefix(AGGREGATE))
        whole, each = _ratio(aggregate.query), _ratio(individual.query) if individual else None
        if individual is None or whole is None or each is None or not all(_is_sum(q) for q in whole):
            continue
        for side, (total, by_name) in zip(("num", "den"), zip(whole, each)):
            parts.append(dataclasses.replace(aggregate, id=f"{aggregate.id}{PART}{side}", query=total, kind="line"))
            parts.append(dataclasses.replace(individual, id=f"{individual.id}{PART}{side}", query=by_name,
                                             kind="multi", top=EVERY_SERIES, other=False))
    return parts


def _ratio(query: str) -> tuple[str, str] | None:
    """(numerator, denominator) of a query that is one division."""
    try:
        tree = parse(query)
    except PromQLError:
        return None
    if isinstance(tree, pp.BinaryExpr) and str(tree.op) == "/" and not isinstance(tree.rhs, pp.NumberLiteral):
        return tree.lhs.prettify(), tree.rhs.prettify()
    return None


def selector_payload(section: Section, plots: dict[str, dict[str, Any]], preselect: int) -> dict[str, Any] | None:
    """The payload's `cgroups`: every cgroup name (busiest first), those picked at first, and which aggregate plot
    follows the pick through which individual plot. None when the section has no selector or no cgroup."""
    if section.selector != CGROUPS:
        return None
    ranked = _ranked(plots.get(RANK) or next((p for pid, p in plots.items() if pid.startswith(INDIVIDUAL)), None))
    names = ranked + sorted({n for pid, p in plots.items() if pid.startswith(INDIVIDUAL) and "names" in p
                             for n in p["names"]} - set(ranked))
    if not names:
        return None
    queries = {p.id: p.query for p in section.plots}
    pairs = {aggregate: individual for aggregate in plots if aggregate.startswith(AGGREGATE)
             and (individual := INDIVIDUAL + aggregate.removeprefix(AGGREGATE)) in plots
             and _is_sum(queries.get(aggregate, ""))}
    ratios = {}
    for aggregate in [pid for pid in plots if pid.startswith(AGGREGATE) and PART not in pid]:
        individual = INDIVIDUAL + aggregate.removeprefix(AGGREGATE)
        sides = {side: [f"{aggregate}{PART}{side}", f"{individual}{PART}{side}"] for side in ("num", "den")}
        if all(pid in plots for ids in sides.values() for pid in ids):
            ratios[aggregate] = sides
    return {"names": names, "picked": names[:preselect], "pairs": pairs, "ratios": ratios}


def _ranked(plot: dict[str, Any] | None) -> list[str]:
    """Series names of a plot by the mean of their finest level, highest first."""
    if not plot or "levels" not in plot:
        return []
    values = plot["levels"][-1]["values"]

    def mean(row: list[float | None]) -> float:
        seen = [v for v in row if v is not None]
        return sum(seen) / len(seen) if seen else float("-inf")

    order = sorted(range(len(plot["names"])), key=lambda i: -mean(values[i]))
    return [plot["names"][i] for i in order]


def _is_sum(query: str) -> bool:
    """A `sum(...)` without grouping, possibly multiplied or divided by a number: the sum of the cgroups not picked
    is then the whole minus the picked ones."""
    try:
        tree = parse(query)
    except PromQLError:
        return False
    while isinstance(tree, pp.BinaryExpr) and isinstance(tree.rhs, pp.NumberLiteral) and str(tree.op) in "*/":
        tree = tree.lhs
    while isinstance(tree, pp.ParenExpr):
        tree = tree.expr
    return isinstance(tree, pp.AggregateExpr) and str(tree.op) == "sum" and not tree.modifier


def cgroup_file(name: str) -> str:
    """The data file of one cgroup's series (a digest: cgroup names are untrusted)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def split(payload: dict[str, Any], size: int, preselected_size: int) -> dict[str, dict[str, Any]] | None:
    """When every cgroup's series make the section's data more than SPLIT_FACTOR times its size with the picked
    ones alone: take the others out of `payload` (in place) and return them per cgroup, {file: {name, plots: {plot
    id: rows per level}}}; else None (the payload keeps them all)."""
    selector = payload.get("cgroups")
    if not selector or size <= SPLIT_FACTOR * preselected_size:
        return None
    picked = set(selector["picked"])
    files: dict[str, dict[str, Any]] = {}
    for group in payload["groups"]:
        for plot in group["plots"]:
            if not plot["id"].startswith(INDIVIDUAL) or "levels" not in plot:
                continue
            keep = [i for i, name in enumerate(plot["names"]) if name in picked]
            for i, name in enumerate(plot["names"]):
                if name not in picked:
                    entry = files.setdefault(cgroup_file(name), {"name": name, "plots": {}})
                    entry["plots"][plot["id"]] = [level["values"][i] for level in plot["levels"]]
            plot["names"] = [plot["names"][i] for i in keep]
            for level in plot["levels"]:
                level["values"] = [level["values"][i] for i in keep]
    selector["files"] = {entry["name"]: key for key, entry in files.items()}
    return files


def with_cgroup_selector(section: Section, payload: dict[str, Any], files: bool = True) -> dict[str, dict[str, Any]]:
    """Adds the selector (`cgroups`) to a section payload (in place); with `files` (a static site), splits the
    cgroups not picked at first into files of their own when that pays (see `split`): {file: its payload}."""
    plots = {p["id"]: p for g in payload["groups"] for p in g["plots"]}
    selector = selector_payload(section, plots, section.picks or PICKS)
    if selector is None:
        return {}
    payload["cgroups"] = selector
    if not files:
        return {}
    return split(payload, _size(payload), _size(preselected_only(payload))) or {}


def _size(payload: dict[str, Any]) -> int:
    return len(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY))


def preselected_only(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of the payload whose individual plots hold the picked cgroups only (to weigh the split)."""
    picked = set(payload["cgroups"]["picked"]) if payload.get("cgroups") else set()
    groups = []
    for group in payload["groups"]:
        plots = []
        for plot in group["plots"]:
            if plot["id"].startswith(INDIVIDUAL) and "levels" in plot:
                keep = [i for i, name in enumerate(plot["names"]) if name in picked]
                plot = {**plot, "names": [plot["names"][i] for i in keep],
                        "levels": [{**level, "values": [level["values"][i] for i in keep]} for level in plot["levels"]]}
            plots.append(plot)
        groups.append({**group, "plots": plots})
    return {**payload, "groups": groups}
