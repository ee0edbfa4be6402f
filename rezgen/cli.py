"""The `rezgen` command line: parses arguments and hands them to plain functions in `rezgen.commands`."""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

# rezgen does no linear algebra: numpy's OpenBLAS threads would only spin on the other core after numpy's import
# (a tenth of a CPU second), the core a build's second process works on. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rezgen.gcpause import paused_gc

# Importing numpy and pyarrow makes a great many objects and no garbage: collections during it cost ~30 ms.
with paused_gc():
    import click

    from rezgen.errors import RezgenError
    from rezgen.promql.limits import DEFAULT_MAX_SAMPLES, DEFAULT_TIMEOUT_S, QueryLimits
    from rezgen.recording.reader import open_recording
    from rezgen.timeparse import parse_duration, parse_time


class _TerminalHandler(logging.StreamHandler):
    """stderr, one line per message: `rezgen: message`."""


def _configure_logging() -> None:
    """What the server and live mode log (the `rezgen.*` loggers) goes to stderr as `rezgen: message`, from INFO up.
    Once per process: another `main()` in the same process (a benchmark) adds no second handler."""
    logger = logging.getLogger("rezgen")
    if any(isinstance(handler, _TerminalHandler) for handler in logger.handlers):
        return
    handler = _TerminalHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rezgen: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"rezgen: {message}", err=True)
    sys.exit(code)


def main() -> None:
    """Console entry point: usage errors become one line on stderr, like every other failure."""
    _configure_logging()
    try:
        cli.main(prog_name="rezgen", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except RezgenError as exc:  # every error a user can cause: one line, never a traceback
        _fail(str(exc))
    except OSError as exc:  # a file system refusal (permissions, full disk) is a user problem, not a crash
        _fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))


def _leave() -> NoReturn:
    """End the process now, as the interpreter would (atexit handlers run, output is flushed) but without its
    teardown: after a build, freeing its arrays and objects one by one takes a fifth of a second, which the kernel
    does at once."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _converted(parse: Callable[[str], int]) -> Callable[..., Any]:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return convert


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rezgen")
def cli() -> None:
    """rezgen: dashboards for Rezolus telemetry (static sites from recordings, live pages from agents)."""


@cli.command()
@click.argument("recording", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a report.")
def inspect(recording: str, as_json: bool) -> None:
    """Show a recording's time range, sources, nodes and metrics."""
    from rezgen.commands.inspect import describe_recording, format_report

    info = describe_recording(open_recording(recording))
    click.echo(json.dumps(info, indent=2) if as_json else format_report(info))


@cli.command(context_settings={"ignore_unknown_options": True})  # EXPR may start with "-"
@click.argument("recording", type=click.Path(dir_okay=False))
@click.argument("expr")
@click.option("--start", callback=_converted(parse_time), help="Range start (unix seconds or RFC 3339).")
@click.option("--end", callback=_converted(parse_time), help="Range end (unix seconds or RFC 3339).")
@click.option("--step", callback=_converted(parse_duration), help="Resolution, e.g. 1s, 15s, 5m.")
@click.option("--time", "at", callback=_converted(parse_time), help="Evaluate once at this time (instant).")
@click.option("--query-max-samples", "max_samples", default=DEFAULT_MAX_SAMPLES, show_default=True,
              type=click.IntRange(min=1), help="Refuse a query estimated to hold more samples in memory.")
def query(recording: str, expr: str, start: int | None, end: int | None, step: int | None, at: int | None,
          max_samples: int) -> None:
    """Evaluate a PromQL EXPR over RECORDING; prints Prometheus API JSON.

    Without options: a range query over the whole recording at its sampling interval.
    """
    from rezgen.commands.query import query_recording

    if at is not None and (start is not None or end is not None or step is not None):
        _fail("--time makes an instant query; it cannot be combined with --start/--end/--step")
    result = query_recording(open_recording(recording), expr, start_ns=start, end_ns=end, step_ns=step,
                             time_ns=at, max_samples=max_samples)
    click.echo(json.dumps(result, separators=(",", ":")))


@cli.command()
@click.option("-o", "--output", default="output/sample.parquet", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the recording.")
@click.option("--duration", default="10m", show_default=True, callback=_converted(parse_duration),
              help="Length of the recording, e.g. 10m, 1h, 24h.")
@click.option("--cpus", default=8, show_default=True, type=click.IntRange(1, 1024), help="Number of CPUs.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same file).")
@click.option("--scale", "scales", multiple=True, metavar="METRIC=FACTOR",
              help="Multiply a metric's increases (or values) by FACTOR: a known change for `rezgen diff`.")
def sample(output: str, duration: int, cpus: int, seed: int, scales: tuple[str, ...]) -> None:
    """Write a deterministic synthetic Rezolus recording (a busy 8-CPU host by default)."""
    from pathlib import Path

    from rezgen.synthetic.sample import generate_sample

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    scale = {}
    for item in scales:
        metric, _, factor = item.partition("=")
        try:
            scale[metric] = float(factor)
        except ValueError:
            _fail(f"--scale {item!r}: expected METRIC=FACTOR, e.g. tcp_retransmit=1.5", 2)
    generate_sample(output, duration_s=max(1, duration // 1_000_000_000), cpus=cpus, seed=seed, scale=scale)
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("recordings", nargs=-1, metavar="[ALIAS=]RECORDING [[ALIAS=]RECORDING]")
@click.option("-o", "--output", default="output", show_default=True, type=click.Path(file_okay=False),
              help="Directory of the site (replaced only when the build succeeds).")
@click.option("--prometheus", metavar="URL", help="Build from a Prometheus-compatible TSDB instead of a recording.")
@click.option("--start", callback=_converted(parse_time),
              help="Only from this time (unix s or RFC 3339): a range of a recording, a data dir or --prometheus.")
@click.option("--end", callback=_converted(parse_time), help="Only up to this time (unix s or RFC 3339).")
@click.option("--systeminfo", type=click.Path(file_okay=False), help="--prometheus: folder of <node>.json files.")
@click.option("--dashboards", type=click.Path(file_okay=False), help="Directory of dashboard files (*.toml).")
@click.option("--templates", type=click.Path(file_okay=False), help="Directory of templates overriding the defaults.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--strict", is_flag=True, help="Fail (and keep the previous site) when any plot's query fails.")
@click.option("--single-file", type=click.Path(dir_okay=False),
              help="Write the report as this one self-contained HTML file (each section a tab) instead of a site.")
def build(recordings: tuple[str, ...], output: str, prometheus: str | None, start: int | None, end: int | None,
          systeminfo: str | None, dashboards: str | None, templates: str | None, quiet: bool, strict: bool,
          single_file: str | None) -> None:
    """Render RECORDING as a static site: one page per dashboard section, openable from disk.

    RECORDING may be a live data dir (or any directory of segments): --start/--end choose the range. Given two
    recordings (A B, each optionally ALIAS=PATH), a compare site: both on every chart, and what changed. With
    --prometheus URL --start T --end T, the site of a Prometheus-compatible TSDB's data.
    """
    from pathlib import Path

    with paused_gc():  # importing jinja2 and the site's modules makes no garbage either
        from rezgen.site.build import build_site

    def progress(message: str) -> None:
        if not quiet:
            click.echo(f"  {message}", err=True)

    def warn(message: str) -> None:  # even with --quiet: the site shows less than asked for
        click.echo(f"rezgen: warning: {message}", err=True)

    # SIGTERM ends a build as Ctrl-C does: the exception unwinds through the removal of the unfinished site (the
    # forked helper inherits this and leaves through its own exit path).
    signal.signal(signal.SIGTERM, _interrupt)
    folders: dict[str, Any] = {"dashboards": Path(dashboards) if dashboards else None,
                               "templates": Path(templates) if templates else None}
    if bool(recordings) == bool(prometheus):
        _fail("give either a RECORDING or --prometheus URL (not both)", 2)
    if prometheus:
        from rezgen.commands.backend import build_from_backend

        if start is None or end is None:
            _fail("--prometheus needs --start and --end", 2)
        assert start is not None and end is not None
        backend = build_from_backend(prometheus, start, end, Path(output),
                                     systeminfo=Path(systeminfo) if systeminfo else None, progress=progress,
                                     warn=warn, strict=strict, **folders)
        _built(backend)
    if len(recordings) != 1:
        if single_file or start is not None or end is not None:
            _fail("a compare is a site of two whole recordings: --single-file, --start and --end take one", 2)
        from rezgen.commands.compare import build_compare

        compared = build_compare(recordings, Path(output), progress=progress, warn=warn, strict=strict, **folders)
        click.echo(f"built {len(compared.pages)} pages, {compared.plots} compare charts, "
                   f"{len(compared.changes)} series ranked")
        click.echo(f"open file://{(compared.output / 'index.html').resolve()}")
        _leave()
    from rezgen.commands.history import ranged_recording

    with ranged_recording(Path(recordings[0]), start, end, Path(single_file or output)) as recording:
        if single_file:
            from rezgen.site.single import build_single_file

            single, size = build_single_file(recording, Path(single_file), progress=progress, warn=warn,
                                             strict=strict, **folders)
            click.echo(f"wrote {single_file} ({size / 1e6:.1f} MB), {single.plots} charts")
            _leave()
        _built(build_site(recording, Path(output), progress=progress, warn=warn, strict=strict, **folders))


def _built(report: Any) -> NoReturn:
    """A site's summary, then the process ends (see `_leave`)."""
    click.echo(f"built {len(report.pages)} pages, {report.plots} charts ({report.missing} not in this recording)")
    click.echo(f"open file://{(report.output / 'index.html').resolve()}")
    _leave()


def _remote_write_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--remote-write and its settings, shared by `serve --live` and `forward`."""
    options = [
        click.option("--remote-write", "remote_write", multiple=True, metavar="URL",
                     help="Send every sample polled to this Prometheus remote-write URL (repeatable), e.g. "
                          "http://vm:8428/api/v1/write."),
        click.option("--remote-write-queue", "remote_write_queue", default="10m", show_default=True,
                     callback=_converted(parse_duration),
                     help="How much data (in data time) waits for an unreachable target before the oldest is "
                          "dropped."),
        click.option("--external-label", "external_labels", multiple=True, metavar="K=V",
                     help="A label added to every series sent (repeatable)."),
        click.option("--histogram-grouping-power", "grouping_power", default=2, show_default=True,
                     type=click.IntRange(0, 3), help="Histogram buckets sent: 65/128/252/496 for 0/1/2/3."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _remote_config(urls: tuple[str, ...], queue: int, labels: tuple[str, ...], power: int) -> Any:
    from rezgen.remote.writer import RemoteWriteConfig

    external = {}
    for label in labels:
        name, sep, value = label.partition("=")
        if not sep or not name.strip():
            _fail(f"--external-label {label!r}: give NAME=VALUE", 2)
        external[name.strip()] = value
    return RemoteWriteConfig(list(urls), queue, external, power)


@cli.command()
@click.argument("recordings", nargs=-1, metavar="[[ALIAS=]RECORDING [[ALIAS=]RECORDING]]")
@click.option("--live", "agents", multiple=True, metavar="URL",
              help="Watch a running Rezolus agent (repeat for several) instead of a recording.")
@click.option("--interval", default="1s", show_default=True, callback=_converted(parse_duration),
              help="Live: how often to poll each agent (down to 50ms).")
@click.option("--retention", default="1h", show_default=True, callback=_converted(parse_duration),
              help="Live: how much history to keep in memory.")
@click.option("--record", type=click.Path(dir_okay=False), help="Live: also write what arrives to this .parquet file.")
@click.option("--data-dir", default="output/live", show_default=True, type=click.Path(file_okay=False),
              envvar="REZGEN_DATA_DIR",
              help="Live: keep history here as rolling Rezolus segments, one directory per node.")
@click.option("--no-data-dir", is_flag=True, help="Live: keep no history on disk (memory only).")
@click.option("--segment", default="10m", show_default=True, callback=_converted(parse_duration),
              help="Live: length of a data dir segment.")
@click.option("--keep", default="7d", show_default=True, callback=_converted(parse_duration),
              help="Live: delete data dir segments older than this.")
@click.option("--keep-size", default="10GB", show_default=True, help="Live: delete the oldest segments beyond this.")
@click.option("--prometheus", metavar="URL", help="Serve a Prometheus-compatible TSDB's data (pages updated live).")
@click.option("--systeminfo", type=click.Path(file_okay=False), help="--prometheus: folder of <node>.json files.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (the default is local only).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also answer requests that name this server NAME (repeatable). Only the bound address and "
                   "localhost/127.0.0.1/[::1] are answered otherwise (421), against DNS rebinding.")
@click.option("--dashboards", type=click.Path(file_okay=False), help="Directory of dashboard files (*.toml).")
@click.option("--templates", type=click.Path(file_okay=False), help="Directory of templates overriding the defaults.")
@click.option("--query-max-samples", "max_samples", default=DEFAULT_MAX_SAMPLES, show_default=True,
              type=click.IntRange(min=1), help="Refuse (422) a PromQL query estimated to hold more samples in memory.")
@click.option("--query-timeout", "timeout", default=f"{DEFAULT_TIMEOUT_S:g}s", show_default=True,
              callback=_converted(parse_duration), help="Give up (503) on a PromQL query running longer than this.")
@_remote_write_options
def serve(recordings: tuple[str, ...], agents: tuple[str, ...], interval: int, retention: int, record: str | None,
          data_dir: str, no_data_dir: bool, segment: int, keep: int, keep_size: str, prometheus: str | None,
          systeminfo: str | None, host: str, port: int, allowed_hosts: tuple[str, ...], dashboards: str | None,
          templates: str | None, max_samples: int, timeout: int, remote_write: tuple[str, ...] = (),
          remote_write_queue: int = 0, external_labels: tuple[str, ...] = (), grouping_power: int = 2) -> None:
    """Serve RECORDING's site locally (pages reload when an input changes), live agents with --live URL, or a
    Prometheus-compatible TSDB's data with --prometheus URL.

    Given two recordings (A B, each optionally ALIAS=PATH), the compare site of the two."""
    from pathlib import Path

    from rezgen.commands.serve import serve_recording

    recording = recordings[0] if len(recordings) == 1 else None
    if len(recordings) > 1 and not agents and not prometheus:
        from rezgen.commands.compare import serve_compare

        serve_compare(recordings, host=host, port=port, allowed_hosts=allowed_hosts,
                      limits=QueryLimits(max_samples, timeout / 1e9), announce=click.echo,
                      dashboards=Path(dashboards) if dashboards else None,
                      templates=Path(templates) if templates else None)
        return
    if [bool(recordings), bool(agents), bool(prometheus)].count(True) != 1:
        _fail("give one of a RECORDING, --live URL or --prometheus URL", 2)
    if record and not agents:
        _fail("--record needs --live", 2)
    if remote_write and not agents:
        _fail("--remote-write needs --live", 2)
    if interval < 50_000_000:
        _fail("--interval must be at least 50ms", 2)
    if retention < 2 * interval:
        _fail("--retention must hold at least two intervals", 2)
    folders = {"dashboards": Path(dashboards) if dashboards else None,
               "templates": Path(templates) if templates else None}
    limits = QueryLimits(max_samples, timeout / 1e9)
    if prometheus:
        from rezgen.commands.backend import serve_backend

        serve_backend(prometheus, retention_ns=retention, host=host, port=port, timeout_s=timeout / 1e9,
                      systeminfo=Path(systeminfo) if systeminfo else None, allowed_hosts=allowed_hosts,
                      announce=click.echo, **folders)
    elif agents:
        from rezgen.commands.live import serve_live
        from rezgen.live.datadir import HistorySettings, parse_size

        try:
            history = None if no_data_dir else HistorySettings(Path(data_dir), segment, keep, parse_size(keep_size))
        except ValueError as exc:
            _fail(f"--keep-size: {exc}", 2)
        serve_live(list(agents), interval_ns=interval, retention_ns=retention, host=host, port=port,
                   record=Path(record) if record else None, allowed_hosts=allowed_hosts, limits=limits,
                   history=history,
                   remote=_remote_config(remote_write, remote_write_queue, external_labels, grouping_power),
                   announce=click.echo, **folders)
    else:
        assert recording is not None
        serve_recording(Path(recording), host=host, port=port, allowed_hosts=allowed_hosts, limits=limits,
                        announce=click.echo, **folders)


@cli.command()
@click.option("--live", "agents", multiple=True, required=True, metavar="URL",
              help="A running Rezolus agent to poll (repeat for several).")
@click.option("--interval", default="1s", show_default=True, callback=_converted(parse_duration),
              help="How often to poll each agent (down to 50ms).")
@_remote_write_options
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Processes to share the agents among  [default: the number of cores, at most one per agent]")
def forward(agents: tuple[str, ...], interval: int, remote_write: tuple[str, ...], remote_write_queue: int,
            external_labels: tuple[str, ...], grouping_power: int, workers: int | None) -> None:
    """Send live agents' samples to Prometheus remote-write targets, with no web UI."""
    from rezgen.commands.forward import forward as run
    from rezgen.commands.forward_workers import default_workers, forward_sharded

    if not remote_write:
        _fail("give at least one --remote-write URL", 2)
    if interval < 50_000_000:
        _fail("--interval must be at least 50ms", 2)
    signal.signal(signal.SIGTERM, _interrupt)
    remote = _remote_config(remote_write, remote_write_queue, external_labels, grouping_power)
    workers = min(workers or default_workers(len(agents)), len(agents))
    if workers > 1:
        forward_sharded(list(agents), workers, interval_ns=interval, remote=remote, announce=click.echo)
        return
    run(list(agents), interval_ns=interval, remote=remote, announce=click.echo)


@cli.command()
@click.argument("recording", type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (the default is local only).")
@click.option("--port", default=4241, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Rows advance at this multiple of wall time.")
@click.option("--format", "fmt", default="v2", show_default=True, type=click.Choice(["v2", "v3"]),
              help="Snapshot format of /metrics/binary (v2: what every Rezolus release reads).")
@click.option("--loop/--no-loop", default=True, show_default=True,
              help="At the end start over with counters continuing upward, or keep serving the last row.")
@click.option("--node", help="Which agent of a combined recording (default: the first node).")
@click.option("--fault", default="none", show_default=True,
              type=click.Choice(["none", "garbage", "empty", "truncated", "slow", "error"]),
              help="Misbehave on /metrics/binary from the start (for tests; POST /_replay/fault changes it).")
def replay(recording: str, host: str, port: int, speed: float, fmt: str, loop: bool, node: str | None,
           fault: str) -> None:
    """Serve RECORDING as a live Rezolus agent (/metrics/binary, /systeminfo, ...), for trying live mode."""
    from pathlib import Path

    from rezgen.synthetic.replay import replay_recording

    replay_recording(Path(recording), host=host, port=port, speed=speed, fmt=fmt, loop=loop, node=node,
                     fault=fault, announce=click.echo)


@cli.command()
@click.argument("recordings", nargs=-1, required=True, metavar="[ALIAS=]A [ALIAS=]B")
@click.option("--json", "as_json", is_flag=True, help="Print every change as JSON instead of a table.")
@click.option("--top", default=20, show_default=True, type=click.IntRange(min=1), help="Rows of the table.")
@click.option("--dashboards", type=click.Path(file_okay=False), help="Directory of dashboard files (*.toml).")
def diff(recordings: tuple[str, ...], as_json: bool, top: int, dashboards: str | None) -> None:
    """What changed from recording A to B: every plotted series, strongest change first."""
    from pathlib import Path

    from rezgen.commands.diff import diff_recordings, format_table

    result = diff_recordings(recordings, Path(dashboards) if dashboards else None)
    click.echo(json.dumps(result, indent=1) if as_json else format_table(result, top))
