"""`rezgen build A B` and `rezgen serve A B`: the compare site of two recordings, built once or served with reload."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import uvicorn

from rezgen.compare.inputs import Input, parse_inputs
from rezgen.dashboards import load_dashboards
from rezgen.promql.limits import DEFAULT_LIMITS, QueryLimits
from rezgen.recording.reader import Recording, open_recording
from rezgen.resources import resource_dir
from rezgen.server.app import create_app
from rezgen.server.guard import trusted_names
from rezgen.server.listen import listen
from rezgen.server.reload import Reloader
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
    workdir = Path(tempfile.mkdtemp(prefix="rezgen-serve-"))
    site = workdir / "site"
    current: list[RecordingSource] = []

    def build() -> None:
        opened_a, opened_b = open_recording(a.path), open_recording(b.path)
        build_compare_site(a, b, opened_a, opened_b, site, dashboards=dashboards, templates=templates, served=True)
        current[:] = [RecordingSource(opened_a, load_dashboards(dashboards), hosts_of(opened_a))]

    try:
        build()
        watched = [a.path, b.path, dashboards or resource_dir("dashboards"), templates or resource_dir("templates")]
        app = create_app(site, Reloader(build, watched), lambda: current[0], trusted_names(host, allowed_hosts),
                         limits)
        listener = listen(host, port)
        bound = listener.getsockname()[1]
        announce(f"serving {a.alias} vs {b.alias} at http://{host}:{bound}/ (Ctrl+C to stop)")
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[listener])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
