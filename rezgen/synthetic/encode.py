"""Encode snapshots as a Rezolus agent does (protocol §2.1, §2.9): the fake agent's side of the wire.

- V2 is the form every consumer since 2025 decodes: `[systemtime, duration, metadata, counters, gauges,
  histograms]`, 3-element entries, never a window (a 4th element breaks every released `rezolus record`).
- V3 puts entries into windowless `<sampler>/main` groups (by each entry's `sampler` label; entries without one
  share `default/main`), with the schema sent every tick as the agent does. Schema maps are key-sorted because
  the hash covers their exact bytes.
- `to_json` is the `/metrics/json` form of either (§2.10).

Python's `msgpack.packb` picks the smallest int and str markers, exactly like rmp-serde, so the bytes match what
an agent would send for the same content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import msgpack
import numpy as np

from rezgen.agent.pieces import Entry, Snapshot
from rezgen.agent.schema import schema_hash
from rezgen.store.histogram import Layout

DEFAULT_GROUP = "default/main"
_HASH_MEMO: dict[bytes, tuple[int, int]] = {}  # schema bytes → hash: replayed schemas repeat row after row
_HASH_MEMO_LIMIT = 256


def h2_config(layout: Layout) -> list[int]:
    """`[max, grouping_power, max_value_power, cutoff_power, cutoff_value, lower_bin_count, upper_bin_divisions,
    upper_bin_count]` as the histogram crate (1.x) serialises it."""
    g, m = layout.grouping_power, layout.max_value_power
    top = (1 << 64) - 1 if m == 64 else (1 << m) - 1
    return [top, g, m, g + 1, 1 << (g + 1), 1 << (g + 1), 1 << g, (m - g - 1) << g]


def _time_pair(ns: int | None) -> list[int]:
    ns = ns or 0
    return [ns // 1_000_000_000, ns % 1_000_000_000]


def _histogram(entry: Entry) -> list[Any]:
    assert entry.layout is not None, f"histogram {entry.name!r} has no layout"
    value = entry.value  # a decoded histogram's is an array; one built by hand may be a list of counts
    buckets = value.tolist() if isinstance(value, np.ndarray) else list(cast(Iterable[int], value))
    return [h2_config(entry.layout), buckets]


def _plain(metadata: Mapping[str, str]) -> dict[str, str]:
    return metadata if type(metadata) is dict else dict(metadata)


def _sorted(metadata: Mapping[str, str]) -> dict[str, str]:
    # Code-point order of str keys is the bytewise order of their UTF-8, which is the order Rust's BTreeMap uses.
    return dict(sorted(metadata.items()))


def encode_v2(snapshot: Snapshot) -> bytes:
    return msgpack.packb([
        _time_pair(snapshot.timestamp_ns), _time_pair(snapshot.duration_ns), _plain(snapshot.metadata),
        [[e.name, int(e.value), _plain(e.metadata)] for e in snapshot.counters],
        [[e.name, int(e.value), _plain(e.metadata)] for e in snapshot.gauges],
        [[e.name, _histogram(e), _plain(e.metadata)] for e in snapshot.histograms],
    ])


def _group_name(entry: Entry) -> str:
    sampler = entry.metadata.get("sampler")
    return f"{sampler}/main" if sampler else DEFAULT_GROUP


def _groups(snapshot: Snapshot) -> list[tuple[str, list[list[Entry]]]]:
    groups: dict[str, list[list[Entry]]] = {}
    for kind, entries in enumerate((snapshot.counters, snapshot.gauges, snapshot.histograms)):
        for entry in entries:
            groups.setdefault(_group_name(entry), [[], [], []])[kind].append(entry)
    return sorted(groups.items())


def _hash_of(raw: bytes) -> tuple[int, int]:
    found = _HASH_MEMO.get(raw)
    if found is None:
        found = schema_hash(raw)
        if len(_HASH_MEMO) >= _HASH_MEMO_LIMIT:
            _HASH_MEMO.clear()
        _HASH_MEMO[raw] = found
    return found


def _v3_group(name: str, kinds: list[list[Entry]]) -> tuple[list[Any], list[Any], tuple[int, int]]:
    """(schema, values, hash) of one windowless group."""
    schema = [[[e.name, _sorted(e.metadata)] for e in entries] for entries in kinds]
    values = [[int(e.value) for e in kinds[0]], [int(e.value) for e in kinds[1]], [_histogram(e) for e in kinds[2]]]
    return schema, values, _hash_of(msgpack.packb(schema))


def encode_v3(snapshot: Snapshot) -> bytes:
    groups = []
    for name, kinds in _groups(snapshot):
        schema, values, hash_ = _v3_group(name, kinds)
        groups.append([name, list(hash_), schema, None, *values])
    return msgpack.packb([_time_pair(snapshot.timestamp_ns), _time_pair(snapshot.duration_ns),
                          _plain(snapshot.metadata), groups])


def encode(snapshot: Snapshot, version: int) -> bytes:
    if version == 2:
        return encode_v2(snapshot)
    if version == 3:
        return encode_v3(snapshot)
    raise ValueError(f"cannot encode snapshot version {version} (2 or 3)")


# --- /metrics/json ----------------------------------------------------------------------------------------------

def _json_histogram(entry: Entry) -> dict[str, Any]:
    assert entry.layout is not None, f"histogram {entry.name!r} has no layout"
    config = dict(zip(("max", "grouping_power", "max_value_power", "cutoff_power", "cutoff_value",
                       "lower_bin_count", "upper_bin_divisions", "upper_bin_count"), h2_config(entry.layout)))
    return {"config": config, "buckets": _histogram(entry)[1]}


def _json_entries(entries: Iterable[Entry], histogram: bool = False) -> list[dict[str, Any]]:
    return [{"name": e.name, "value": _json_histogram(e) if histogram else int(e.value),
             "metadata": _plain(e.metadata)} for e in entries]


def to_json(snapshot: Snapshot, version: int) -> dict[str, Any]:
    """The agent's `/metrics/json` document for this snapshot (V2 or V3 shape)."""
    secs, nanos = _time_pair(snapshot.timestamp_ns)
    dsecs, dnanos = _time_pair(snapshot.duration_ns)
    out: dict[str, Any] = {"systemtime": {"secs_since_epoch": secs, "nanos_since_epoch": nanos},
                           "duration": {"secs": dsecs, "nanos": dnanos}, "metadata": _plain(snapshot.metadata)}
    if version == 2:
        out.update(counters=_json_entries(snapshot.counters), gauges=_json_entries(snapshot.gauges),
                   histograms=_json_entries(snapshot.histograms, histogram=True))
        return out
    groups = []
    for name, kinds in _groups(snapshot):
        schema, values, hash_ = _v3_group(name, kinds)
        descs = [[{"name": n, "metadata": md} for n, md in s] for s in schema]
        groups.append({"name": name, "schema_hash": list(hash_),
                       "schema": dict(zip(("counters", "gauges", "histograms"), descs)), "window": None,
                       "counters": values[0], "gauges": values[1],
                       "histograms": [_json_histogram(e) for e in kinds[2]]})
    out["groups"] = groups
    return out
