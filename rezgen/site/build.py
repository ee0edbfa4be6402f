"""`rezgen build`: render every dashboard section of a recording into a static site that opens from disk.

Pages are HTML from the Jinja2 templates; the data each page needs is computed ahead and written beside it as a
classic script (`data/<host>/<route>.js` calling `REZGEN.register`), which browsers load from file:// where
fetch() of JSON is refused. The site is built in a temporary directory next to the destination and swapped in
only when complete, so a failed build leaves the previous site untouched.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import jinja2

from rezgen.backend.dataset import BackendData
from rezgen.dashboards import Plot, Section, load_dashboards
from rezgen.errors import RezgenError
from rezgen.gcpause import paused_gc
from rezgen.pages.catalog import catalog_plot, metric_catalog, metric_rows, metric_slug
from rezgen.pages.cgroups import with_cgroup_selector
from rezgen.pages.gpus import with_gpu_selector
from rezgen.pages.model import (
    SINGLE_HOST,
    absent_plots,
    data_script,
    host_scope,
    metric_payload,
    other_page,
    section_context,
    section_page,
    section_payload,
    site_context,
)
from rezgen.pages.services import sections_for
from rezgen.pages.spectra import spectrum_files
from rezgen.pages.templating import template_environment, write_page
from rezgen.plotdata.cpus import CPU_QUERY, cpu_count
from rezgen.plotdata.evaluation import selector_names
from rezgen.plotdata.plots import TimeRange, plot_data
from rezgen.promql.cache import EvalCache
from rezgen.promql.values import PromQLError
from rezgen.recording.footer import Footer
from rezgen.recording.reader import Recording, RecordingError
from rezgen.resources import resource_dir
from rezgen.site.budget import BuildCache, SeriesBudget, Unbudgeted
from rezgen.site.fleet import fleet_data, write_fleet
from rezgen.store.store import Store
from rezgen.timeparse import ceil_ms

Progress = Callable[[str], None]
Data = Recording | BackendData  # a recording, or a TSDB's data over a time range (`build --prometheus`)


class BuildError(RezgenError):
    """A build refused (`strict` with plots that failed); the message is one line for the user."""


@dataclass
class BuildReport:
    output: Path
    pages: list[str] = field(default_factory=list)
    plots: int = 0
    missing: int = 0
    failed: list[str] = field(default_factory=list)  # one line per plot whose query failed


def hosts_of(recording: Data) -> list[str]:
    """Hosts to choose between: the `node` values of a recording that combines several agents."""
    if isinstance(recording, BackendData):
        return recording.store.hosts()
    nodes = {s.key.label("node") for s in recording.store} - {None}
    return sorted(n for n in nodes if n) if len(nodes) > 1 else []


def systems_by_host(footer: Footer, hosts: list[str]) -> list[dict[str, Any]]:
    """The System page's view per host of a multi-node recording: {host, info, note}.

    A combined file keeps each rezolus node's systeminfo in `per_source_metadata` (format doc §1.8) and one copy at
    the top level (the first rezolus node's, §1.7). A host is never shown another node's machine: without a copy
    of its own it gets a note saying which node the recording describes."""
    own: dict[str, dict[str, Any]] = {}
    for info in footer.per_source.values():
        for key, member in info.members.items():
            node = member["node"] if isinstance(member.get("node"), str) else key
            if isinstance(member.get("systeminfo"), dict):
                own.setdefault(node, member["systeminfo"])
    top = footer.systeminfo
    rezolus = footer.per_source.get("rezolus")
    owner = next((node for node, info in own.items() if info == top), None) if top else None
    if top and owner is None:
        owner = top.get("hostname") if top.get("hostname") in hosts else \
            next(iter(rezolus.members), None) if rezolus else None
    views = []
    for host in hosts:
        if host in own:
            views.append({"host": host, "info": own[host], "note": None})
        elif top is not None and owner == host:
            views.append({"host": host, "info": top,
                          "note": f"The recording carries one system description, of node {host}."})
        elif top is not None and owner is None:
            views.append({"host": host, "info": top,
                          "note": "The recording carries one system description and does not say which node it "
                                  "describes."})
        else:
            views.append({"host": host, "info": None,
                          "note": f"No system information was recorded for node {host}"
                                  + (f"; the recording describes node {owner} only." if owner and top else ".")})
    return views


def build_site(recording: Data, output: Path, *, dashboards: Path | None = None,
               templates: Path | None = None, progress: Progress | None = None, served: bool = False,
               warn: Progress | None = None, strict: bool = False) -> BuildReport:
    """Render the site into `output`; `served` pages also load the live-reload script of `rezgen serve`.

    A plot whose query fails on this recording shows the error in its card and is reported through `warn`, one
    line each; with `strict` the build fails instead (BuildError) and `output` is left as it was."""
    # The payloads are millions of small lists that live until written; the cyclic collector would walk them
    # over and over (a tenth of a build), and a build makes hardly any cycles.
    with paused_gc():
        sections = sections_for(load_dashboards(dashboards), recording.store, recording.footer.describe) \
            if isinstance(recording, Recording) else load_dashboards(dashboards)
        budget = SeriesBudget(recording) if isinstance(recording, Recording) else Unbudgeted()
        env = template_environment(templates)
        env.globals["served"] = served
        return _build(recording, sections, budget, env, Path(output), progress or (lambda _: None),
                      warn or (lambda _: None), strict)


def _build(recording: Data, sections: list[Section], budget: SeriesBudget, env: jinja2.Environment,
           output: Path, progress: Progress, warn: Progress, strict: bool) -> BuildReport:
    return published(output, lambda work: _render(recording, sections, budget, env, work, progress), strict, warn)


class Rendering(Protocol):
    """What a rendered site reports: where it went, and a line per plot whose query failed."""

    output: Path
    failed: list[str]


Rendered = TypeVar("Rendered", bound=Rendering)


def published(output: Path, render: Callable[[Path], Rendered], strict: bool, warn: Progress) -> Rendered:
    """Render a site into a temporary directory beside `output` and swap it in only when complete: a failure, an
    interruption or (with `strict`) a failed plot leaves `output` as it was."""
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    work.chmod(0o755)  # mkdtemp's is 0700: the site is meant to be published (a web server reads it as another user)
    try:
        report = render(work)
        if strict and report.failed:  # one line, as any failed build: the first failure and how many more
            more = f" (and {len(report.failed) - 1} more)" if len(report.failed) > 1 else ""
            raise BuildError(f"{report.failed[0]}{more}; strict build: {output} was left as it was")
        for line in report.failed:
            warn(line)
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


def _render(recording: Data, sections: list[Section], budget: SeriesBudget, env: jinja2.Environment,
            work: Path, progress: Progress) -> BuildReport:
    report = BuildReport(work)
    start, end = recording.time_range
    span = TimeRange(ceil_ms(start), end, recording.interval_ns)
    hosts = hosts_of(recording) or [SINGLE_HOST]
    for host in hosts:
        # Host names come from the recording and become directory names: never let one leave data/.
        if host in (".", "..") or "/" in host or "\\" in host or "\0" in host:
            raise RecordingError(f"{recording.path}: node name {host!r} cannot be used as a host directory")
    events = _events(recording)
    build = _Build(recording, work, hosts, span, events, budget, BuildCache())
    metrics, charts = _metric_browser(build)
    pages = _Pages(env, work, recording, sections, metrics, events, hosts)
    named = [_named_metrics(section, charts.keys()) for section in sections]
    # A metric's chart is drawn right after the last section that reads the metric, while its series are still
    # decoded; then they are released (see `budget`): nothing reads them again. The others' come last.
    chart_after: dict[int, list[str]] = defaultdict(list)
    for name, index in {name: index for index, names in enumerate(named) for name in names}.items():
        chart_after[index].append(name)
    charted: dict[str, list[str]] = {}  # metric -> its warning lines
    build.copy_static()
    try:
        if len(hosts) > 1:  # first: what it decodes is released with the metric browser's charts
            pages.fleet = fleet_data(recording)
        contexts = []
        for index, section in enumerate(sections):
            progress(f"[{index + 1}/{len(sections)}] {section.title}: {len(section.plots)} plots")
            contexts.append(_section(build, section))
            for name in chart_after[index]:
                charted[name] = charts[name]()
        report.pages = pages.write(contexts)
        progress("metric browser")
        for name, chart in charts.items():
            if name not in charted:
                charted[name] = chart()
    except BaseException:
        build.finish(check=False)
        raise
    build.finish()
    built = [context for context in contexts if context is not None]
    report.plots = sum(_plot_count(context) for context in built)
    report.missing = sum(len(context["missing"]) for context in built)
    report.failed = [f"{section.path or section.route}: plot {plot_id!r} failed: {error} (query: {query})"
                     for section, context in zip(sections, contexts) if context is not None
                     for plot_id, query, error in context["failed"]]
    report.failed += [line for name in charts for line in charted[name]]  # in the metric browser's order
    return report


def _named_metrics(section: Section, metrics: Collection[str]) -> list[str]:
    """The metrics the section's queries name, in the order they first do."""
    named: dict[str, None] = {}
    for plot in section.plots:
        try:
            names = selector_names(plot.query)
        except PromQLError:
            continue  # the chart reports it
        named.update((name, None) for name in names if name in metrics)
    return list(named)


class _Pages:
    """A build's HTML pages, written once every section's template context is known."""

    fleet: dict[str, dict[str, Any]] | None = None  # the Fleet page's data (per KPI), with several hosts

    def __init__(self, env: jinja2.Environment, work: Path, recording: Data, sections: list[Section],
                 metrics: list[dict[str, Any]], events: list[dict[str, Any]], hosts: list[str]):
        self._env, self._work, self._recording, self._sections = env, work, recording, sections
        self._metrics, self._events, self._hosts = metrics, events, hosts

    def write(self, contexts: list[dict[str, Any] | None]) -> list[str]:
        """Write the pages given every section's context (None for a section without data); their names."""
        built = [(section, context) for section, context in zip(self._sections, contexts) if context is not None]
        start, end = self._recording.time_range
        site = site_context(self._recording.path.name, start, end,
                            [(section, _plot_count(context)) for section, context in built], self._hosts)
        names = []
        for index, (section, context) in enumerate(built):
            name = "index.html" if index == 0 else f"{section.route}.html"
            write_page(self._env, "section.html", self._work / name, site=site, page=section_page(section),
                        section=context, events=self._events)
            names.append(name)
        write_page(self._env, "metrics.html", self._work / "metrics.html", site=site, events=self._events,
                    metrics=self._metrics, page=other_page("metrics"))
        write_page(self._env, "system.html", self._work / "system.html", site=site, events=self._events,
                    systeminfo=self._recording.footer.systeminfo,
                    systems=systems_by_host(self._recording.footer, [h for h in self._hosts if h != SINGLE_HOST]),
                    page=other_page("system"))
        write_page(self._env, "query.html", self._work / "query.html", site=site, events=self._events,
                   page=other_page("query"))
        names += ["metrics.html", "system.html", "query.html"]
        if self.fleet is not None:
            names.append(write_fleet(self._env, self._work, site, self.fleet, self._events))
        if not built:
            # Nothing from the dashboards (e.g. a plain Prometheus capture): the metric browser is the front page.
            shutil.copyfile(self._work / "metrics.html", self._work / "index.html")
            names.append("index.html")
        return names


def _plot_count(context: dict[str, Any]) -> int:
    return sum(len(group["plots"]) for group in context["groups"])


@dataclass
class _Build:
    """What the data files of a build are computed from, and where they go."""

    recording: Data
    work: Path
    hosts: list[str]
    span: TimeRange
    events: list[dict[str, Any]]
    budget: SeriesBudget
    cache: EvalCache
    # Data files are written by a thread of their own (writing does not hold the GIL) while the next charts are
    # computed.
    _writer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "rezgen-write"))
    _writes: list[Future[Any]] = field(default_factory=list)
    cpus: dict[str, int | None] = field(default_factory=dict)  # per host, see _cpus

    def copy_static(self) -> None:
        self._writes.append(self._writer.submit(shutil.copytree, resource_dir("templates") / "static",
                                                self.work / "static"))

    def write_data(self, path: Path, key: str, payload: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writes.append(self._writer.submit(path.write_bytes, data_script(key, payload)))

    def finish(self, check: bool = True) -> None:
        """Wait for the data files and stop the writer; with `check`, the first file that could not be written
        raises its error."""
        self._writer.shutdown(wait=True, cancel_futures=not check)
        if check:
            for write in self._writes:
                write.result()

    def scopes(self) -> Iterator[tuple[str, tuple[tuple[str, str], ...]]]:
        """(host, the labels that select its series) per host."""
        for host in self.hosts:
            yield host, host_scope(host)

    def plot_data(self, plot: Plot, scope: tuple[tuple[str, str], ...], coarse_only: bool = False
                  ) -> dict[str, Any] | None:
        self.budget.before(plot.query, scope)
        return plot_data(self.recording.store, plot, self.span, scope, coarse_only=coarse_only, cache=self.cache,
                         release=self.budget.release_series)


def _section(build: _Build, section: Section) -> dict[str, Any] | None:
    """Writes the section's data file per host; its template context, or None when no plot has data."""
    payloads: dict[str, dict[str, Any]] = {}
    failed: dict[str, tuple[str, str, str]] = {}  # plot id -> (id, query, error): one per plot, whatever the hosts
    for host, scope in build.scopes():
        payloads[host] = {}
        for plot in section.plots:
            if (data := build.plot_data(plot, scope)) is not None:
                payloads[host][plot.id] = data
                if "error" in data:
                    failed.setdefault(plot.id, (plot.id, plot.query, data["error"]))
                elif isinstance(store := build.recording.store, Store):  # a percentile plot's spectra, loaded on
                    # demand beside the page (from a store's bucket rates; a TSDB's data has none)
                    for path, key, spectrum in spectrum_files(store, plot, build.span, scope, host, section.route,
                                                              build.cache):
                        build.write_data(build.work / path, key, spectrum)
    with_data = {pid for payload in payloads.values() for pid in payload}
    if not with_data:
        return None
    for host, payload in payloads.items():
        data = section_payload(section, payload, build.span, build.events, cpus=_cpus(build, host))
        for name, part in with_cgroup_selector(section, data).items():  # cgroups loaded when picked
            build.write_data(build.work / "data" / host / "cgroups" / f"{name}.js", f"{host}/cgroups/{name}", part)
        for name, part in with_gpu_selector(section, data, build.recording.footer.systeminfo).items():  # a GPU's
            build.write_data(build.work / "data" / host / "gpus" / f"{name}.js", f"{host}/gpus/{name}", part)
        build.write_data(build.work / "data" / host / f"{section.route}.js", f"{host}/{section.route}", data)
    context = section_context(section, with_data, absent_plots(section, build.recording.store) - with_data)
    return {**context, "failed": list(failed.values())}


def _cpus(build: _Build, host: str) -> int | None:
    """The host's CPU count (a chart's "Total"), counted at its first section, before `cpu_cores` is released."""
    if host not in build.cpus:
        build.budget.before(CPU_QUERY, host_scope(host))
        store = build.recording.store
        build.cpus[host] = cpu_count(store, build.span, host_scope(host)) if isinstance(store, Store) else None
    return build.cpus[host]


def _events(recording: Data) -> list[dict[str, Any]]:
    out = []
    for event in recording.footer.events:
        try:
            t_ms = int(event["timestamp"]) // 1_000_000
        except (TypeError, ValueError):
            continue
        out.append({"t": t_ms, "text": str(event.get("description", "")), "kind": str(event.get("kind", ""))})
    return out


def _metric_browser(build: _Build) -> tuple[list[dict[str, Any]], dict[str, Callable[[], list[str]]]]:
    """The metric browser's table, and per metric a call that writes its data file per host: its default chart at
    the coarsest level only (the browser's chart does not zoom into detail; the dashboards do). Each metric's
    series are released once its chart is written, so a long recording's build does not end up holding every
    column it has."""
    catalog = metric_catalog(build.recording.store, build.recording.footer.describe)
    charts: dict[str, Callable[[], list[str]]] = {
        entry["name"]: partial(_metric_data, build, entry["name"], catalog_plot(entry)) for entry in catalog}
    return metric_rows(catalog), charts


def _metric_data(build: _Build, name: str, plot: Plot) -> list[str]:
    """Writes the metric's data file per host; a warning line if its chart failed."""
    errors: set[str] = set()
    for host, scope in build.scopes():
        data = build.plot_data(plot, scope, coarse_only=True)
        if data is not None and "error" in data:
            errors.add(data["error"])
        build.write_data(build.work / "data" / host / "metrics" / f"{metric_slug(name)}.js", f"{host}/metrics/{name}",
                         metric_payload(name, plot, data, build.span))
    build.budget.release(name)
    return [f"metric browser: {name!r} failed: {error} (query: {plot.query})" for error in sorted(errors)]
