"""File-level facts from a recording's Parquet footer (format doc §1.7–1.8).

Every value is a string; several are JSON documents. Nothing here is trusted to be well formed: a key that does
not parse is reported in `warnings` and otherwise ignored, because the data columns are still readable.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

# Keys of a per_source_metadata entry that describe the source itself; any other object-valued key is a node or
# instance entry.
SOURCE_FIELDS = frozenset(
    {"version", "role", "node", "instance", "systeminfo", "first_sample_ns", "last_sample_ns", "descriptions",
     "sampler_status", "service_queries"}
)
INTERNAL_KEYS = frozenset({"ARROW:schema"})
DESCRIPTION_SUFFIXES = ("_total", "_created", "_sum", "_count", "_bucket")
MIN_INTERVAL_MS = 1e-3  # a microsecond
MAX_INTERVAL_MS = 7 * 86_400_000.0  # a week


class Notice(str):
    """A warning that what rezgen shows differs from what the file says (rows or metrics left out, another
    sampling interval): said on stderr as the recording is opened, not only listed by `inspect`."""


@dataclass
class SourceInfo:
    name: str
    version: str | None = None
    role: str | None = None
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # node or instance -> its fields


@dataclass
class Footer:
    raw: dict[str, str]
    interval_ms: float | None = None
    sources: list[str] = field(default_factory=list)
    version: str | None = None
    systeminfo: dict[str, Any] | None = None
    descriptions: dict[str, str] = field(default_factory=dict)
    per_source: dict[str, SourceInfo] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    pinned_node: str | None = None
    warnings: list[str] = field(default_factory=list)

    def describe(self, metric: str) -> str | None:
        """Help text for a metric; Prometheus family names need their sample suffix stripped."""
        if metric in self.descriptions:
            return self.descriptions[metric]
        for suffix in DESCRIPTION_SUFFIXES:
            if metric.endswith(suffix) and metric[: -len(suffix)] in self.descriptions:
                return self.descriptions[metric[: -len(suffix)]]
        return None

    def versions(self) -> dict[str, str]:
        out = {name: info.version for name, info in self.per_source.items() if info.version}
        for name, info in self.per_source.items():
            for member in info.members.values():
                if name not in out and isinstance(member.get("version"), str):
                    out[name] = member["version"]
        if self.version and len(self.sources) == 1:
            out.setdefault(self.sources[0], self.version)
        return out


def parse_footer(metadata: dict[bytes, bytes] | None) -> Footer:
    raw = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in (metadata or {}).items()}
    raw = {k: v for k, v in raw.items() if k not in INTERNAL_KEYS}
    footer = Footer(raw=raw)

    def load(key: str, kind: type) -> Any:
        if key not in raw:
            return None
        try:
            value = json.loads(raw[key])
        except ValueError:
            footer.warnings.append(f"footer key {key!r} is not valid JSON; ignored")
            return None
        if not isinstance(value, kind):
            footer.warnings.append(f"footer key {key!r} is not a JSON {kind.__name__}; ignored")
            return None
        return value

    if "sampling_interval_ms" in raw:
        try:
            interval = float(raw["sampling_interval_ms"])
        except ValueError:
            interval = math.nan
        # NaN fails both comparisons. Out of range, the interval would overflow the nanosecond grids (1e300) or
        # round to nothing; the timestamps' spacing is used instead.
        if MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
            footer.interval_ms = interval
        else:
            footer.warnings.append(Notice(f"sampling_interval_ms {raw['sampling_interval_ms']!r} is not a number of "
                                          f"milliseconds from {MIN_INTERVAL_MS:g} to {MAX_INTERVAL_MS:g}; ignored"))
    source = raw.get("source")
    if source is not None:
        if source.startswith("["):
            footer.sources = [str(s) for s in (load("source", list) or [])]
        else:
            footer.sources = [source]
    footer.version = raw.get("version")
    footer.systeminfo = load("systeminfo", dict)
    footer.descriptions = {str(k): str(v) for k, v in (load("descriptions", dict) or {}).items()}
    footer.pinned_node = raw.get("pinned_node")
    for name, entry in (load("per_source_metadata", dict) or {}).items():
        if isinstance(entry, dict):
            footer.per_source[name] = _source_info(name, entry)
    events = load("events", dict)
    if events is not None:
        footer.events = [e for e in events.get("events", []) if isinstance(e, dict) and "timestamp" in e]
    return footer


def _source_info(name: str, entry: dict[str, Any]) -> SourceInfo:
    info = SourceInfo(name=name)
    for key, value in entry.items():
        if key == "version" and isinstance(value, str):
            info.version = value
        elif key == "role" and isinstance(value, str):
            info.role = value
        elif key not in SOURCE_FIELDS and isinstance(value, dict):
            info.members[key] = value
    return info
