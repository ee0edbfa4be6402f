"""Service sections: the sections a store's data calls for, given the dashboards.

Recordings and agents carry a service's own metrics beside the host's, told apart by their `source` label (`vllm`,
`llm-perf`, `cachecannon`, …). A dashboards section that names a `source` (services/*.toml) is shown only when some
series has that source (or one of its aliases); a source no section knows gets a generic section charting each of
its metrics by type; and when a shown service marks a throughput KPI (`denominator`), the overview gets a
"Normalized by Throughput" group: host CPU time and network traffic per unit of that KPI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable

from rezgen.dashboards import Group, Plot, Section
from rezgen.pages.catalog import metric_plot, metric_slug, quoted_label
from rezgen.pages.cgroups import selectable
from rezgen.pages.gpus import with_gpu_twins
from rezgen.promql.cache import parse
from rezgen.promql.selectors import select, vector_selectors
from rezgen.promql.values import PromQLError
from rezgen.store.model import Kind
from rezgen.store.store import Series, Store

# A source with one of these is the Rezolus agent itself, whatever its name (older recorders name it after its
# endpoint, e.g. localhost-4241): format doc §6.
HOST_METRICS = frozenset({"rezolus_cpu_usage", "rezolus_memory_usage_resident_set_size", "rezolus_rusage",
                          "cpu_usage"})
OVERVIEW = "overview"
NORMALIZED = "Normalized by Throughput"
KIND_GROUPS = ((Kind.COUNTER, "Counters", "Per-second rates."), (Kind.GAUGE, "Gauges", None),
               (Kind.HISTOGRAM, "Histograms", "Percentiles of the distribution over each interval."))


def data_sources(store: Store) -> dict[str, dict[str, Series]]:
    """Each `source` label value of the store's series: its metrics, each with one of its series (for the type,
    unit and description). From the series' metadata alone: nothing is decoded."""
    found: dict[str, dict[str, Series]] = {}
    for series in store:
        source = series.key.label("source")
        if source:
            found.setdefault(source, {}).setdefault(series.key.metric, series)
    return found


def sections_for(sections: list[Section], store: Store, describe: Callable[[str], str | None]) -> list[Section]:
    """The sections to show for the store's data, in navigation order: the host's, the services it has, a generic
    section per unknown source, and the overview with its normalized group when a service has a throughput KPI;
    each as its page evaluates it (with its cgroup or GPU picker's plots: pages.cgroups, pages.gpus)."""
    found = data_sources(store)
    shown: list[Section] = []
    services: list[Section] = []
    for section in sections:
        if section.source is None:
            shown.append(section)
            continue
        present = [name for name in (section.source, *section.aliases) if name in found]
        if present:
            service = section if present[0] == section.source else _aliased(section, present[0])
            shown.append(service)
            services.append(service)
    known = {name for s in sections if s.source for name in (s.source, *s.aliases)}
    routes = {s.route for s in sections}
    for name in sorted(found):
        metrics = found[name]
        if name not in known and name != "rezolus" and not metrics.keys() & HOST_METRICS:
            generic = generic_section(name, metrics, describe, routes)
            routes.add(generic.route)
            shown.append(generic)
    kpis = [(service, plot) for service in services for plot in service.plots if plot.denominator]
    if kpis:
        shown = [normalized(s, kpis) if s.route == OVERVIEW and s.source is None else s for s in shown]
    return sorted((with_gpu_twins(selectable(s), store) for s in shown), key=lambda s: (s.order, s.route))


def absent_kpis(section: Section, store: Store) -> set[str]:
    """A service section's plots that cannot have data: a selector of the query selects no series (the metric, or
    the labels it asks for, are not in the data). Listed as unavailable rather than drawn empty."""
    absent = set()
    for plot in section.plots:
        try:
            selectors = list(vector_selectors(parse(plot.query)))
        except PromQLError:
            continue  # the chart reports it
        if not selectors or any(not select(store, selector) for selector in selectors):
            absent.add(plot.id)
    return absent


def _aliased(section: Section, alias: str) -> Section:
    """A service's section for data that names the service by an alias: its queries select that source."""
    ours, theirs = f'source="{quoted_label(section.source or "")}"', f'source="{quoted_label(alias)}"'
    groups = [dataclasses.replace(g, plots=[dataclasses.replace(p, query=p.query.replace(ours, theirs))
                                            for p in g.plots]) for g in section.groups]
    return dataclasses.replace(section, groups=groups, source=alias, aliases=())


def source_route(name: str, taken: set[str]) -> str:
    """A route (page and data file name) for a source name, which comes from the data: letters, digits, '-' and
    '_' only, and a digest of the name when that changed it or the route is taken."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:48]
    route = f"source-{slug}"
    if slug != name or route in taken:
        route += "-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return route


def generic_section(name: str, metrics: dict[str, Series], describe: Callable[[str], str | None],
                    taken: set[str]) -> Section:
    """A section for a source no dashboard knows: every one of its metrics, counters as rates, gauges as lines and
    histograms as percentiles (the metric browser's charts, of this source's series only)."""
    groups = []
    ids: set[str] = set()
    for kind, title, description in KIND_GROUPS:
        plots = []
        for metric in sorted(m for m, series in metrics.items() if series.kind is kind):
            series = metrics[metric]
            plot = metric_plot(metric, kind, series.meta.unit, series.meta.description or describe(metric), name)
            plot_id = f"metric-{metric_slug(metric)}"
            while plot_id in ids:  # two names with the same slug
                plot_id += "_"
            ids.add(plot_id)
            plots.append(dataclasses.replace(plot, id=plot_id,
                                             width="full" if kind is Kind.HISTOGRAM else "half"))
        if plots:
            groups.append(Group(title, plots, description))
    return Section(title=name, route=source_route(name, taken), order=0, groups=groups, source=name)


def normalized(overview: Section, kpis: list[tuple[Section, Plot]]) -> Section:
    """The overview with a group dividing host CPU time and network traffic by each service's throughput KPI."""
    plots = []
    for service, kpi in kpis:
        per = f"{kpi.title} ({service.title})"
        suffix = f"{service.route}-{kpi.id}"
        plots += [
            Plot(id=f"normalized-cpu-busy-{suffix}", title=f"CPU Time / {per}", unit="time",
                 query=f"sum(irate(cpu_usage[5m])) / ({kpi.query})",
                 description=f"CPU time used per unit of {kpi.title.lower()}."),
            Plot(id=f"normalized-network-tx-{suffix}", title=f"Network TX / {per}", unit="count",
                 query=f'sum(irate(network_bytes{{direction="transmit"}}[5m])) * 8 / ({kpi.query})',
                 description=f"Bits transmitted per unit of {kpi.title.lower()}."),
            Plot(id=f"normalized-network-rx-{suffix}", title=f"Network RX / {per}", unit="count",
                 query=f'sum(irate(network_bytes{{direction="receive"}}[5m])) * 8 / ({kpi.query})',
                 description=f"Bits received per unit of {kpi.title.lower()}."),
        ]
    group = Group(NORMALIZED, plots, "Host CPU time and network traffic per unit of each service's throughput.")
    return dataclasses.replace(overview, groups=[*overview.groups, group])
