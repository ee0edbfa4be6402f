"""What changed between two recordings: every plotted series, ranked by a robust effect size.

The numbers come from the compare payloads the pages draw (`plots.compare_plot`), each side's finest level, over
the duration both recordings cover (elapsed time from each one's start). Per series: A's and B's median and
99th percentile, the relative change of the median, and the effect size

    (median B - median A) / (1.4826 * sqrt((MAD A^2 + MAD B^2) / 2))

(the difference of medians over the pooled median absolute deviation, scaled so that it reads as standard
deviations of normal noise). The spread has a floor of a thousandth of the larger median, so a series that is
flat in both recordings but moved has a large finite effect instead of an infinite one. A series all zero or
absent in both is left out; one present in only one recording is listed as appeared or disappeared.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MAD_NORMAL = 1.4826  # MAD of normal noise times this is its standard deviation
SPREAD_FLOOR = 1e-3  # of the larger median


@dataclass
class Change:
    section: str  # the section's title
    route: str
    host: str
    plot: str  # the plot's id
    title: str
    series: str  # the series' name within the plot ("" for a plot of one series)
    unit: str
    status: str  # "changed", "appeared" (B only) or "disappeared" (A only)
    a_median: float | None
    a_p99: float | None
    b_median: float | None
    b_p99: float | None
    change: float | None  # relative change of the median, (B - A) / |A|; None when A's median is 0
    effect: float  # the effect size (0 for appeared and disappeared)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def plot_changes(section: tuple[str, str], host: str, payload: dict[str, Any]) -> list[Change]:
    """The changes of every series of one compare plot payload (section: (title, route))."""
    sides = payload.get("sides")
    if not sides:
        return []
    common = min(side["duration"] for side in sides)
    per_side = [_series_values(side["data"], common) for side in sides]
    names = list(dict.fromkeys(name for values in per_side for name in values))
    out = []
    for name in names:
        a, b = (values.get(name) for values in per_side)
        a = a if a is not None and len(a) else None
        b = b if b is not None and len(b) else None
        if (a is None or not a.any()) and (b is None or not b.any()):
            continue  # all zero or absent in both
        shown = name if len(names) > 1 or payload["kind"] in ("multi", "heatmap") else ""
        row = dict(section=section[0], route=section[1], host=host, plot=payload["id"], title=payload["title"],
                   series=shown, unit=payload.get("unit") or "")
        if a is None or b is None:
            present = a if a is not None else b
            assert present is not None
            stats = _stats(present)
            out.append(Change(**row, status="appeared" if a is None else "disappeared",
                              a_median=None if a is None else stats[0], a_p99=None if a is None else stats[1],
                              b_median=None if b is None else stats[0], b_p99=None if b is None else stats[1],
                              change=None, effect=0.0))
            continue
        (a_med, a_p99, a_mad), (b_med, b_p99, b_mad) = _stats(a), _stats(b)
        out.append(Change(**row, status="changed", a_median=a_med, a_p99=a_p99, b_median=b_med, b_p99=b_p99,
                          change=(b_med - a_med) / abs(a_med) if a_med != 0 else None,
                          effect=effect_size(a_med, a_mad, b_med, b_mad)))
    return out


def effect_size(a_median: float, a_mad: float, b_median: float, b_mad: float) -> float:
    spread = MAD_NORMAL * math.sqrt((a_mad**2 + b_mad**2) / 2)
    spread = max(spread, SPREAD_FLOOR * max(abs(a_median), abs(b_median)))
    return 0.0 if spread == 0 else (b_median - a_median) / spread


def ranked(changes: list[Change]) -> list[Change]:
    """Strongest change first (by |effect|, then |relative change|); appeared, then disappeared, after them."""
    order = {"changed": 0, "appeared": 1, "disappeared": 2}
    return sorted(changes, key=lambda c: (order[c.status], -abs(c.effect),
                                          -abs(c.change) if c.change is not None else 0.0))


def _series_values(data: dict[str, Any] | None, common_ms: int) -> dict[str, np.ndarray]:
    """Each series' finite values within the common duration, from the finest level of a side's payload."""
    if data is None or "error" in data or not data.get("levels"):
        return {}
    level = data["levels"][-1]
    t = np.asarray(level["t"], dtype=np.int64)
    within = t <= common_ms
    out = {}
    for name, row in zip(data["names"], level["values"]):
        values = np.array([np.nan if v is None else v for v in row], dtype=np.float64)[within]
        out[name] = values[np.isfinite(values)]
    return out


def _stats(values: np.ndarray) -> tuple[float, float, float]:
    """Median, 99th percentile and median absolute deviation."""
    median = float(np.median(values))
    return median, float(np.percentile(values, 99)), float(np.median(np.abs(values - median)))
