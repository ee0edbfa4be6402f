"""The fast path of `snapshot.decode`: a well-formed V1/V2 body with nothing to report, in one `msgpack.unpackb`.

Anything unusual makes it return None, and the careful path decodes the body instead (so results and messages are
the careful path's). Counters and gauges are checked a whole column at a time in C (`map`, `set`, `array`) and
kept as columns (`Scalars`); only entries whose name or metadata changed since the last snapshot take Python.
"""

from __future__ import annotations

from array import array
from operator import itemgetter
from typing import Any

import msgpack
import numpy as np

from rezgen.agent.pieces import (
    Entry,
    Identity,
    Memo,
    Resolved,
    Scalars,
    Snapshot,
    identity,
    layout_of,
    time_pair,
    window,
)

# Real snapshots: ≤ ~3,000 entries of ≤ ~10 labels, histograms of 496 (gp=3) to 7,424 (gp=7) buckets, cgroup
# paths ≤ 4 KiB. Array and map lengths are also bounded by the body size (msgpack checks a header against it).
LIMITS = dict(max_str_len=1 << 16, max_bin_len=1 << 16, max_array_len=1 << 22, max_map_len=1 << 12,
              max_ext_len=1 << 10)
FAST_HEADERS = (0x95, 0x96)  # msgpack fixarray of 5 (V1) or 6 (V2) elements


def decode_fast(payload: bytes, memo: Memo) -> Snapshot | None:
    """A V1/V2 snapshot with nothing to report, or None (then the careful path decodes it and says why)."""
    try:
        # Map keys: str or bin only (strict_map_key); the careful path reports any other.
        body = msgpack.unpackb(payload, use_list=False, **LIMITS)
    except Exception:  # the careful path reports it
        return None
    if type(body) is not tuple:
        return None
    if len(body) == 6 and type(body[2]) is dict:
        version, duration, metadata, lists = 2, body[1], body[2], body[3:]
    elif len(body) == 5 and type(body[1]) is dict:
        version, duration, metadata, lists = 1, None, body[1], body[2:]
    else:
        return None
    timestamp = time_pair(body[0])
    duration_ns = time_pair(duration) if version > 1 else None
    if timestamp is None or (version > 1 and duration_ns is None):
        return None
    for key, value in metadata.items():
        if type(key) is not str or type(value) is not str:
            return None
    counters = _scalars_fast(memo, "counter", lists[0], "Q")
    if counters is None:
        return None
    gauges = _scalars_fast(memo, "gauge", lists[1], "q")
    histograms: list[Entry] = []
    if gauges is None or not _histograms_fast(memo, lists[2], histograms):
        return None
    return Snapshot(version, timestamp, duration_ns, metadata, counters, gauges, histograms)


def _identity_fast(memo: Memo, name: Any, metadata: Any) -> Identity | None:
    if type(name) is not str:  # a tuple name could even match a memo slot: leave it to the careful path
        return None
    found = identity(memo, name, metadata)
    return None if isinstance(found, str) else found


_NAME, _VALUE, _METADATA = itemgetter(0), itemgetter(1), itemgetter(2)
_DTYPES = {"Q": np.uint64, "q": np.int64}


def _scalars_fast(memo: Memo, kind: str, items: Any, typecode: str) -> Scalars | None:
    """Counters (typecode "Q": u64) or gauges ("q": i64) as columns. Every check runs over whole columns in C
    (`map`, `set`, `array`); only entries whose name or metadata changed since the last snapshot take Python."""
    if type(items) is not tuple:
        return None
    if not items:
        return Scalars([], [], np.empty(0, dtype=_DTYPES[typecode]))
    # Items are not type-checked: anything else of 3 or 4 elements (a str, a bin; a map raises KeyError, its keys
    # being str) fails the value, name or metadata checks below.
    try:
        lengths = set(map(len, items))
        values = list(map(_VALUE, items))
    except (TypeError, KeyError):
        return None
    windows = None
    if lengths != {3}:
        if not lengths <= {3, 4}:
            return None
        windows = [window(item[3]) if len(item) == 4 else None for item in items]
        if sum(map(len, items)) - 3 * len(items) != len(windows) - windows.count(None):
            return None  # an invalid window
    if set(map(type, values)) != {int}:  # a bool or float, say
        return None
    try:
        column = np.frombuffer(array(typecode, values), dtype=_DTYPES[typecode])  # the range check, in C
    except OverflowError:
        return None
    names, metadata = list(map(_NAME, items)), list(map(_METADATA, items))
    previous = memo.lists.get(kind)
    if previous is not None and previous.matches(names, metadata):
        return Scalars(previous.names, previous.identities, column, windows)  # the same entries as last time
    get = memo.get
    identities: list[Identity] = []
    add = identities.append
    for name, meta in zip(names, metadata):
        found = get(name) if type(name) is str and name else None
        if found is None or found[0] != meta:
            found = _identity_fast(memo, name, meta)
            if found is None:
                return None
        add(found)
    memo.lists[kind] = Resolved(names, identities)
    return Scalars(names, identities, column, windows)


def _histograms_fast(memo: Memo, items: Any, out: list[Entry]) -> bool:
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
            span = window(span)
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
