"""V3 groups (protocol §2.6): the FNV-1a-128 schema hash, the receiver's schema cache, and flattening.

A group names its values through a schema `[counter_descs, gauge_descs, histogram_descs]` (desc = `[name, sorted
map]`), content-addressed by the FNV-1a-128 hash of the schema's msgpack bytes. The receiver rules: a sent schema
must fit the value arrays and its hash before it is used and cached under (group name, hash); a group sent
without a schema is named from the cache or not at all; a bad group is dropped whole and its siblings kept.

Hashing is byte-at-a-time Python (~0.1-0.3 µs per byte), so the cache also keeps each schema's exact bytes: a
group resending a schema already verified costs one bytes comparison, not a hash.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgpack

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
    window,
)
from rezgen.store.model import SeriesKey

FNV128_OFFSET = 0x6C62272E07BB014262B821756295C58D
FNV128_PRIME = 0x0000000001000000000000000000013B
_MASK128 = (1 << 128) - 1
_MASK64 = (1 << 64) - 1


def fnv1a_128(data: bytes) -> int:
    h = FNV128_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV128_PRIME) & _MASK128
    return h


def schema_hash(schema_bytes: bytes) -> tuple[int, int]:
    """The wire form of a schema hash: `(hi u64, lo u64)`."""
    h = fnv1a_128(schema_bytes)
    return h >> 64, h & _MASK64


@dataclass(frozen=True)
class Member:
    """One schema descriptor, resolved once: what every value in its slot is called."""

    name: str
    metadata: dict[str, str]
    key: SeriesKey
    unit: str | None


@dataclass(frozen=True)
class CachedSchema:
    raw: bytes  # the schema's exact msgpack bytes (verified against its hash)
    counters: tuple[Member, ...]
    gauges: tuple[Member, ...]
    histograms: tuple[Member, ...]


class SchemaCache:
    """A receiver's memory of one agent stream: verified V3 schemas by (group name, hash), LRU, bounded by count
    and by bytes (default groups churn schemas on most ticks and each one is kept), plus the memo of entry
    identities. Give each agent its own; the schema part is safe to share between threads.
    """

    def __init__(self, max_entries: int = 2048, max_bytes: int = 64 << 20):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.identities = Memo()
        self._entries: OrderedDict[tuple[str, tuple[int, int]], CachedSchema] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, group: str, hash_: tuple[int, int]) -> CachedSchema | None:
        with self._lock:
            found = self._entries.get((group, hash_))
            if found is not None:
                self._entries.move_to_end((group, hash_))
            return found

    def put(self, group: str, hash_: tuple[int, int], schema: CachedSchema) -> None:
        with self._lock:
            old = self._entries.pop((group, hash_), None)
            self._bytes += len(schema.raw) - (len(old.raw) if old is not None else 0)
            self._entries[(group, hash_)] = schema
            while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.raw)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item: tuple[str, tuple[int, int]]) -> bool:
        return item in self._entries


@dataclass
class _Context:
    payload: bytes
    schemas: SchemaCache | None
    memo: dict[Any, Identity]
    snap: Snapshot
    problems: Problems = field(default_factory=Problems)


def decode_groups(u: msgpack.Unpacker, ctx: _Context) -> None:
    """Read the groups array from `u` (positioned on it), flattening every usable group into `ctx.snap`."""
    try:
        count = u.read_array_header()
    except ValueError:
        raise SnapshotError("V3 snapshot whose groups are not an array") from None
    for index in range(count):
        try:
            arity = u.read_array_header()
        except ValueError:  # not an array: the stream did not move
            u.skip()
            ctx.problems.add(f"group #{index} is not an array; dropped")
            continue
        if arity != 7:
            for _ in range(arity):
                u.skip()
            ctx.problems.add(f"group #{index} has {arity} fields, not 7; dropped")
            continue
        name, hash_ = u.unpack(), u.unpack()
        start = u.tell()
        schema = u.unpack()
        raw = ctx.payload[start:u.tell()]  # the hash covers the schema's bytes exactly as sent
        window_value, counters, gauges, histograms = u.unpack(), u.unpack(), u.unpack(), u.unpack()
        _group(ctx, index, name, hash_, schema, raw, window_value, (counters, gauges, histograms))


def _group(ctx: _Context, index: int, name: Any, hash_: Any, schema: Any, raw: bytes, window_value: Any,
           values: tuple[Any, Any, Any]) -> None:
    problems = ctx.problems
    if type(name) is not str:
        problems.add(f"group #{index}: name is not a string; dropped")
        return
    if not (type(hash_) is list and len(hash_) == 2 and all(type(h) is int and 0 <= h < U64 for h in hash_)):
        problems.add(f"group {name!r}: schema_hash is not [u64, u64]; dropped")
        return
    key = (hash_[0], hash_[1])
    span = None if window_value is None else window(window_value)
    info = Group(name, key, schema is not None, span, None, None, False)
    ctx.snap.groups.append(info)
    if window_value is not None and span is None:
        problems.add(f"group {name!r}: invalid window; dropped")
        return
    if not all(type(v) is list for v in values):
        problems.add(f"group {name!r}: values are not three arrays; dropped")
        return
    cached = ctx.schemas.get(name, key) if ctx.schemas is not None else None
    if schema is None:
        if cached is None:
            problems.add(f"group {name!r}: schema {key[0]:016x}{key[1]:016x} is not cached; values dropped")
            return
    elif cached is not None and cached.raw == raw:  # these exact bytes were verified before
        info.hash_ok = True
    else:
        parsed = _schema(ctx.memo, schema, raw)
        if isinstance(parsed, str):
            problems.add(f"group {name!r}: {parsed}; dropped")
            return
        cached = parsed
        info.hash_ok = schema_hash(raw) == key
    members = (cached.counters, cached.gauges, cached.histograms)
    info.arity_ok = all(len(v) == len(m) for v, m in zip(values, members))
    if not info.arity_ok:
        problems.add(f"group {name!r}: {[len(v) for v in values]} values for {[len(m) for m in members]} "
                     "schema members; dropped")
        return
    if info.hash_ok is False:
        problems.add(f"group {name!r}: schema does not match its hash; dropped")
        return
    if schema is not None and ctx.schemas is not None:
        ctx.schemas.put(name, key, cached)
    info.resolved = True
    _flatten(ctx, values, members, span)


def _schema(memo: dict[Any, Identity], schema: Any, raw: bytes) -> CachedSchema | str:
    if type(schema) is not list or len(schema) != 3 or not all(type(s) is list for s in schema):
        return "schema is not three descriptor arrays"
    kinds: list[tuple[Member, ...]] = []
    for descs in schema:
        members = []
        for desc in descs:
            if type(desc) is not list or len(desc) != 2:
                return "a schema descriptor is not [name, metadata]"
            found = identity(memo, desc[0], desc[1])
            if isinstance(found, str):
                return f"schema member {desc[0]!r:.60}: {found}"
            members.append(Member(desc[0], *found))
        kinds.append(tuple(members))
    return CachedSchema(raw, *kinds)


def _flatten(ctx: _Context, values: tuple[Any, Any, Any], members: tuple[tuple[Member, ...], ...],
             span: tuple[int, int] | None) -> None:
    """Members with a value become entries carrying the group's window; nil = registered, no reading this tick."""
    snap, problems = ctx.snap, ctx.problems
    for member, value in zip(members[0], values[0]):
        if type(value) is int and 0 <= value < U64:
            snap.counters.append(Entry(member.name, member.key, value, None, member.unit, member.metadata, span))
        elif value is not None:
            problems.add(f"counter {member.name!r}: value {value!r:.40} is not a u64; dropped")
    for member, value in zip(members[1], values[1]):
        if type(value) is int and -I64 <= value < I64:
            snap.gauges.append(Entry(member.name, member.key, value, None, member.unit, member.metadata, span))
        elif value is not None:
            problems.add(f"gauge {member.name!r}: value {value!r:.40} is not an i64; dropped")
    for member, value in zip(members[2], values[2]):
        if value is None:
            continue
        parsed = histogram(value)
        if isinstance(parsed, str):
            problems.add(f"histogram {member.name!r}: {parsed}; dropped")
            continue
        snap.histograms.append(Entry(member.name, member.key, parsed[1], parsed[0], member.unit, member.metadata,
                                     span))
