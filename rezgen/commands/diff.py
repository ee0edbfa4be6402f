"""`rezgen diff A B`: the What-changed table of a compare on the command line (or as JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rezgen.commands.compare import open_pair
from rezgen.compare.changes import Change
from rezgen.dashboards import load_dashboards
from rezgen.site.compare import compare_sections


def diff_recordings(arguments: tuple[str, ...], dashboards: Path | None = None) -> dict[str, Any]:
    """{a, b, changes: [...]}: every plotted series, ranked, as the What-changed page lists them."""
    a, b, recording_a, recording_b = open_pair(arguments)
    _, _, changes = compare_sections(a, b, recording_a, recording_b, load_dashboards(dashboards))
    return {"a": {"alias": a.alias, "path": str(a.path)}, "b": {"alias": b.alias, "path": str(b.path)},
            "changes": [change.to_json() for change in changes]}


def format_table(result: dict[str, Any], top: int) -> str:
    """The first `top` changes as a text table (raw numbers in the series' unit)."""
    a, b = result["a"]["alias"], result["b"]["alias"]
    rows = [["#", "section", "chart", "series", "host", f"{a} median", f"{b} median", "change", "effect"]]
    for rank, change in enumerate(result["changes"][:top], 1):
        c = Change(**change)
        if c.status == "changed":
            moved = ["—" if c.change is None else f"{100 * c.change:+.1f}%", f"{c.effect:+.2f}"]
        else:
            moved = [c.status, f"({b if c.status == 'appeared' else a} only)"]
        rows.append([str(rank), c.route, c.title, c.series or "", "" if c.host == "_" else c.host,
                     _number(c.a_median), _number(c.b_median), *moved])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    total = len(result["changes"])
    if total > top:
        lines.append(f"({total - top} more; --top N shows more, --json all)")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"
