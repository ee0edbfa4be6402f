"""`rezgen inspect`: what a recording holds, as a report for people or JSON for programs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rezgen.pages.catalog import metric_catalog, metric_summary
from rezgen.recording.reader import Recording

LABELS_WIDTH = 48
HOST_LABELS = ("node", "instance")


def describe_recording(recording: Recording) -> dict[str, Any]:
    recording.check_histograms()
    start, end = recording.time_range
    footer = recording.footer
    catalog = metric_catalog(recording.store, footer.describe)
    nodes = {f"{key}={value}" for entry in catalog for key in HOST_LABELS for value in entry["labels"].get(key, ())}
    return {
        "path": str(recording.path),
        "start": _iso(start), "end": _iso(end), "start_ns": start, "end_ns": end,
        "duration_s": (end - start) / 1e9,
        "rows": recording.rows, "row_groups": recording.row_groups,
        "interval_ms": recording.interval_ns / 1e6,
        "sources": footer.sources, "versions": footer.versions(),
        "nodes": sorted(nodes),
        "systeminfo": footer.systeminfo is not None,
        "events": len(footer.events),
        "warnings": recording.warnings,
        "metrics": [metric_summary(entry) for entry in catalog],
    }


def _iso(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_report(info: dict[str, Any]) -> str:
    lines = [
        f"{info['path']}",
        f"  time      {info['start']} .. {info['end']} ({info['duration_s']:.1f} s, {info['rows']} rows, "
        f"{info['row_groups']} row group{'s' if info['row_groups'] != 1 else ''})",
        f"  interval  {info['interval_ms']:g} ms",
        "  sources   " + (", ".join(f"{s} {info['versions'].get(s, '')}".strip() for s in info["sources"]) or "-"),
        "  nodes     " + (", ".join(info["nodes"]) or "-"),
    ]
    for warning in info["warnings"]:
        lines.append(f"  warning   {warning}")
    lines.append("")
    rows = [("METRIC", "TYPE", "UNIT", "SERIES", "LABELS", "DESCRIPTION")]
    for m in info["metrics"]:
        labels = ",".join(f"{k}({n})" for k, n in m["labels"].items())
        labels = labels if len(labels) <= LABELS_WIDTH else labels[: LABELS_WIDTH - 1] + "…"
        rows.append((m["name"], m["type"], m["unit"] or "-", str(m["series"]), labels or "-",
                     (m["description"] or "").replace("\n", " ")))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    return "\n".join(line.rstrip() for line in lines)
