"""Decode one Rezolus agent snapshot (`/metrics/binary`, msgpack V1/V2/V3) into series-keyed entries.

The version is told by shape alone (protocol §2.7): 5 elements with a map at [1] is V1, 6 with a map at [2] is V2,
4 with a map at [2] is V3; anything else is an error, never a silent drop. Series identity follows §2.8 and the
Parquet reader: `metric` (else the entry name) plus every metadata key that is not a property (`PROPERTY_KEYS`).

Hardening: an empty body, truncation, trailing bytes, excessive nesting (msgpack's own stack limit) or sizes
beyond `LIMITS` reject the payload with `SnapshotError` (one line). Inside a good payload every piece is
type-checked, and a bad piece — an entry, a histogram whose bucket count does not fit its grouping/max-value
powers, a V3 group with a wrong arity or hash, a group whose schema is unknown — is dropped and reported in
`Snapshot.problems` while the rest survives.

Speed: no cyclic GC runs during a decode (see `pieces.paused_gc`); V1/V2 bodies are first tried in one `msgpack.unpackb` call (tuples: the cheapest containers) and one tight
loop per kind; anything unusual there — an error, a problem to report, an unknown shape — makes it give up, and
the careful path below (one streaming msgpack pass, every piece checked and reported) decodes the body instead,
so results and messages are the careful path's. Identities are memoised by entry name (see `pieces.identity`);
V3 schemas verified once per distinct bytes (see `schema.SchemaCache`). Pass the same `SchemaCache` for every
snapshot of one agent.
"""

from __future__ import annotations

from array import array
from dataclasses import fields
from typing import Any

import msgpack
import numpy as np

from .pieces import (I64, U64, Entry, Group, Identity, Problems, Snapshot, SnapshotError, histogram, identity,
                     kind_name, layout_of, paused_gc, time_pair, window)
from .schema import SchemaCache, _Context, decode_groups

__all__ = ["decode", "Entry", "Group", "Snapshot", "SnapshotError", "SchemaCache"]

# Real snapshots: ≤ ~3,000 entries of ≤ ~10 labels, histograms of 496 (gp=3) to 7,424 (gp=7) buckets, cgroup
# paths ≤ 4 KiB. Array and map lengths are also bounded by the body size (msgpack checks a header against it).
LIMITS = dict(max_str_len=1 << 16, max_bin_len=1 << 16, max_array_len=1 << 22, max_map_len=1 << 12,
              max_ext_len=1 << 10)
_MEMO: dict[Any, Identity] = {}  # identities when the caller keeps no SchemaCache


def decode(payload: bytes, schemas: SchemaCache | None = None) -> Snapshot:
    """Decode one `/metrics/binary` body. `schemas` names schemaless V3 groups and makes resent schemas free.

    Raises SnapshotError for an empty, truncated or undecodable body, trailing bytes or an unknown shape.
    """
    if not payload:
        raise SnapshotError("empty body")
    with paused_gc():
        return _decode_body(payload, schemas)


def _decode_body(payload: bytes, schemas: SchemaCache | None) -> Snapshot:
    if payload[0] in _FAST_HEADERS:
        fast = _decode_fast(payload, schemas.identities if schemas is not None else _MEMO)
        if fast is not None:
            return fast
    unpacker = msgpack.Unpacker(strict_map_key=False, max_buffer_size=len(payload), **LIMITS)
    unpacker.feed(payload)
    try:
        snapshot = _decode(unpacker, payload, schemas)
    except msgpack.OutOfData:
        raise SnapshotError(f"truncated snapshot ({len(payload)} bytes)") from None
    except msgpack.StackError:
        raise SnapshotError("not a snapshot: nested too deeply") from None
    except (ValueError, TypeError) as exc:  # msgpack format, limit and UTF-8 errors; an unhashable map key
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SnapshotError(f"not a snapshot: {first}") from None
    if unpacker.tell() != len(payload):
        raise SnapshotError(f"trailing bytes after the snapshot ({len(payload) - unpacker.tell()} bytes)")
    return snapshot


def _decode(u: msgpack.Unpacker, payload: bytes, schemas: SchemaCache | None) -> Snapshot:
    try:
        count = u.read_array_header()
    except ValueError:
        raise SnapshotError(f"not a snapshot: the body is not a msgpack array (first byte 0x{payload[0]:02x})") \
            from None
    if count not in (4, 5, 6):
        raise SnapshotError(f"unknown snapshot format: an array of {count} elements (not V1, V2 or V3)")
    head = [u.unpack() for _ in range(3)]
    problems = Problems()
    memo = schemas.identities if schemas is not None else _MEMO
    if count == 4 and type(head[2]) is dict:
        snap = _envelope(3, head[0], head[1], head[2], problems)
        decode_groups(u, _Context(payload, schemas, memo, snap, problems))
    else:
        rest = [u.unpack() for _ in range(count - 3)]
        if count == 5 and type(head[1]) is dict:
            snap = _envelope(1, head[0], None, head[1], problems)
            lists = [head[2], rest[0], rest[1]]
        elif count == 6 and type(head[2]) is dict:
            snap = _envelope(2, head[0], head[1], head[2], problems)
            lists = rest
        else:
            shape = ", ".join(kind_name(x) for x in head + rest)
            raise SnapshotError(f"unknown snapshot format: [{shape}] (not V1, V2 or V3)")
        for kind, items, out in zip(("counter", "gauge", "histogram"), lists,
                                    (snap.counters, snap.gauges, snap.histograms)):
            _entries(memo, kind, items, out, problems)
    snap.problems = problems.finish()
    return snap


def _envelope(version: int, systemtime: Any, duration: Any, metadata: dict, problems: Problems) -> Snapshot:
    timestamp = time_pair(systemtime)
    if timestamp is None:
        raise SnapshotError(f"V{version} snapshot with an invalid systemtime {systemtime!r:.60}")
    duration_ns = None
    if version > 1:
        duration_ns = time_pair(duration)
        if duration_ns is None:
            problems.add(f"invalid duration {duration!r:.60}; ignored")
    meta: dict[str, str] = {}
    for key, value in metadata.items():
        if type(key) is str and type(value) is str:
            meta[key] = value
        else:
            problems.add(f"snapshot metadata {key!r:.40}: {value!r:.40} is not str → str; ignored")
    return Snapshot(version, timestamp, duration_ns, meta, [], [], [])


def _entries(memo: dict[Any, Identity], kind: str, items: Any, out: list[Entry], problems: Problems) -> None:
    """V1/V2 entries `[name, value, metadata(, window)]` of one kind; the hot loop of a decode."""
    if type(items) is not list:
        problems.add(f"{kind}s are not an array; none decoded")
        return
    append = out.append
    get = memo.get
    counter, gauge = kind == "counter", kind == "gauge"
    for item in items:
        if type(item) is list and len(item) == 3:
            name, value, metadata = item
            span = None
        elif type(item) is list and len(item) == 4:
            name, value, metadata, span_value = item
            span = window(span_value)
            if span is None:
                problems.add(f"{kind} {name!r:.60}: invalid window; dropped")
                continue
        else:
            problems.add(f"{kind} entry is not a 3- or 4-element array; dropped")
            continue
        # Inline fast path of `identity`: a non-empty str name whose metadata is what it was last time.
        found = get(name) if type(name) is str and name else None
        if found is None or found[0] != metadata:
            found = identity(memo, name, metadata)
            if type(found) is str:
                problems.add(f"{kind} {name!r:.60}: {found}; dropped")
                continue
        if counter:
            if type(value) is int and 0 <= value < U64:
                append(Entry(name, found[1], value, None, found[2], found[0], span))
                continue
            problem = f"value {value!r:.40} is not a u64"
        elif gauge:
            if type(value) is int and -I64 <= value < I64:
                append(Entry(name, found[1], value, None, found[2], found[0], span))
                continue
            problem = f"value {value!r:.40} is not an i64"
        else:
            parsed = histogram(value)
            if type(parsed) is not str:
                append(Entry(name, found[1], parsed[1], parsed[0], found[2], found[0], span))
                continue
            problem = parsed
        problems.add(f"{kind} {name!r:.60}: {problem}; dropped")


# --- the fast path: well-formed V1/V2 -----------------------------------------------------------------------------

_FAST_HEADERS = (0x95, 0x96)  # msgpack fixarray of 5 (V1) or 6 (V2) elements


def _decode_fast(payload: bytes, memo: dict[Any, Identity]) -> Snapshot | None:
    """A V1/V2 snapshot with nothing to report, or None (then the careful path decodes it and says why)."""
    try:
        body = msgpack.unpackb(payload, use_list=False, strict_map_key=False, **LIMITS)
    except Exception:  # noqa: BLE001 - the careful path reports it
        return None
    if type(body) is not tuple:
        return None
    if len(body) == 6 and type(body[2]) is dict:
        version, duration, metadata, lists = 2, body[1], body[2], body[3:]
    elif len(body) == 5 and type(body[1]) is dict:
        version, duration, metadata, lists = 1, None, body[1], body[2:]
    else:
        return None
    timestamp = _pair(body[0])
    duration_ns = _pair(duration) if version > 1 else None
    if timestamp is None or (version > 1 and duration_ns is None):
        return None
    for key, value in metadata.items():
        if type(key) is not str or type(value) is not str:
            return None
    snap = Snapshot(version, timestamp, duration_ns, metadata, [], [], [])
    if _scalars_fast(memo, lists[0], snap.counters, 0, U64) and _scalars_fast(memo, lists[1], snap.gauges, -I64, I64) \
            and _histograms_fast(memo, lists[2], snap.histograms):
        return snap
    return None


def _pair(value: Any) -> int | None:
    """`time_pair` for tuples."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and 0 <= value[0] < U64 and 0 <= value[1] < 1_000_000_000:
        return value[0] * 1_000_000_000 + value[1]
    return None


def _span(value: Any) -> tuple[int, int] | None:
    """`window` for tuples."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and 0 <= value[0] < U64 and 0 <= value[1] < U64:
        return value
    return None


def _identity_fast(memo: dict[Any, Identity], name: Any, metadata: Any) -> Identity | None:
    if type(name) is not str:  # a tuple name could even match a memo slot: leave it to the careful path
        return None
    found = identity(memo, name, metadata)
    return None if type(found) is str else found


# The fast path fills Entry's slots itself: a call to the dataclass's __init__ costs 3x the rest of an entry's work.
_ENTRY_FIELDS = ("name", "key", "value", "layout", "unit", "metadata", "window")
assert tuple(f.name for f in fields(Entry)) == _ENTRY_FIELDS, "update the fast path's Entry construction"


def _scalars_fast(memo: dict[Any, Identity], items: Any, out: list[Entry], low: int, high: int) -> bool:
    if type(items) is not tuple:
        return False
    append = out.append
    get = memo.get
    new = object.__new__
    for item in items:
        try:
            name, value, metadata = item
            span = None
        except (TypeError, ValueError):  # not 3 elements; anything else that unpacks in 3 fails a check below
            if type(item) is not tuple or len(item) != 4:
                return False
            name, value, metadata, span = item
            span = _span(span)
            if span is None:
                return False
        if type(value) is not int or not low <= value < high:
            return False
        found = get(name) if type(name) is str and name else None
        if found is None or found[0] != metadata:
            found = _identity_fast(memo, name, metadata)
            if found is None:
                return False
        entry = new(Entry)  # Entry(name, key, value, None, unit, metadata, span), without a call to __init__
        entry.name = name
        entry.key = found[1]
        entry.value = value
        entry.layout = None
        entry.unit = found[2]
        entry.metadata = found[0]
        entry.window = span
        append(entry)
    return True


def _histograms_fast(memo: dict[Any, Identity], items: Any, out: list[Entry]) -> bool:
    if type(items) is not tuple:
        return False
    for item in items:
        if type(item) is not tuple:
            return False
        if len(item) == 3:
            name, value, metadata = item
            span = None
        elif len(item) == 4:
            name, value, metadata, span = item
            span = _span(span)
            if span is None:
                return False
        else:
            return False
        if type(value) is not tuple or len(value) != 2:
            return False
        config, buckets = value
        if type(config) is not tuple or len(config) != 8 or type(buckets) is not tuple:
            return False
        for x in config:
            if type(x) is not int:
                return False
        layout = layout_of(config[1], config[2])
        if layout is None or len(buckets) != layout.buckets:
            return False
        try:
            counts = np.frombuffer(array("Q", buckets), dtype=np.uint64)
        except (TypeError, OverflowError):
            return False
        found = memo.get(name) if type(name) is str and name else None
        if found is None or found[0] != metadata:
            found = _identity_fast(memo, name, metadata)
            if found is None:
                return False
        out.append(Entry(name, found[1], counts, layout, found[2], found[0], span))
    return True
