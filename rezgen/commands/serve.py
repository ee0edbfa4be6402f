"""`rezgen serve RECORDING`: the static site from a local server that reloads open pages when an input changes."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import uvicorn

from rezgen.dashboards import load_dashboards
from rezgen.pages.services import sections_for
from rezgen.promql.limits import DEFAULT_LIMITS, QueryLimits
from rezgen.recording.reader import open_recording
from rezgen.resources import resource_dir
from rezgen.server.app import create_app
from rezgen.server.guard import trusted_names
from rezgen.server.listen import listen
from rezgen.server.reload import Reloader
from rezgen.server.source import RecordingSource
from rezgen.site.build import build_site, hosts_of


def serve_recording(recording: Path, *, host: str = "127.0.0.1", port: int = 8000, dashboards: Path | None = None,
                    templates: Path | None = None, allowed_hosts: tuple[str, ...] = (),
                    limits: QueryLimits = DEFAULT_LIMITS, announce: Callable[[str], None] = print) -> None:
    """Build once (errors propagate before anything listens), then serve and rebuild on change until stopped.

    Requests must name this server by its bound address, a loopback name or one of `allowed_hosts`."""
    def build(site: Path) -> RecordingSource:
        opened = open_recording(recording)
        build_site(opened, site, dashboards=dashboards, templates=templates, served=True)
        sections = sections_for(load_dashboards(dashboards), opened.store, opened.footer.describe)
        return RecordingSource(opened, sections, hosts_of(opened))

    serve_site(build, [recording], str(recording), host=host, port=port, dashboards=dashboards, templates=templates,
               allowed_hosts=allowed_hosts, limits=limits, announce=announce)


def serve_site(build: Callable[[Path], RecordingSource], inputs: list[Path], title: str, *, host: str, port: int,
               dashboards: Path | None, templates: Path | None, allowed_hosts: tuple[str, ...], limits: QueryLimits,
               announce: Callable[[str], None]) -> None:
    """Serve the site `build` writes into a directory of its own (and the source its API answers from), built
    again whenever one of `inputs`, the dashboards or the templates changes; open pages reload."""
    workdir = Path(tempfile.mkdtemp(prefix="rezgen-serve-"))
    site = workdir / "site"
    current: list[RecordingSource] = []

    def rebuild() -> None:
        current[:] = [build(site)]

    try:
        rebuild()
        watched = [*inputs, dashboards or resource_dir("dashboards"), templates or resource_dir("templates")]
        app = create_app(site, Reloader(rebuild, watched), lambda: current[0], trusted_names(host, allowed_hosts),
                         limits)
        listener = listen(host, port)
        bound = listener.getsockname()[1]
        announce(f"serving {title} at http://{host}:{bound}/ (Ctrl+C to stop)")
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[listener])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
