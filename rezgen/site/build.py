"""`rezgen build`: render every dashboard section of a recording into a static site that opens from disk.

Pages are HTML from the Jinja2 templates; the data each page needs is computed ahead and written beside it as a
classic script (`data/<host>/<route>.js` calling `REZGEN.register`), which browsers load from file:// where
fetch() of JSON is refused. The site is built in a temporary directory next to the destination and swapped in
only when complete, so a failed build leaves the previous site untouched.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import jinja2

from rezgen.dashboards import Plot, Section, load_dashboards
from rezgen.errors import RezgenError
from rezgen.gcpause import paused_gc
from rezgen.pages.catalog import metric_plot, metric_slug, metric_summaries
from rezgen.pages.model import (
    SINGLE_HOST,
    absent_plots,
    data_script,
    section_context,
    section_page,
    section_payload,
    site_context,
)
from rezgen.pages.templating import template_environment, write_page
from rezgen.plotdata.plots import TimeRange, plot_data
from rezgen.promql.cache import EvalCache
from rezgen.recording.footer import Footer
from rezgen.recording.reader import Recording, RecordingError
from rezgen.resources import resource_dir
from rezgen.site.budget import SeriesBudget
from rezgen.site.order import need_order
from rezgen.site.prefetch import DecodeAhead, Task, run_in_order
from rezgen.timeparse import ceil_ms

Progress = Callable[[str], None]


class BuildError(RezgenError):
    """A build refused (`strict` with plots that failed); the message is one line for the user."""


@dataclass
class BuildReport:
    output: Path
    pages: list[str] = field(default_factory=list)
    plots: int = 0
    missing: int = 0
    failed: list[str] = field(default_factory=list)  # one line per plot whose query failed


def hosts_of(recording: Recording) -> list[str]:
    """Hosts to choose between: the `node` values of a recording that combines several agents."""
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
            node = member.get("node") if isinstance(member.get("node"), str) else key
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


def build_site(recording: Recording, output: Path, *, dashboards: Path | None = None,
               templates: Path | None = None, progress: Progress | None = None, served: bool = False,
               warn: Progress | None = None, strict: bool = False) -> BuildReport:
    """Render the site into `output`; `served` pages also load the live-reload script of `rezgen serve`.

    A plot whose query fails on this recording shows the error in its card and is reported through `warn`, one
    line each; with `strict` the build fails instead (BuildError) and `output` is left as it was."""
    # The payloads are millions of small lists that live until written; the cyclic collector would walk them
    # over and over (a tenth of a build), and a build makes hardly any cycles.
    with paused_gc():
        sections = load_dashboards(dashboards)
        budget = SeriesBudget(recording)
        env = template_environment(templates)
        env.globals["served"] = served
        return _build(recording, sections, budget, env, Path(output), progress or (lambda _: None),
                      warn or (lambda _: None), strict)


def _build(recording: Recording, sections: list[Section], budget: SeriesBudget, env: jinja2.Environment,
           output: Path, progress: Progress, warn: Progress, strict: bool) -> BuildReport:
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    work.chmod(0o755)  # mkdtemp's is 0700: the site is meant to be published (a web server reads it as another user)
    try:
        report = _render(recording, sections, budget, env, work, progress)
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


def _render(recording: Recording, sections: list[Section], budget: SeriesBudget, env: jinja2.Environment,
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
    # Charts share evaluated pieces when the decoded series all stay loaded (see `budget`).
    build = _Build(recording, work, hosts, span, events, budget, None if budget.active else EvalCache())
    # The data files are written by tasks: a section's, then a metric's for the metric browser. For a recording
    # whose series all stay loaded, a child process decodes them ahead and then takes tasks too (see `prefetch`);
    # a long one's memory is bounded by `budget` instead.
    metrics, metric_tasks = _metric_browser(build)
    queries = [plot.query for section in sections for plot in section.plots]
    # The metric charts in the order the sections first read their metrics, the others last, the dearest to decode
    # at the end: the caller, taking tasks from the front, charts what its sections decoded; the child, from the
    # back, what no section reads, and the two meet over cheap charts.
    cells = recording.metric_cells()
    metric_order = need_order(metric_tasks, queries, lambda name: cells.get(name, 0))
    pages = _Pages(env, work, recording, sections, metrics, events, hosts)
    # The pages come right after the sections: the caller, who takes tasks from the front and so runs the sections,
    # writes them while the child still charts metrics, rather than at the end while the child waits.
    tasks = [partial(pages.section, index, build) for index in range(len(sections))] + [pages.write_if_ready] + \
        [metric_tasks[name] for name in metric_order]

    def announce(index: int) -> None:
        if index < len(sections):
            progress(f"[{index + 1}/{len(sections)}] {sections[index].title}: {len(sections[index].plots)} plots")
        elif index == len(sections) + 1:
            progress("metric browser")

    ahead = None if budget.active else DecodeAhead(recording, queries, tasks, flush=build.flush)
    with ahead or nullcontext():
        try:
            build.copy_static()  # after the fork: the writer's thread must not exist yet then
            results = ahead.run_tasks(announce) if ahead else run_in_order(tasks, announce)
        except BaseException:
            build.finish(check=False)
            raise
        build.finish()
    contexts = results[: len(sections)]
    report.pages = results[len(sections)] or pages.write(contexts)  # the child ran some sections: pages now
    built = [context for context in contexts if context is not None]
    report.plots = sum(_plot_count(context) for context in built)
    report.missing = sum(len(context["missing"]) for context in built)
    # Failures come back with the tasks' results: the child process may have run any of them.
    report.failed = [f"{section.path or section.route}: plot {plot_id!r} failed: {error} (query: {query})"
                     for section, context in zip(sections, contexts) if context is not None
                     for plot_id, query, error in context["failed"]]
    report.failed += [line for lines in results[len(sections) + 1 :] for line in lines]
    return report


class _Pages:
    """A build's HTML pages, written once every section's template context is known."""

    def __init__(self, env: jinja2.Environment, work: Path, recording: Recording, sections: list[Section],
                 metrics: list[dict[str, Any]], events: list[dict[str, Any]], hosts: list[str]):
        self._env, self._work, self._recording, self._sections = env, work, recording, sections
        self._metrics, self._events, self._hosts = metrics, events, hosts
        self._contexts: dict[int, dict[str, Any] | None] = {}  # of the sections run in this process

    def section(self, index: int, build: _Build) -> dict[str, Any] | None:
        """A section's task: its data files, and its template context (kept here for `write_if_ready`)."""
        context = self._contexts[index] = _section(build, self._sections[index])
        return context

    def write_if_ready(self) -> list[str] | None:
        """The pages' task: written, and their names, when every section ran in this process; else None."""
        if len(self._contexts) < len(self._sections):
            return None
        return self.write([self._contexts[index] for index in range(len(self._sections))])

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
                    metrics=self._metrics,
                    page={"route": "metrics", "title": "Metrics", "kind": "metrics", "data": "", "root": ""})
        write_page(self._env, "system.html", self._work / "system.html", site=site, events=self._events,
                    systeminfo=self._recording.footer.systeminfo,
                    systems=systems_by_host(self._recording.footer, [h for h in self._hosts if h != SINGLE_HOST]),
                    page={"route": "system", "title": "System", "kind": "system", "data": "", "root": ""})
        names += ["metrics.html", "system.html"]
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

    recording: Recording
    work: Path
    hosts: list[str]
    span: TimeRange
    events: list[dict[str, Any]]
    budget: SeriesBudget
    cache: EvalCache | None
    # Data files are written by a thread of their own (writing does not hold the GIL) while the next charts are
    # computed.
    _writer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "rezgen-write"))
    _writes: list[Future[Any]] = field(default_factory=list)

    def copy_static(self) -> None:
        self._writes.append(self._writer.submit(shutil.copytree, resource_dir("templates") / "static",
                                                self.work / "static"))

    def write_data(self, path: Path, key: str, payload: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writes.append(self._writer.submit(path.write_bytes, data_script(key, payload)))

    def flush(self) -> None:
        """Wait for the data files written so far; the first that could not be written raises its error."""
        writes, self._writes = self._writes, []
        for write in writes:
            write.result()

    def finish(self, check: bool = True) -> None:
        """Wait for the data files and stop the writer; with `check`, as `flush`."""
        self._writer.shutdown(wait=True, cancel_futures=not check)
        if check:
            self.flush()

    def scopes(self) -> Iterator[tuple[str, tuple[tuple[str, str], ...]]]:
        """(host, the labels that select its series) per host."""
        for host in self.hosts:
            yield host, (("node", host),) if host != SINGLE_HOST else ()

    def plot_data(self, plot: Plot, scope: tuple[tuple[str, str], ...], coarse_only: bool = False
                  ) -> dict[str, Any] | None:
        self.budget.before(plot.query, scope)
        return plot_data(self.recording.store, plot, self.span, scope, coarse_only=coarse_only, cache=self.cache)


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
    with_data = {pid for payload in payloads.values() for pid in payload}
    if not with_data:
        return None
    for host, payload in payloads.items():
        build.write_data(build.work / "data" / host / f"{section.route}.js", f"{host}/{section.route}",
                         section_payload(section, payload, build.span, build.events))
    context = section_context(section, with_data, absent_plots(section, build.recording.store) - with_data)
    return {**context, "failed": list(failed.values())}


def _events(recording: Recording) -> list[dict[str, Any]]:
    out = []
    for event in recording.footer.events:
        try:
            t_ms = int(event["timestamp"]) // 1_000_000
        except (TypeError, ValueError):
            continue
        out.append({"t": t_ms, "text": str(event.get("description", "")), "kind": str(event.get("kind", ""))})
    return out


def _metric_browser(build: _Build) -> tuple[list[dict[str, Any]], dict[str, Task]]:
    """The metric browser's table, and per metric a task that writes its data file per host: its default chart at
    the coarsest level only (the browser's chart does not zoom into detail; the dashboards do). Each metric's
    series are released once its chart is written, so a long recording's build does not end up holding every
    column it has."""
    rows, tasks = [], {}
    for metric in metric_summaries(build.recording):
        name, kind = metric.pop("name"), metric.pop("kind")
        plot = metric_plot(name, kind, metric["unit"], metric["description"])
        rows.append({"name": name, **metric, "query": plot.query,
                     "data": f"data/{{host}}/metrics/{metric_slug(name)}.js"})
        tasks[name] = partial(_metric_data, build, name, plot)
    return rows, tasks


def _metric_data(build: _Build, name: str, plot: Plot) -> list[str]:
    """Writes the metric's data file per host; a warning line if its chart failed."""
    span = build.span
    errors: set[str] = set()
    for host, scope in build.scopes():
        data = build.plot_data(plot, scope, coarse_only=True)
        if data is not None and "error" in data:
            errors.add(data["error"])
        build.write_data(build.work / "data" / host / "metrics" / f"{metric_slug(name)}.js", f"{host}/metrics/{name}",
                         {"name": name, "query": plot.query, "plot": data,
                          "range": {"start": span.start_ns // 1_000_000, "end": span.end_ns // 1_000_000,
                                    "step": span.step_ns // 1_000_000}})
    build.budget.release({name})
    return [f"metric browser: {name!r} failed: {error} (query: {plot.query})" for error in sorted(errors)]
