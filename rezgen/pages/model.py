"""What a page is made of, for the static site and the live server alike: template contexts and data payloads.

A section page's HTML lists its charts (only those with data) and what is "not in this recording"; its data is a
classic script that hands a payload to `REZGEN.register`, so the same page works from file:// and from a server.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import jinja2
import orjson

from rezgen import __version__
from rezgen.dashboards import Plot, Section
from rezgen.pages.services import absent_kpis
from rezgen.plotdata.evaluation import Scope
from rezgen.plotdata.plots import TimeRange
from rezgen.plotdata.window import DEFAULT_RANGE, RANGES, range_ns

SINGLE_HOST = "_"  # the host of data with a single one, in data file paths and URLs ("data/_/overview.js")
NON_ASCII = re.compile(r"[^\x00-\x7f]")


def host_scope(host: str | None, hosts: list[str] | None = None) -> Scope:
    """The labels that select a host's series, for a host as pages and the API name it: none for the single host
    (`SINGLE_HOST`, "" or None) nor when the data (`hosts`, when given) has a single host; else its `node`."""
    if not host or host == SINGLE_HOST or (hosts is not None and not hosts):
        return ()
    return (("node", host),)


def plot_summary(plot: Plot) -> dict[str, Any]:
    return {"id": plot.id, "title": plot.title, "description": plot.description, "width": plot.width,
            "kind": plot.kind, "unit": plot.unit}


def section_context(section: Section, with_data: set[str], absent: set[str]) -> dict[str, Any]:
    """The section template's `section`: groups of the plots with data, and the plots whose metrics are absent
    (a plot left out for another reason, such as a per-CPU chart of a one-CPU host, is in neither)."""
    groups = [{"name": g.name, "description": g.description,
               "plots": [plot_summary(p) for p in g.plots if p.id in with_data]} for g in section.groups
              if not g.hidden]
    return {"groups": [g for g in groups if g["plots"]],
            "missing": [{"id": p.id, "title": p.title, "query": p.query} for p in section.plots if p.id in absent]}


def absent_plots(section: Section, store: Any) -> set[str]:
    """Plots whose query names a metric the store does not have (for a service, labels it does not have too)."""
    if section.source is not None:
        return absent_kpis(section, store)
    return {p.id for p in section.plots if not all(store.series_of(name) for name in p.metrics)}


def span_json(span: TimeRange) -> dict[str, int]:
    """A payload's `range`: what its plots were evaluated over, in unix ms."""
    return {"start": span.start_ns // 1_000_000, "end": span.end_ns // 1_000_000, "step": span.step_ns // 1_000_000}


def section_payload(section: Section, plots: dict[str, dict[str, Any]], span: TimeRange,
                    events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "route": section.route, "title": section.title,
        "range": span_json(span),
        "groups": [{"name": g.name, "plots": [plots[p.id] for p in g.plots if p.id in plots]}
                   for g in section.groups],
        "events": events,
        **extra,
    }


def site_context(title: str, start_ns: int, end_ns: int, sections: list[tuple[Section, int]],
                 hosts: list[str]) -> dict[str, Any]:
    """The templates' `site`: navigation (sections with data and their chart counts) and host choice."""
    return {
        "title": title,
        "subtitle": f"{_utc(start_ns)} – {_utc(end_ns)} UTC",
        "sections": [{"route": s.route, "title": s.title, "href": "index.html" if i == 0 else f"{s.route}.html",
                      "count": count} for i, (s, count) in enumerate(sections)],
        "pages": [{"href": "metrics.html", "title": "Metrics"}, {"href": "system.html", "title": "System"},
                  {"href": "query.html", "title": "Query"}]
        + ([{"href": "fleet.html", "title": "Fleet"}] if len(hosts) > 1 else []),
        "hosts": hosts if hosts != [SINGLE_HOST] else [],
        "generator": f"rezgen {__version__}",
    }


def metric_payload(name: str, plot: Plot, data: dict[str, Any] | None, span: TimeRange) -> dict[str, Any]:
    """The data of a metric browser's chart (its default query, see pages.catalog)."""
    return {"name": name, "query": plot.query, "plot": data, "range": span_json(span)}


def section_page(section: Section) -> dict[str, Any]:
    return {"route": section.route, "title": section.title, "kind": "section",
            "data": f"data/{{host}}/{section.route}.js", "root": ""}


def other_page(kind: str) -> dict[str, Any]:
    """The template's `page` of the metric browser ("metrics") or the system page ("system")."""
    return {"route": kind, "title": kind.title(), "kind": kind, "data": "", "root": ""}


# A live page's controls come from here, rendered into the page (base.html's `live-config`), so its scripts and the
# server never disagree on a range or a default.
RANGE_NAMES = {"5m": ("Last 5 minutes", "last 5 min"), "15m": ("Last 15 minutes", "last 15 min"),
               "1h": ("Last 1 hour", "last 1 h"), "6h": ("Last 6 hours", "last 6 h"),
               "24h": ("Last 24 hours", "last 24 h")}  # (the picker's option, the page's range line)
REFRESH_MS = ((1000, "1s"), (5000, "5s"), (10000, "10s"), (30000, "30s"), (60000, "1m"))  # how often points apply
DEFAULT_REFRESH_MS = 1000
STREAM = "api/stream"


def live_config(interval_ns: int, retention_ns: int) -> dict[str, Any]:
    """The page's `live-config`: the ranges within the retention (at least the shortest), times in ms."""
    ranges = [r for r in RANGES if range_ns(r) <= retention_ns] or [RANGES[0]]
    return {
        "interval_ms": interval_ns // 1_000_000, "retention_ms": retention_ns // 1_000_000, "stream": STREAM,
        "ranges": [{"value": r, "ms": range_ns(r) // 1_000_000, "label": RANGE_NAMES[r][0], "name": RANGE_NAMES[r][1]}
                   for r in ranges],
        "default_range": DEFAULT_RANGE if DEFAULT_RANGE in ranges else ranges[0],
        "refresh": [{"ms": ms, "label": label} for ms, label in REFRESH_MS],
        "default_refresh_ms": DEFAULT_REFRESH_MS,
    }


def render(env: jinja2.Environment, template: str, **context: Any) -> str:
    for name in ("live", "section", "metrics", "systeminfo"):
        context.setdefault(name, None if name != "live" else False)
    context.setdefault("events", [])
    return env.get_template(template).render(**context)


def data_script(key: str, payload: dict[str, Any]) -> bytes:
    """A classic script registering the payload (JSON is valid JavaScript), as ASCII bytes.

    orjson writes the megabytes of numbers of a site several times faster than `json`; its output is ASCII
    once the few non-ASCII characters (only ever inside strings) are escaped as `json` would. It stays bytes: a
    site's data would otherwise be decoded, copied and encoded again on its way to the file."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    if not body.isascii():
        body = NON_ASCII.sub(lambda match: json.dumps(match.group())[1:-1], body.decode()).encode()
    # Label values are untrusted: no "<" may reach a script, should this ever be inlined into HTML.
    return b"REZGEN.register(%b,%b);\n" % (_safe(json.dumps(key).encode()), _safe(body))


def _safe(text: bytes) -> bytes:
    return text.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


def _utc(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
