"""`rezgen build A B` and `rezgen serve A B`: the compare site of two recordings, built once or served with reload."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rezgen.commands.serve import serve_site
from rezgen.compare.inputs import Input, parse_inputs
from rezgen.dashboards import load_dashboards
from rezgen.promql.limits import DEFAULT_LIMITS, QueryLimits
from rezgen.recording.reader import Recording, open_recording
from rezgen.server.source import RecordingSource
from rezgen.site.build import hosts_of
from rezgen.site.compare import CompareReport, build_compare_site


def open_pair(arguments: tuple[str, ...] | list[str]) -> tuple[Input, Input, Recording, Recording]:
    """The two `[ALIAS=]PATH` arguments, checked and opened (errors are one line: RezgenError)."""
    a, b = parse_inputs(arguments)
    return a, b, open_recording(a.path), open_recording(b.path)


def build_compare(arguments: tuple[str, ...], output: Path, *, dashboards: Path | None = None,
                  templates: Path | None = None, progress: Callable[[str], None] | None = None,
                  warn: Callable[[str], None] | None = None, strict: bool = False) -> CompareReport:
    a, b, recording_a, recording_b = open_pair(arguments)
    return build_compare_site(a, b, recording_a, recording_b, output, dashboards=dashboards, templates=templates,
                              progress=progress, warn=warn, strict=strict)


def serve_compare(arguments: tuple[str, ...], *, host: str = "127.0.0.1", port: int = 8000,
                  dashboards: Path | None = None, templates: Path | None = None, allowed_hosts: tuple[str, ...] = (),
                  limits: QueryLimits = DEFAULT_LIMITS, announce: Callable[[str], None] = print) -> None:
    """As `serve_recording`, for a compare: pages reload when either recording, a dashboard or a template changes.
    The HTTP API answers from recording A."""
    a, b = parse_inputs(arguments)

    def build(site: Path) -> RecordingSource:
        opened_a, opened_b = open_recording(a.path), open_recording(b.path)
        build_compare_site(a, b, opened_a, opened_b, site, dashboards=dashboards, templates=templates, served=True)
        return RecordingSource(opened_a, load_dashboards(dashboards), hosts_of(opened_a))

    serve_site(build, [a.path, b.path], f"{a.alias} vs {b.alias}", host=host, port=port, dashboards=dashboards,
               templates=templates, allowed_hosts=allowed_hosts, limits=limits, announce=announce)
