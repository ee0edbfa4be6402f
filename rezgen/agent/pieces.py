"""The decoded snapshot (`Snapshot`, `Entry`, `Group`) and the validators of its pieces, shared by V1/V2 and V3.

Each validator returns the value or, for a bad piece, a short reason (a str) that the caller reports in
`Snapshot.problems` before dropping just that piece.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rezgen.errors import RezgenError
from rezgen.store.histogram import Layout, LayoutError
from rezgen.store.model import PROPERTY_KEYS, SeriesKey, make_labels

U64 = 1 << 64
I64 = 1 << 63
MAX_PROBLEMS = 50


class SnapshotError(RezgenError):
    """A payload that is not a usable snapshot; the message is one line."""


@dataclass(slots=True)
class Entry:
    name: str  # the agent's entry name: unique only within one snapshot of one agent build, never an identity
    key: SeriesKey
    value: int | np.ndarray  # counter u64, gauge i64, histogram: dense cumulative bucket counts (uint64)
    layout: Layout | None = None  # histograms only, from the value's own config
    unit: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)  # as sent; shared between snapshots: read-only
    window: tuple[int, int] | None = None  # acquisition window [begin_ns, end_ns] when the agent sent one


@dataclass
class Group:
    """What a V3 group looked like on the wire, and whether its values could be used."""

    name: str
    schema_hash: tuple[int, int]
    schema_present: bool
    window: tuple[int, int] | None
    arity_ok: bool | None  # value-array lengths match the schema (None: no schema to check against)
    hash_ok: bool | None  # the sent schema hashes to schema_hash (None: no schema sent)
    resolved: bool  # its values became entries


class Scalars:
    """A snapshot's counters or gauges as columns, as the fast decode path leaves them. Ingest and the client read
    these directly: building an `Entry` per value cost more than all the rest of a decode. `names` and
    `identities` are the previous snapshot's very lists while the agent sends the same entries (see
    `Memo.lists`), and are shared between snapshots: read-only."""

    __slots__ = ("identities", "names", "values", "windows")

    def __init__(self, names: list[str], identities: list[Identity], values: np.ndarray,
                 windows: list[tuple[int, int] | None] | None = None):
        self.names = names
        self.identities = identities
        self.values = values  # uint64 (counters) or int64 (gauges)
        self.windows = windows  # per entry, None when no entry has one

    def __len__(self) -> int:
        return len(self.names)

    def entries(self) -> list[Entry]:
        windows = self.windows or [None] * len(self.names)
        return [Entry(name, found[1], value, None, found[2], found[0], span)
                for name, found, value, span in zip(self.names, self.identities, self.values.tolist(), windows)]

    @classmethod
    def of(cls, entries: list[Entry], dtype: type) -> Scalars:
        windows = [e.window for e in entries]
        return cls([e.name for e in entries], [(e.metadata, e.key, e.unit) for e in entries],  # type: ignore[misc]
                   np.array([e.value for e in entries], dtype=dtype),
                   windows if any(w is not None for w in windows) else None)


class Snapshot:
    """A decoded snapshot. Counters and gauges are lists of `Entry` or, from the fast decode path, `Scalars` that
    become entries only when `counters`/`gauges` are read (`scalars` reads them as columns either way)."""

    def __init__(self, version: int, timestamp_ns: int, duration_ns: int | None, metadata: dict[str, str],
                 counters: list[Entry] | Scalars, gauges: list[Entry] | Scalars, histograms: list[Entry],
                 problems: list[str] | None = None, groups: list[Group] | None = None,
                 discontinuity: str | None = None):
        self.version = version  # 1, 2 or 3
        self.timestamp_ns = timestamp_ns  # the agent's clock at the start of its sampling pass
        self.duration_ns = duration_ns  # how long the pass took (None for V1)
        self.metadata = metadata
        self._scalars: list[list[Entry] | Scalars] = [counters, gauges]
        self.histograms = histograms
        self.problems = problems if problems is not None else []
        self.groups = groups if groups is not None else []  # V3 only
        # Set by AgentClient: "restart" (counters reset) or "clock" (time went back).
        self.discontinuity = discontinuity

    def _entries(self, index: int) -> list[Entry]:
        found = self._scalars[index]
        if isinstance(found, Scalars):
            found = self._scalars[index] = found.entries()
        return found

    @property
    def counters(self) -> list[Entry]:
        return self._entries(0)

    @counters.setter
    def counters(self, entries: list[Entry]) -> None:
        self._scalars[0] = entries

    @property
    def gauges(self) -> list[Entry]:
        return self._entries(1)

    @gauges.setter
    def gauges(self, entries: list[Entry]) -> None:
        self._scalars[1] = entries

    def scalars(self, index: int) -> Scalars:
        """Counters (0) or gauges (1) as columns; from the entries when they are entries (they may have been
        changed since)."""
        found = self._scalars[index]
        return found if isinstance(found, Scalars) else Scalars.of(found, np.uint64 if index == 0 else np.int64)

    @property
    def entries(self) -> list[Entry]:
        return self.counters + self.gauges + self.histograms


class Problems(list):
    """Problem lines, capped: a snapshot with 2,000 bad entries should not carry 2,000 messages."""

    dropped = 0

    def add(self, message: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(message)
        else:
            self.dropped += 1

    def finish(self) -> list[str]:
        return list(self) + ([f"… and {self.dropped} more problems"] if self.dropped else [])


def kind_name(value: Any) -> str:
    return {dict: "map", list: "array", str: "str", int: "int", float: "float", bytes: "bin", bool: "bool",
            type(None): "nil"}.get(type(value), type(value).__name__)


def time_pair(value: Any) -> int | None:
    """`[secs u64, nanos u32]` (SystemTime and Duration alike) in nanoseconds; None if malformed. A msgpack array
    may be decoded as a list or, on the fast path, a tuple."""
    if type(value) in (list, tuple) and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and 0 <= value[0] < U64 and 0 <= value[1] < 1_000_000_000:
        return value[0] * 1_000_000_000 + value[1]
    return None


def window(value: Any) -> tuple[int, int] | None:
    if type(value) in (list, tuple) and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and 0 <= value[0] < U64 and 0 <= value[1] < U64:
        return value[0], value[1]
    return None


# Identity = (metadata as sent, series key, unit). Memoised by entry name and checked by dict equality: the agent
# resends the same name with the same metadata every tick, and comparing two small dicts is far cheaper than
# building labels. A changed metadata (a reused cgroup slot) simply resolves again.
Identity = tuple[dict[str, str], SeriesKey, "str | None"]
IDENTITY_LIMIT = 1 << 17  # hosts churn cgroups forever: start over rather than grow without bound


class Memo(dict):
    """Identities by entry name (see `identity`) and, per kind, the last list of entries resolved (`Resolved`): a
    snapshot whose names and metadata equal those takes the identities whole, with no Python per entry."""

    def __init__(self) -> None:
        super().__init__()
        self.lists: dict[str, Resolved] = {}


class Resolved:
    """The identities of one list of entries, and what a later list must equal to have the same ones."""

    __slots__ = ("identities", "joined", "metadata", "names")

    def __init__(self, names: list[str], identities: list[Identity]):
        self.names = names
        # The names as one string: comparing it costs one pass over the new names, not a cache miss per old one.
        # Exact when no name holds the separator (then a list of as many names joining to it has the same names).
        joined = "\0".join(names)
        self.joined = joined if joined.count("\0") == len(names) - 1 else None
        self.metadata = [found[0] for found in identities]
        self.identities = identities

    def matches(self, names: list[Any], metadata: list[Any]) -> bool:
        if len(names) != len(self.names):
            return False
        if self.joined is None:
            same = names == self.names
        else:
            try:
                same = "\0".join(names) == self.joined
            except TypeError:  # a name that is not a str
                return False
        return same and metadata == self.metadata


def identity(memo: dict[Any, Identity], name: Any, metadata: Any) -> Identity | str:
    """The identity of an entry, from `memo` when its metadata is unchanged; a reason when it has none."""
    slot = name if name else ("", metadata.get("metric") if type(metadata) is dict else None)  # V2 externals: ""
    try:
        found = memo.get(slot)
    except TypeError:
        return "entry name is not a string"
    if found is not None and found[0] == metadata:
        return found
    resolved = resolve(name, metadata)
    if not isinstance(resolved, str):
        if len(memo) >= IDENTITY_LIMIT:
            memo.clear()
        memo[slot] = resolved
    return resolved


def resolve(name: Any, metadata: Any) -> Identity | str:
    """Protocol §2.8: `metric` (else the entry name) plus every non-property key as a label."""
    if type(name) is not str:
        return "entry name is not a string"
    if type(metadata) is not dict or not all(type(k) is str and type(v) is str for k, v in metadata.items()):
        return "metadata is not a map of strings"
    metric = metadata.get("metric") or name
    if not metric:
        return "no metric name (no `metric` key and an empty entry name)"
    # Interned values: a snapshot's metadata is compared with these every tick (see `Memo`), and a value shared by
    # many entries (a cgroup path, a unit) is then one string that stays in cache, not one per entry.
    kept = {k: sys.intern(v) for k, v in metadata.items()}
    labels = make_labels({k: v for k, v in kept.items() if k not in PROPERTY_KEYS})
    return kept, SeriesKey(metric, labels), kept.get("unit")


_LAYOUTS: dict[tuple[int, int], Layout] = {}


def layout_of(grouping_power: int, max_value_power: int) -> Layout | None:
    """The (shared) layout of these powers; None when they make no valid histogram."""
    layout = _LAYOUTS.get((grouping_power, max_value_power))
    if layout is None:
        try:
            layout = Layout(grouping_power, max_value_power)
        except LayoutError:
            return None
        _LAYOUTS[(grouping_power, max_value_power)] = layout
    return layout


def histogram(value: Any) -> tuple[Layout, np.ndarray] | str:
    """`[config, buckets]` → (layout, dense counts). Only gp/mvp of the config are used: rebuild, never trust."""
    if type(value) is not list or len(value) != 2:
        return "value is not [config, buckets]"
    config, buckets = value
    if type(config) is not list or len(config) != 8 or not all(type(x) is int for x in config):
        return "histogram config is not 8 integers"
    gp, mvp = config[1], config[2]
    layout = layout_of(gp, mvp)
    if layout is None:
        return f"invalid grouping_power={gp} max_value_power={mvp}"
    if type(buckets) is not list or len(buckets) != layout.buckets:
        got = len(buckets) if type(buckets) is list else kind_name(buckets)
        return f"{got} buckets where grouping_power={gp} max_value_power={mvp} needs {layout.buckets}"
    try:
        # array('Q') rejects floats and out-of-range ints in C (numpy would truncate a float); a bool reads as 0/1.
        return layout, np.frombuffer(array("Q", buckets), dtype=np.uint64)
    except TypeError:
        return "bucket counts are not all integers"
    except OverflowError:
        return "a bucket count is outside u64"
