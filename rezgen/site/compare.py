"""`rezgen build A B`: the static site of an A/B compare — every dashboard section with both recordings on each
chart, and the What-changed page ranking every plotted series by how much it changed.

The same dashboards, page model and evaluation as a single site (`site.build`); each section's data file holds
compare payloads (`compare.plots`), and the ranking is computed from those very payloads (`compare.changes`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from rezgen.compare.changes import Change, plot_changes, ranked
from rezgen.compare.inputs import Input
from rezgen.compare.pairing import HostPair, pair_hosts
from rezgen.compare.plots import Side, compare_plot
from rezgen.dashboards import Section, load_dashboards
from rezgen.gcpause import paused_gc
from rezgen.pages.model import (
    SINGLE_HOST,
    absent_plots,
    data_script,
    host_scope,
    section_context,
    section_page,
    section_payload,
    site_context,
)
from rezgen.pages.templating import template_environment, write_page
from rezgen.plotdata.plots import TimeRange
from rezgen.recording.reader import Recording, RecordingError
from rezgen.resources import resource_dir
from rezgen.site.budget import BuildCache, SeriesBudget
from rezgen.site.build import hosts_of, published
from rezgen.timeparse import ceil_ms

Progress = Callable[[str], None]
CHANGES_PAGE = "changes.html"


@dataclass
class CompareReport:
    output: Path
    pages: list[str] = field(default_factory=list)
    plots: int = 0
    failed: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)  # ranked


@dataclass
class _Recording:
    """One side of the build: the opened recording, its alias, span, and what keeps its memory bounded."""

    alias: str
    recording: Recording
    span: TimeRange = field(init=False)
    budget: SeriesBudget = field(init=False)
    cache: BuildCache = field(default_factory=BuildCache)

    def __post_init__(self) -> None:
        start, end = self.recording.time_range
        self.span = TimeRange(ceil_ms(start), end, self.recording.interval_ns)
        self.budget = SeriesBudget(self.recording)

    def side(self, host: str | None) -> Side:
        return Side(self.alias, self.recording.store, self.span, None if host is None else host_scope(host),
                    self.cache)


def compare_sections(a: Input, b: Input, recording_a: Recording, recording_b: Recording,
                     sections: list[Section], progress: Progress = lambda _: None,
                     write: Callable[[HostPair, Section, dict[str, Any]], None] | None = None
                     ) -> tuple[list[HostPair], list[tuple[Section, dict[str, Any] | None]], list[Change]]:
    """Evaluates every plot of every section for both recordings, host pair by host pair: the pairs, each
    section's template context (None without data), and every change. `write` receives each section's payload
    per host (the build writes it as a data file; `rezgen diff` writes nothing)."""
    sides = [_Recording(a.alias, recording_a), _Recording(b.alias, recording_b)]
    pairs = pair_hosts(hosts_of(recording_a), hosts_of(recording_b), _hostname(recording_a),
                       _hostname(recording_b))
    for pair in pairs:
        # Host names come from the recordings and become directory names: never let one leave data/.
        if pair.key in (".", "..") or any(c in pair.key for c in "/\\\0"):
            raise RecordingError(f"node name {pair.key!r} cannot be used as a host directory")
    span = TimeRange(0, max(s.span.end_ns - s.span.start_ns for s in sides),
                     min(s.span.step_ns for s in sides))
    contexts: list[tuple[Section, dict[str, Any] | None]] = []
    changes: list[Change] = []
    for index, section in enumerate(sections):
        progress(f"[{index + 1}/{len(sections)}] {section.title}: {len(section.plots)} plots")
        with_data: set[str] = set()
        failed: dict[str, tuple[str, str, str]] = {}
        payloads = {}
        for pair in pairs:
            side_a, side_b = sides[0].side(pair.a), sides[1].side(pair.b)
            plots = {}
            for plot in section.plots:
                for side, scope in ((sides[0], side_a.scope), (sides[1], side_b.scope)):
                    if scope is not None:
                        side.budget.before(plot.query, scope)
                if (data := compare_plot(plot, side_a, side_b)) is None:
                    continue
                plots[plot.id] = data
                if "error" in data:
                    failed.setdefault(plot.id, (plot.id, plot.query, data["error"]))
                else:
                    changes += plot_changes((section.title, section.route), pair.key, data)
            with_data |= plots.keys()
            payloads[pair] = plots
        if not with_data:
            contexts.append((section, None))
            continue
        if write is not None:
            for pair, plots in payloads.items():
                write(pair, section, section_payload(section, plots, span, [], compare=_compare_json(pair, sides)))
        absent = (absent_plots(section, recording_a.store) & absent_plots(section, recording_b.store)) - with_data
        contexts.append((section, {**section_context(section, with_data, absent), "failed": list(failed.values())}))
    return pairs, contexts, ranked(changes)


def build_compare_site(a: Input, b: Input, recording_a: Recording, recording_b: Recording, output: Path, *,
                       dashboards: Path | None = None, templates: Path | None = None,
                       progress: Progress | None = None, served: bool = False, warn: Progress | None = None,
                       strict: bool = False) -> CompareReport:
    """Render the compare site into `output` (swapped in only when complete, as a single build)."""
    with paused_gc():
        sections = load_dashboards(dashboards)
        env = template_environment(templates)
        env.globals["served"] = served
        return published(Path(output), lambda work: _render(a, b, recording_a, recording_b, sections, env, work,
                                                            progress or (lambda _: None)),
                         strict, warn or (lambda _: None))


def _render(a: Input, b: Input, recording_a: Recording, recording_b: Recording, sections: list[Section],
            env: jinja2.Environment, work: Path, progress: Progress) -> CompareReport:
    shutil.copytree(resource_dir("templates") / "static", work / "static")

    def write(pair: HostPair, section: Section, payload: dict[str, Any]) -> None:
        path = work / "data" / pair.key / f"{section.route}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data_script(f"{pair.key}/{section.route}", payload))

    pairs, contexts, changes = compare_sections(a, b, recording_a, recording_b, sections, progress, write)
    built = [(section, context) for section, context in contexts if context is not None]
    hosts = [pair.key for pair in pairs]
    start = min(recording_a.time_range[0], recording_b.time_range[0])
    end = max(recording_a.time_range[1], recording_b.time_range[1])
    site = site_context(f"{a.alias} vs {b.alias}", start, end,
                        [(section, _count(context)) for section, context in built], hosts)
    site["subtitle"] = " · ".join(f"{side.alias}: {_when(recording)}"
                                  for side, recording in ((a, recording_a), (b, recording_b)))
    site["pages"] = [{"href": CHANGES_PAGE, "title": "What changed"}]
    site["compare"] = {"a": a.alias, "b": b.alias, "files": [a.path.name, b.path.name],
                       "pairs": [{"key": p.key, "a": p.a, "b": p.b} for p in pairs]}
    report = CompareReport(work, changes=changes)
    for index, (section, context) in enumerate(built):
        name = "index.html" if index == 0 else f"{section.route}.html"
        write_page(env, "compare.html", work / name, site=site, page=section_page(section), section=context,
                   events=[])
        report.pages.append(name)
    write_page(env, "changes.html", work / CHANGES_PAGE, site=site, events=[], changes=changes,
               page={"route": "changes", "title": "What changed", "kind": "changes", "data": "", "root": ""},
               routes={section.route: ("index.html" if i == 0 else f"{section.route}.html")
                       for i, (section, _) in enumerate(built)})
    report.pages.append(CHANGES_PAGE)
    if not built:
        shutil.copyfile(work / CHANGES_PAGE, work / "index.html")
        report.pages.append("index.html")
    report.plots = sum(_count(context) for _, context in built)
    report.failed = [f"{section.path or section.route}: plot {plot_id!r} failed: {error} (query: {query})"
                     for section, context in built for plot_id, query, error in context["failed"]]
    return report


def _compare_json(pair: HostPair, sides: list[_Recording]) -> dict[str, Any]:
    return {"host": pair.key, "sides": [{"alias": side.alias, "host": host, "duration": side.span.end_ns // 1_000_000
                                         - side.span.start_ns // 1_000_000}
                                        for side, host in zip(sides, (pair.a, pair.b))]}


def _count(context: dict[str, Any]) -> int:
    return sum(len(group["plots"]) for group in context["groups"])


def _when(recording: Recording) -> str:
    """"2026-01-01 00:00 UTC, 10 min": when a recording starts and how long it is."""
    start, end = recording.time_range
    minutes = (end - start) / 60e9
    length = f"{minutes:.0f} min" if minutes >= 1 else f"{(end - start) / 1e9:.0f} s"
    return datetime.fromtimestamp(start / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M UTC") + f", {length}"


def _hostname(recording: Recording) -> str | None:
    info = recording.footer.systeminfo
    name = info.get("hostname") if isinstance(info, dict) else None
    return name if isinstance(name, str) and name and name != SINGLE_HOST else None
