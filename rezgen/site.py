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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jinja2

from .commands.inspect import describe_recording
from .dashboards import Plot, Section, load_dashboards
from .model import Kind
from .pages import SINGLE_HOST, data_script, render, section_context, section_page, section_payload, site_context
from .plots import TimeRange, plot_data
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


def template_environment(templates: Path | None = None) -> jinja2.Environment:
    """User templates (if any) first, then the defaults, which stay reachable as `default:<name>`."""
    default = jinja2.FileSystemLoader(str(resource_dir("templates")))
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(templates))] if templates else []
    loaders += [default, jinja2.PrefixLoader({"default": default}, delimiter=":")]
    return jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                              undefined=jinja2.StrictUndefined)


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
    built: list[tuple[Section, dict[str, Any]]] = []
    for number, section in enumerate(sections, 1):
        progress(f"[{number}/{len(sections)}] {section.title}: {len(section.plots)} plots")
        payloads: dict[str, dict[str, Any]] = {}
        for host in hosts:
            scope = (("node", host),) if host != SINGLE_HOST else ()
            payloads[host] = {plot.id: data for plot in section.plots
                              if (data := plot_data(recording.store, plot, span, scope)) is not None}
        with_data = {pid for payload in payloads.values() for pid in payload}
        if not with_data:
            continue
        for host, payload in payloads.items():
            _write_data(work / "data" / host / f"{section.route}.js", f"{host}/{section.route}",
                        section_payload(section, payload, span, events))
        context = section_context(section, with_data)
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
    metrics = _metric_pages(recording, work, hosts, span)
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
    """The metric browser's chart for a metric: (kind of plot, query)."""
    if kind is Kind.HISTOGRAM:
        return "percentiles", metric
    if kind is Kind.COUNTER:
        return "multi", f"rate({metric}[5m])"
    return "multi", metric


def _metric_pages(recording: Recording, work: Path, hosts: list[str], span: TimeRange) -> list[dict[str, Any]]:
    info = describe_recording(recording)
    kinds = {s.key.metric: s.kind for s in recording.store}
    out = []
    for metric in info["metrics"]:
        name = metric["name"]
        plot_kind, query = default_query(name, kinds[name])
        plot = Plot(id=f"metric-{_slug(name)}", title=name, query=query, unit=_unit_of(metric["unit"], kinds[name]),
                    kind=plot_kind, width="full", log=plot_kind == "percentiles", top=METRIC_TOP,
                    description=metric["description"])
        for host in hosts:
            scope = (("node", host),) if host != SINGLE_HOST else ()
            data = plot_data(recording.store, plot, span, scope)
            _write_data(work / "data" / host / "metrics" / f"{_slug(name)}.js", f"{host}/metrics/{name}",
                        {"name": name, "query": query, "plot": data})
        out.append({**metric, "query": query, "data": f"data/{{host}}/metrics/{_slug(name)}.js"})
    return out


def _unit_of(unit: str | None, kind: Kind) -> str:
    """The chart unit for a metric's default query (a counter is charted as a per-second rate)."""
    if kind is Kind.COUNTER:
        return {"nanoseconds": "time", "bytes": "datarate"}.get(unit or "", "rate")
    return {"nanoseconds": "time", "bytes": "bytes", "percentage": "percentage", "Hz": "frequency",
            "bytes/second": "datarate"}.get(unit or "", "count")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _write_data(path: Path, key: str, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data_script(key, payload), encoding="utf-8")


def _write_page(env: jinja2.Environment, template: str, path: Path, **context: Any) -> None:
    path.write_text(render(env, template, **context), encoding="utf-8")
