"""Dashboards as files: one TOML file per section, each plot a PromQL expression.

    title = "Overview"            # section title (navigation and page heading)
    route = "overview"            # page name: index.html for the first section, <route>.html otherwise
    order = 0                     # navigation order

    [[group]]
    name = "CPU"
    description = "optional text"

    [[group.plot]]
    id = "cpu-busy"               # unique within the section; the page's data-plot-id
    title = "Busy %"
    query = "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9"
    unit = "percentage"           # time (ns), seconds, bytes, bitrate, datarate, percentage, frequency, count, rate
    kind = "line"                 # line, multi, heatmap, percentiles (query = a histogram selector)
    width = "half"                # half or full
    range = [0, 1]                # optional fixed y range
    log = false                   # log y axis (percentile charts default to true)
    description = "optional text"
    top = 5                       # multi: keep the top k series, sum the rest into "Other"
    other = true                  # multi: false drops the rest instead (a sum of ratios such as IPC means nothing)
    percentiles = [0.5, 0.95]     # percentiles: the quantiles drawn (default p50, p90, p99, p99.9, p99.99)
    denominator = true            # a service's throughput KPI: the overview divides CPU and network by it

A service's section (`services/*.toml`) also names the `source` whose series it shows (`source = "vllm"`, with
`aliases = [...]` for other names of it); it appears only when the data has that source (see pages.services).

A section with `selector = "cgroups"` lets the page pick cgroups: its `individual-<x>` plots (one series per cgroup
`name`) show the picked ones, their top `top` by mean picked at first, and each `aggregate-<x>` plot whose query
is a sum shows the others (see pages.cgroups). With `selector = "gpus"`, data with several GPUs lets the page show
one GPU in the plots that are not per-GPU (see pages.gpus).

A `rezgen build --dashboards DIR` points at another directory of such files (and DIR/services/ for services).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser as pp
import tomli  # tomllib's compiled twin: parses the default dashboards in a third of the time

from rezgen.errors import RezgenError
from rezgen.promql.engine import parse
from rezgen.promql.values import PromQLError
from rezgen.resources import resource_dir

KINDS = ("line", "multi", "heatmap", "percentiles")
UNITS = ("time", "seconds", "bytes", "bitrate", "datarate", "percentage", "frequency", "count", "rate")
WIDTHS = ("half", "full")
SELECTORS = ("cgroups", "gpus")
DEFAULT_DIR = resource_dir("dashboards")


class DashboardError(RezgenError):
    """A dashboard file that cannot be used; the message is one line naming the file."""


@dataclass
class Plot:
    id: str
    title: str
    query: str
    unit: str = "count"
    kind: str = "line"
    width: str = "half"
    range: tuple[float, float] | None = None
    log: bool = False
    description: str | None = None
    top: int = 5
    other: bool = True
    percentiles: tuple[float, ...] | None = None
    denominator: bool = False

    @property
    def metrics(self) -> set[str]:
        """Metric names the query selects (a selector without a name, e.g. {__name__=~...}, adds nothing)."""
        names: set[str] = set()

        def visit(node: pp.Expr) -> bool:
            if isinstance(node, pp.VectorSelector) and node.name:
                names.add(node.name)
            return True

        pp.walk(parse(self.query), visit)
        return names

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "query": self.query, "unit": self.unit, "kind": self.kind,
                "width": self.width, "range": list(self.range) if self.range else None, "log": self.log,
                "description": self.description}


@dataclass
class Group:
    name: str
    plots: list[Plot]
    description: str | None = None
    hidden: bool = False  # evaluated and shipped, drawn only when the page asks (pages.gpus)


@dataclass
class Section:
    title: str
    route: str
    order: int
    groups: list[Group] = field(default_factory=list)
    path: Path | None = None
    source: str | None = None  # a service's section: the `source` label value of its series
    aliases: tuple[str, ...] = ()
    selector: str | None = None  # "cgroups" or "gpus": what the page picks (pages.cgroups, pages.gpus)
    picks: int = 0  # how many the page picks at first (pages.cgroups.selectable sets it)

    @property
    def plots(self) -> list[Plot]:
        return [plot for group in self.groups for plot in group.plots]


def load_dashboards(directory: Path | None = None) -> list[Section]:
    """Every `*.toml` section in the directory, in navigation order. Raises DashboardError."""
    directory = Path(directory) if directory is not None else DEFAULT_DIR
    if not directory.is_dir():
        raise DashboardError(f"{directory}: no such dashboards directory")
    paths = sorted(directory.glob("*.toml")) + sorted(directory.glob("services/*.toml"))
    sections = [load_section(path) for path in paths]
    if not sections:
        raise DashboardError(f"{directory}: no dashboard files (*.toml)")
    routes: dict[str, Path] = {}
    for section in sections:
        if section.route in routes:
            raise DashboardError(f"{section.path}: route {section.route!r} is also used by {routes[section.route]}")
        routes[section.route] = section.path or directory
    return sorted(sections, key=lambda s: (s.order, s.route))


def load_section(path: Path) -> Section:
    try:
        with open(path, "rb") as handle:
            data = tomli.load(handle)
    except tomli.TOMLDecodeError as exc:
        raise DashboardError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise DashboardError(f"{path}: cannot read: {exc.strerror or exc}") from None
    where = str(path)
    title = _text(data, "title", where)
    route = _text(data, "route", where)
    if not route.replace("-", "").replace("_", "").isalnum():
        raise DashboardError(f"{where}: route {route!r} must be letters, digits, '-' or '_'")
    section = Section(title=title, route=route, order=int(data.get("order", 100)), path=path)
    if "selector" in data:
        section.selector = _choice(data, "selector", SELECTORS, "cgroups", where)
    if "source" in data:
        section.source = _text(data, "source", where)
        aliases = data.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise DashboardError(f"{where}: aliases must be a list of source names")
        section.aliases = tuple(aliases)
    seen: set[str] = set()
    for g, group in enumerate(_tables(data, "group", where)):
        group_where = f"{where}: group {g + 1}"
        plots = []
        for p, raw in enumerate(_tables(group, "plot", group_where)):
            plot = _plot(raw, f"{group_where}, plot {p + 1}")
            if plot.id in seen:
                raise DashboardError(f"{where}: plot id {plot.id!r} is used twice")
            seen.add(plot.id)
            plots.append(plot)
        section.groups.append(Group(_text(group, "name", group_where), plots, group.get("description")))
    return section


def _plot(raw: dict[str, Any], where: str) -> Plot:
    plot = Plot(id=_text(raw, "id", where), title=_text(raw, "title", where), query=_text(raw, "query", where))
    where = f"{where} ({plot.id})"
    plot.kind = _choice(raw, "kind", KINDS, "line", where)
    plot.unit = _choice(raw, "unit", UNITS, "count", where)
    plot.width = _choice(raw, "width", WIDTHS, "full" if plot.kind == "percentiles" else "half", where)
    plot.log = bool(raw.get("log", plot.kind == "percentiles"))
    plot.description = raw.get("description")
    plot.top = int(raw.get("top", 5))
    plot.other = bool(raw.get("other", True))
    plot.denominator = bool(raw.get("denominator", False))
    if "percentiles" in raw:
        wanted = raw["percentiles"]
        if not (isinstance(wanted, list) and wanted
                and all(isinstance(q, (int, float)) and 0 < q <= 1 for q in wanted)):
            raise DashboardError(f"{where}: percentiles must be a list of quantiles in (0, 1]")
        plot.percentiles = tuple(float(q) for q in wanted)
    if "range" in raw:
        bounds = raw["range"]
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds)):
            raise DashboardError(f"{where}: range must be [min, max]")
        plot.range = (float(bounds[0]), float(bounds[1]))
    try:
        tree = parse(plot.query)
    except PromQLError as exc:
        raise DashboardError(f"{where}: {exc}") from None
    if plot.kind == "percentiles" and not isinstance(tree, pp.VectorSelector):
        raise DashboardError(f"{where}: a percentiles plot takes a histogram selector such as syscall_latency")
    return plot


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DashboardError(f"{where}: missing or empty {key!r}")
    return value


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...], default: str, where: str) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise DashboardError(f"{where}: {key} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _tables(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DashboardError(f"{where}: {key!r} must be an array of tables ([[{key}]])")
    return value
