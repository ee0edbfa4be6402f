"""`rezgen build`: render every dashboard section of a recording into a static site that opens from disk.

Pages are HTML from the Jinja2 templates; the data each page needs is computed ahead and written beside it as a
classic script (`data/<host>/<route>.js` calling `REZGEN.register`), which browsers load from file:// where
fetch() of JSON is refused. The site is built in a temporary directory next to the destination and swapped in
only when complete, so a failed build leaves the previous site untouched.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jinja2
import promql_parser as pp

from .dashboards import Plot, Section, load_dashboards
from .model import PROVENANCE_KEYS, Kind
from .pages import (SINGLE_HOST, absent_plots, data_script, render, section_context, section_page, section_payload,
                    site_context)
from .plots import TimeRange, plot_data
from .promql.engine import parse
from .promql.values import PromQLError
from .recording.budget import SeriesBudget
from .recording.reader import Recording, RecordingError
from .resources import resource_dir
from .timeparse import ceil_ms

METRIC_TOP = 10

Progress = Callable[[str], None]


@dataclass
class BuildReport:
    output: Path
    pages: list[str] = field(default_factory=list)
    plots: int = 0
    missing: int = 0


def hosts_of(recording: Recording) -> list[str]:
    """Hosts to choose between: the `node` values of a recording that combines several agents."""
    nodes = {s.key.label("node") for s in recording.store} - {None}
    return sorted(n for n in nodes if n) if len(nodes) > 1 else []


class SiteError(Exception):
    """A template problem; the message is one line for the user."""


PAGE_TEMPLATES = ("section.html", "metrics.html", "system.html")


def template_environment(templates: Path | None = None) -> jinja2.Environment:
    """User templates (if any) first, then the defaults, which stay reachable as `default:<name>`.

    The page templates are compiled here, so a broken one is reported before any data is computed.
    """
    if templates is not None and not Path(templates).is_dir():
        raise SiteError(f"{templates}: no such templates directory")
    default = jinja2.FileSystemLoader(str(resource_dir("templates")))
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(templates))] if templates else []
    loaders += [default, jinja2.PrefixLoader({"default": default}, delimiter=":")]
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True, undefined=jinja2.StrictUndefined)
    for name in PAGE_TEMPLATES:
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise SiteError(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise SiteError(f"template {name}: {exc.message or exc}") from None
    return env


def build_site(recording: Recording, output: Path, *, dashboards: Path | None = None,
               templates: Path | None = None, progress: Progress | None = None, served: bool = False
               ) -> BuildReport:
    """Render the site into `output`; `served` pages also load the live-reload script of `rezgen serve`."""
    sections = load_dashboards(dashboards)
    env = template_environment(templates)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        env.globals["served"] = served
        report = _render(recording, sections, env, work, progress or (lambda _: None))
        _swap(work, output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report.output = output
    return report


def _swap(work: Path, output: Path) -> None:
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        output.rename(old)
    work.rename(output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _render(recording: Recording, sections: list[Section], env: jinja2.Environment, work: Path,
            progress: Progress) -> BuildReport:
    report = BuildReport(work)
    start, end = recording.time_range
    span = TimeRange(ceil_ms(start), end, recording.interval_ns)
    hosts = hosts_of(recording) or [SINGLE_HOST]
    for host in hosts:
        # Host names come from the recording and become directory names: never let one leave data/.
        if host in (".", "..") or "/" in host or "\\" in host or "\0" in host:
            raise RecordingError(f"{recording.path}: node name {host!r} cannot be used as a host directory")
    events = _events(recording)
    budget = SeriesBudget(recording)
    built: list[tuple[Section, dict[str, Any]]] = []
    for number, section in enumerate(sections, 1):
        progress(f"[{number}/{len(sections)}] {section.title}: {len(section.plots)} plots")
        payloads: dict[str, dict[str, Any]] = {}
        for host in hosts:
            scope = (("node", host),) if host != SINGLE_HOST else ()
            payloads[host] = {}
            for plot in section.plots:
                budget.before(plot.query, scope)
                if (data := plot_data(recording.store, plot, span, scope)) is not None:
                    payloads[host][plot.id] = data
        with_data = {pid for payload in payloads.values() for pid in payload}
        if not with_data:
            continue
        for host, payload in payloads.items():
            _write_data(work / "data" / host / f"{section.route}.js", f"{host}/{section.route}",
                        section_payload(section, payload, span, events))
        context = section_context(section, with_data, absent_plots(section, recording.store) - with_data)
        report.plots += len(with_data)
        report.missing += len(context["missing"])
        built.append((section, context))
    site = site_context(recording.path.name, start, end,
                        [(s, sum(len(g["plots"]) for g in c["groups"])) for s, c in built], hosts)
    for index, (section, context) in enumerate(built):
        name = "index.html" if index == 0 else f"{section.route}.html"
        _write_page(env, "section.html", work / name, site=site, page=section_page(section), section=context,
                    events=events)
        report.pages.append(name)
    progress("metric browser")
    metrics = _metric_pages(recording, work, hosts, span, budget)
    _write_page(env, "metrics.html", work / "metrics.html", site=site, events=events, metrics=metrics,
                page={"route": "metrics", "title": "Metrics", "kind": "metrics", "data": "", "root": ""})
    _write_page(env, "system.html", work / "system.html", site=site, events=events,
                systeminfo=recording.footer.systeminfo,
                page={"route": "system", "title": "System", "kind": "system", "data": "", "root": ""})
    report.pages += ["metrics.html", "system.html"]
    if not built:
        # Nothing from the dashboards (e.g. a plain Prometheus capture): the metric browser is the front page.
        shutil.copyfile(work / "metrics.html", work / "index.html")
        report.pages.append("index.html")
    shutil.copytree(resource_dir("templates") / "static", work / "static")
    return report


def _events(recording: Recording) -> list[dict[str, Any]]:
    out = []
    for event in recording.footer.events:
        try:
            t_ms = int(event["timestamp"]) // 1_000_000
        except (TypeError, ValueError):
            continue
        out.append({"t": t_ms, "text": str(event.get("description", "")), "kind": str(event.get("kind", ""))})
    return out


def default_query(metric: str, kind: Kind) -> tuple[str, str]:
    """The metric browser's chart for a metric: (kind of plot, query).

    Counters are charted as `irate` (the change between consecutive samples, what Rezolus shows; `rate` over
    5 minutes would ramp up through the first minutes of a recording). A name that is not a PromQL identifier
    (e.g. `ringline/bytes/received`) is selected as `{__name__="..."}`."""
    selector = _selector(metric)
    if kind is Kind.HISTOGRAM:
        return "percentiles", selector
    if kind is Kind.COUNTER:
        return "multi", f"irate({selector}[5m])"
    return "multi", selector


def metric_plot(name: str, kind: Kind, unit: str | None, description: str | None) -> Plot:
    """The metric browser's chart of a metric (see default_query)."""
    plot_kind, query = default_query(name, kind)
    return Plot(id=f"metric-{metric_slug(name)}", title=name, query=query, unit=_unit_of(unit, kind),
                kind=plot_kind, width="full", log=plot_kind == "percentiles", top=METRIC_TOP, description=description)


def _selector(metric: str) -> str:
    try:
        tree = parse(metric)
    except PromQLError:
        tree = None
    if isinstance(tree, pp.VectorSelector) and tree.name == metric and tree.offset is None and tree.at is None:
        return metric
    quoted = metric.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{__name__="{quoted}"}}'


def _metric_pages(recording: Recording, work: Path, hosts: list[str], span: TimeRange,
                  budget: SeriesBudget | None = None) -> list[dict[str, Any]]:
    """One data file per metric and host with its default chart at the coarsest level only (the browser's chart
    does not zoom into detail; the dashboards do). Each metric's series are released once its chart is written,
    so a long recording's build does not end up holding every column it has."""
    budget = budget or SeriesBudget(recording)
    out = []
    for metric in _metric_summaries(recording):
        name, kind = metric["name"], metric["kind"]
        plot = metric_plot(name, kind, metric["unit"], metric["description"])
        query = plot.query
        for host in hosts:
            scope = (("node", host),) if host != SINGLE_HOST else ()
            budget.before(query, scope)
            data = plot_data(recording.store, plot, span, scope, coarse_only=True)
            _write_data(work / "data" / host / "metrics" / f"{metric_slug(name)}.js", f"{host}/metrics/{name}",
                        {"name": name, "query": query, "plot": data,
                         "range": {"start": span.start_ns // 1_000_000, "end": span.end_ns // 1_000_000,
                                   "step": span.step_ns // 1_000_000}})
        budget.release({name})
        del metric["kind"]
        out.append({**metric, "query": query, "data": f"data/{{host}}/metrics/{metric_slug(name)}.js"})
    return out


def _metric_summaries(recording: Recording) -> list[dict[str, Any]]:
    """The metric table's rows, as `rezgen inspect` lists them (name, type, unit, series, description, label
    counts, provenance), from the field metadata alone: `describe_recording` also reads every histogram column
    to check its list lengths, which costs a build a second pass over the largest columns; a malformed column
    is reported by the loader when its chart is computed."""
    metrics: dict[str, dict[str, Any]] = {}
    label_values: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for column in recording.columns:
        meta = column.meta
        entry = metrics.setdefault(meta.key.metric, {
            "name": meta.key.metric, "type": meta.kind.value, "kind": meta.kind, "unit": meta.unit, "series": 0,
            "description": meta.description or recording.footer.describe(meta.key.metric),
        })
        entry["series"] += 1
        for key, value in meta.key.labels:
            label_values[meta.key.metric][key].add(value)
    for name, entry in metrics.items():
        labels = label_values[name]
        entry["labels"] = {k: len(v) for k, v in sorted(labels.items()) if k not in PROVENANCE_KEYS}
        entry["provenance"] = {k: sorted(v) for k, v in sorted(labels.items()) if k in PROVENANCE_KEYS}
    return [metrics[name] for name in sorted(metrics)]


def _unit_of(unit: str | None, kind: Kind) -> str:
    """The chart unit for a metric's default query (a counter is charted as a per-second rate)."""
    if kind is Kind.COUNTER:
        return {"nanoseconds": "time", "bytes": "datarate"}.get(unit or "", "rate")
    return {"nanoseconds": "time", "bytes": "bytes", "percentage": "percentage", "Hz": "frequency",
            "bytes/second": "datarate"}.get(unit or "", "count")


def metric_slug(name: str) -> str:
    """A metric's data file name (metric names may hold characters a path should not)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _write_data(path: Path, key: str, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data_script(key, payload), encoding="utf-8")


def _write_page(env: jinja2.Environment, template: str, path: Path, **context: Any) -> None:
    try:
        html = render(env, template, **context)
    except jinja2.TemplateError as exc:
        raise SiteError(f"template {template}: {exc.message or exc}") from None
    path.write_text(html, encoding="utf-8")
