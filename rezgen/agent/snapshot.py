"""Decode one Rezolus agent snapshot (`/metrics/binary`, msgpack V1/V2/V3) into series-keyed entries.

The version is told by shape alone (protocol §2.7): 5 elements with a map at [1] is V1, 6 with a map at [2] is V2,
4 with a map at [2] is V3; anything else is an error, never a silent drop. Series identity follows §2.8 and the
Parquet reader: `metric` (else the entry name) plus every metadata key that is not a property (`PROPERTY_KEYS`).

Hardening: an empty body, truncation, trailing bytes, excessive nesting (msgpack's own stack limit) or sizes
beyond `LIMITS` reject the payload with `SnapshotError` (one line). Inside a good payload every piece is
type-checked, and a bad piece — an entry, a histogram whose bucket count does not fit its grouping/max-value
powers, a V3 group with a wrong arity or hash, a group whose schema is unknown — is dropped and reported in
`Snapshot.problems` while the rest survives.

Speed: no cyclic GC runs during a decode (see `gcpause.paused_gc`). V1/V2 bodies are first tried by `fast`
(one `msgpack.unpackb`, counters and gauges checked and kept as columns); anything unusual there makes it give
up, and the careful path below (one streaming msgpack pass, every piece checked and reported) decodes the body
instead, so results and messages are the careful path's. Identities are memoised by entry name and by whole
lists (see `pieces.Memo`); V3 schemas verified once per distinct bytes (see `schema.SchemaCache`). Pass the same
`SchemaCache` for every snapshot of one agent.
"""

from __future__ import annotations

from typing import Any

import msgpack

from rezgen.agent.fast import FAST_HEADERS, LIMITS, decode_fast
from rezgen.agent.pieces import (
    I64,
    U64,
    Entry,
    Group,
    Identity,
    Memo,
    Problems,
    Snapshot,
    SnapshotError,
    histogram,
    identity,
    kind_name,
    time_pair,
    window,
)
from rezgen.agent.schema import SchemaCache, _Context, decode_groups
from rezgen.gcpause import paused_gc

__all__ = ["Entry", "Group", "SchemaCache", "Snapshot", "SnapshotError", "decode"]

_MEMO = Memo()  # identities when the caller keeps no SchemaCache


def decode(payload: bytes, schemas: SchemaCache | None = None) -> Snapshot:
    """Decode one `/metrics/binary` body. `schemas` names schemaless V3 groups and makes resent schemas free.

    Raises SnapshotError for an empty, truncated or undecodable body, trailing bytes or an unknown shape.
    """
    if not payload:
        raise SnapshotError("empty body")
    with paused_gc():
        return _decode_body(payload, schemas)


def _decode_body(payload: bytes, schemas: SchemaCache | None) -> Snapshot:
    if payload[0] in FAST_HEADERS:
        fast = decode_fast(payload, schemas.identities if schemas is not None else _MEMO)
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
            resolved = identity(memo, name, metadata)
            if isinstance(resolved, str):
                problems.add(f"{kind} {name!r:.60}: {resolved}; dropped")
                continue
            found = resolved
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
            if not isinstance(parsed, str):
                append(Entry(name, found[1], parsed[1], parsed[0], found[2], found[0], span))
                continue
            problem = parsed
        problems.add(f"{kind} {name!r:.60}: {problem}; dropped")
