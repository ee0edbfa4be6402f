"""The agent snapshot wire format: decoding (V1/V2/V3, hardening, V3 schemas) and encoding (V2/V3 round trips).

Expected values come from the hand-built protocol vectors in ../shared/vectors (each `.msgpack` has its decoded
`.json` beside it), not from rezgen; series identity is recomputed here from the protocol's rule (§2.8).
"""

from __future__ import annotations

import copy
import json

import msgpack
import numpy as np
import pytest
from shared import VECTORS, unavailable

from rezgen.agent.schema import SchemaCache, fnv1a_128, schema_hash
from rezgen.agent.snapshot import Entry, Snapshot, SnapshotError, decode
from rezgen.synthetic.encode import encode_v2, encode_v3, h2_config

NAMES = ["v1_legacy", "v2_2025", "v2_windowed", "v2_minimal", "v3_groups", "v3_schemaless"]
NOT_LABELS = {"metric", "metric_type", "unit", "grouping_power", "max_value_power", "description"}


def vector(name: str) -> tuple[bytes, dict]:
    path = VECTORS / f"{name}.msgpack"
    if not path.is_file():
        unavailable(f"protocol vectors not found: {VECTORS}")
    return path.read_bytes(), json.loads((VECTORS / f"{name}.json").read_text())


def identity(name: str, metadata: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """§2.8, written out independently: `metric` (else the entry name) and every non-property key as a label."""
    return metadata.get("metric", name), tuple(sorted((k, v) for k, v in metadata.items() if k not in NOT_LABELS))


def assert_entries(got: list[Entry], expected: list[dict], kind: str) -> None:
    assert [e.name for e in got] == [x["name"] for x in expected], kind
    for entry, want in zip(got, expected):
        where = f"{kind} {want['name']}"
        assert dict(entry.metadata) == want["metadata"], where
        assert (entry.key.metric, entry.key.labels) == identity(want["name"], want["metadata"]), where
        assert entry.unit == want["metadata"].get("unit"), where
        window = want["window"]
        assert entry.window == (None if window is None else (window["begin_ns"], window["end_ns"])), where
        if kind == "histogram":
            assert_histogram(entry, want, where)
        else:
            assert entry.layout is None and type(entry.value) is int and entry.value == want["value"], where


def assert_histogram(entry: Entry, want: dict, where: str) -> None:
    layout = entry.layout
    assert layout is not None, where
    assert (layout.grouping_power, layout.max_value_power) == (want["grouping_power"], want["max_value_power"])
    assert h2_config(layout) == want["config"], where
    counts = entry.value
    assert isinstance(counts, np.ndarray) and counts.dtype == np.uint64, where
    assert len(counts) == want["bucket_count"] == layout.buckets, where
    assert int(counts.sum()) == want["total_count"], where
    nonzero = [[int(i), int(counts[i]), int(layout.lows[i]), int(layout.highs[i])] for i in np.flatnonzero(counts)]
    assert nonzero == want["nonzero_buckets"], where


def assert_snapshot(snap: Snapshot, want: dict, entries_from: dict | None = None) -> None:
    entries_from = entries_from or want
    assert snap.version == want["version"]
    assert snap.timestamp_ns == want["timestamp_ns"]
    assert snap.duration_ns == want["duration_ns"]
    assert snap.metadata == want["metadata"]
    for kind in ("counter", "gauge", "histogram"):
        assert_entries(getattr(snap, kind + "s"), entries_from[kind + "s"], kind)


def assert_groups(snap: Snapshot, want: dict) -> None:
    assert [g.name for g in snap.groups] == [g["name"] for g in want["groups"]]
    for group, expected in zip(snap.groups, want["groups"]):
        assert group.schema_hash == tuple(expected["schema_hash"])
        assert f"{group.schema_hash[0]:016x}{group.schema_hash[1]:016x}" == expected["schema_hash_hex"]
        assert group.schema_present == expected["schema_present"]
        window = expected["window"]
        assert group.window == (None if window is None else (window["begin_ns"], window["end_ns"]))
        if expected["schema_present"]:
            assert (group.arity_ok, group.hash_ok) == (expected["arity_ok"], expected["hash_ok"])


# --- the six vectors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in NAMES if n != "v3_schemaless"])
def test_vector_decodes_to_its_json(name: str) -> None:
    payload, want = vector(name)
    snap = decode(payload, SchemaCache())
    assert snap.problems == []
    assert_snapshot(snap, want)
    if want["version"] == 3:
        assert_groups(snap, want)
        assert all(g.resolved for g in snap.groups)
    else:
        assert snap.groups == []


def test_schemaless_v3_names_nothing_without_the_cache() -> None:
    payload, want = vector("v3_schemaless")
    for schemas in (None, SchemaCache()):
        snap = decode(payload, schemas)
        assert_snapshot(snap, want)  # the vector's own flattening is empty: nothing can be named
        assert snap.counters == snap.gauges == snap.histograms == []
        assert_groups(snap, want)
        assert not any(g.resolved for g in snap.groups)
        assert len(snap.problems) == 3 and all("not cached" in p for p in snap.problems)


def test_schemaless_v3_resolves_from_the_schemas_of_an_earlier_snapshot() -> None:
    groups_payload, groups_want = vector("v3_groups")
    payload, want = vector("v3_schemaless")
    schemas = SchemaCache()
    decode(groups_payload, schemas)
    snap = decode(payload, schemas)
    assert snap.problems == []
    assert_snapshot(snap, want, entries_from=groups_want)  # the named entries are exactly v3_groups'
    assert all(g.resolved and g.arity_ok for g in snap.groups)


def test_known_answer_of_the_schema_hash() -> None:
    assert msgpack.packb([[], [], []]) == bytes.fromhex("93909090")
    assert schema_hash(bytes.fromhex("93909090")) == (0x6370115622757277, 0xB806E79DEAE054AE)
    assert fnv1a_128(b"") == 0x6C62272E07BB014262B821756295C58D  # the offset basis


# --- hardening --------------------------------------------------------------------------------------------------

def wire(name: str) -> list:
    return copy.deepcopy(vector(name)[1]["wire"])


def test_an_empty_body_is_an_error() -> None:
    with pytest.raises(SnapshotError, match=r"^empty body$"):
        decode(b"")


def test_trailing_bytes_reject_the_payload() -> None:
    payload, _ = vector("v2_minimal")
    with pytest.raises(SnapshotError, match="trailing bytes"):
        decode(payload + b"\x00")
    with pytest.raises(SnapshotError, match="trailing bytes"):
        decode(payload + payload)


@pytest.mark.parametrize("name", ["v2_2025", "v3_groups"])
def test_every_truncation_is_a_snapshot_error(name: str) -> None:
    payload, _ = vector(name)
    for end in range(1, len(payload)):
        with pytest.raises(SnapshotError):
            decode(payload[:end], SchemaCache())


@pytest.mark.parametrize("value, message", [
    ({"systemtime": 1}, "not a msgpack array"),
    ([1, 2, 3], "array of 3 elements"),
    ([[1, 0], [0, 1], {}, [], [], [], []], "array of 7 elements"),  # a future V4 must surface, not vanish
    ([[1, 0], [0, 1], [], [], [], []], r"unknown snapshot format: \[array, array, array"),  # 6, no map at [2]
    ([[1, 0], [], [], [], []], "unknown snapshot format"),  # 5, no map at [1]
    ([[1, 0], [0, 1], [], []], "unknown snapshot format"),  # 4, no map at [2]
    ([[1, 1_000_000_000], [0, 1], {}, [], [], []], "invalid systemtime"),
    ([[-1, 0], [0, 1], {}, [], [], []], "invalid systemtime"),
    ([[1, 0], [0, 1], {}, "groups"], "groups are not an array"),
])
def test_wrong_shapes_are_errors(value: object, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        decode(msgpack.packb(value))


def test_non_msgpack_bodies_are_errors() -> None:
    for body in (b"<html>502 Bad Gateway</html>", b"\xc1\x00", "ümlaut".encode("latin-1")):
        with pytest.raises(SnapshotError):
            decode(body)


def test_nesting_and_sizes_are_capped() -> None:
    with pytest.raises(SnapshotError, match="nested too deeply"):
        decode(b"\x96" + b"\x91" * 5000 + b"\x90")
    huge = [[1, 0], [0, 1], {"version": "x" * 100_000}, [], [], []]
    with pytest.raises(SnapshotError, match="max_str_len"):
        decode(msgpack.packb(huge))


def test_a_histogram_with_the_wrong_bucket_count_is_dropped_and_the_rest_survives() -> None:
    value = wire("v2_2025")
    value[5][0][1][1] = value[5][0][1][1][:-1]  # 495 buckets for gp=3, mvp=64
    snap = decode(msgpack.packb(value))
    assert snap.histograms == []
    assert [e.name for e in snap.counters] == ["10x3"] and [e.name for e in snap.gauges] == ["50x10"]
    assert snap.problems == ["histogram '203': 495 buckets where grouping_power=3 max_value_power=64 needs 496; "
                             "dropped"]


@pytest.mark.parametrize("config, problem", [
    ([255, 7, 7, 8, 256, 256, 128, 0], "invalid grouping_power=7 max_value_power=7"),  # needs gp < mvp
    ([255, 3, 65, 4, 16, 16, 8, 488], "invalid grouping_power=3 max_value_power=65"),
    ([255, 3, 64], "config is not 8 integers"),
])
def test_a_bad_histogram_config_drops_only_that_histogram(config: list, problem: str) -> None:
    value = wire("v2_2025")
    value[5][0][1][0] = config
    snap = decode(msgpack.packb(value))
    assert snap.histograms == [] and len(snap.counters) == len(snap.gauges) == 1
    assert problem in snap.problems[0]


def test_bad_entries_are_dropped_one_by_one() -> None:
    value = wire("v2_2025")
    good_counter, good_gauge = value[3][0], value[4][0]
    value[3] = [good_counter, ["short", 1], ["neg", -1, {"metric": "m"}], ["flt", 1.5, {"metric": "m"}],
                ["md", 1, {"metric": 7}], ["win", 1, {"metric": "m"}, [1]], [None, 1, {"metric": "m"}],
                ["", 1, {}], ["bool", True, {"metric": "m"}]]
    value[4] = [good_gauge, ["g", 1 << 63, {"metric": "m"}], ["g2", "1", {"metric": "m"}]]
    value[5][0][1][1][3] = 2.5
    snap = decode(msgpack.packb(value))
    assert [e.name for e in snap.counters] == ["10x3"] and [e.name for e in snap.gauges] == ["50x10"]
    assert snap.histograms == []
    assert len(snap.problems) == 11, snap.problems
    assert "counter 'neg': value -1 is not a u64; dropped" in snap.problems
    assert "gauge 'g': value 9223372036854775808 is not an i64; dropped" in snap.problems
    assert "histogram '203': bucket counts are not all integers; dropped" in snap.problems


def test_problems_are_capped() -> None:
    value = [[1, 0], [0, 1], {}, [["c", -1, {"metric": "m"}]] * 500, [], []]
    snap = decode(msgpack.packb(value))
    assert len(snap.problems) == 51 and snap.problems[-1] == "… and 450 more problems"


def test_a_v3_group_with_a_bad_hash_is_dropped_and_not_cached() -> None:
    value = wire("v3_groups")
    value[3][1][1][1] ^= 1  # cpu_usage/cpu_usage_cpu
    schemas = SchemaCache()
    snap = decode(msgpack.packb(value), schemas)
    usage = snap.groups[1]
    assert (usage.name, usage.hash_ok, usage.arity_ok, usage.resolved) == ("cpu_usage/cpu_usage_cpu", False, True,
                                                                            False)
    assert snap.counters == []  # only that group had counters
    assert [e.name for e in snap.gauges] == ["50x10", "53x10"] and [e.name for e in snap.histograms] == ["203"]
    assert snap.problems == ["group 'cpu_usage/cpu_usage_cpu': schema does not match its hash; dropped"]
    assert len(schemas) == 2 and ("cpu_usage/cpu_usage_cpu", usage.schema_hash) not in schemas


def test_a_v3_group_whose_values_do_not_fit_its_schema_is_dropped() -> None:
    value = wire("v3_groups")
    value[3][1][4].append(5)  # four counter values for three descriptors
    value[3][2] = value[3][2][:6]  # and a group with six fields
    snap = decode(msgpack.packb(value), SchemaCache())
    assert snap.groups[1].arity_ok is False and snap.groups[1].hash_ok is True and not snap.groups[1].resolved
    assert [g.name for g in snap.groups] == ["cpu_bandwidth/main", "cpu_usage/cpu_usage_cpu"]
    assert [e.name for e in snap.gauges] == ["50x10", "53x10"] and snap.counters == snap.histograms == []
    assert snap.problems == ["group 'cpu_usage/cpu_usage_cpu': [4, 0, 0] values for [3, 0, 0] schema members; "
                             "dropped", "group #2 has 6 fields, not 7; dropped"]


def test_a_resent_schema_is_verified_by_its_bytes() -> None:
    payload, _ = vector("v3_groups")
    schemas = SchemaCache()
    decode(payload, schemas)
    cached = schemas.get("cpu_usage/cpu_usage_cpu", (2018156407832494322, 13979086092287247681))
    snap = decode(payload, schemas)
    assert snap.problems == [] and all(g.hash_ok for g in snap.groups)
    assert schemas.get("cpu_usage/cpu_usage_cpu", (2018156407832494322, 13979086092287247681)) is cached


def test_the_schema_cache_is_bounded_and_least_recently_used() -> None:
    payload, _ = vector("v3_groups")
    schemas = SchemaCache(max_entries=2)
    snap = decode(payload, schemas)
    keys = [(g.name, g.schema_hash) for g in snap.groups]
    assert len(schemas) == 2 and keys[0] not in schemas and keys[1] in schemas and keys[2] in schemas
    small = SchemaCache(max_bytes=1)
    decode(payload, small)
    assert len(small) == 0


def test_identity_follows_the_metadata_not_the_entry_name() -> None:
    def snapshot(counters: list) -> Snapshot:
        return decode(msgpack.packb([[1, 0], [0, 1], {}, counters, [], []]), SchemaCache())

    schemas = SchemaCache()
    first = decode(msgpack.packb([[1, 0], [0, 1], {}, [["7x1", 5, {"metric": "cgroup_cpu_usage", "id": "1",
                                                                    "name": "/a"}]], [], []]), schemas)
    reused = decode(msgpack.packb([[2, 0], [0, 1], {}, [["7x1", 6, {"metric": "cgroup_cpu_usage", "id": "1",
                                                                     "name": "/b"}]], [], []]), schemas)
    assert first.counters[0].key.label("name") == "/a" and reused.counters[0].key.label("name") == "/b"
    externals = snapshot([["", 1, {"metric": "app_requests", "source": "external"}],
                          ["", 2, {"metric": "app_errors", "source": "external"}]])
    assert [str(e.key) for e in externals.counters] == ['app_requests{source="external"}',
                                                        'app_errors{source="external"}']
    nameless = snapshot([["", 1, {"unit": "bytes"}]])
    assert nameless.counters == [] and "no metric name" in nameless.problems[0]


# --- encoding ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["v2_minimal", "v2_2025"])
def test_reencoding_a_decoded_v2_vector_reproduces_its_bytes(name: str) -> None:
    payload, _ = vector(name)
    assert encode_v2(decode(payload)) == payload


def comparable(snap: Snapshot, windows: bool = True) -> list[tuple]:
    return sorted((e.name, e.key, e.value.tolist() if e.layout else e.value, e.layout, e.unit, dict(e.metadata),
                   e.window if windows else None) for e in snap.entries)


@pytest.mark.parametrize("name", ["v1_legacy", "v2_2025", "v2_windowed", "v3_groups"])
def test_encode_then_decode_gives_the_same_entries(name: str) -> None:
    payload, _ = vector(name)
    original = decode(payload, SchemaCache())
    for encode in (encode_v2, encode_v3):
        again = decode(encode(original), SchemaCache())
        assert again.problems == []
        assert again.version == (2 if encode is encode_v2 else 3)
        assert (again.timestamp_ns, again.duration_ns or None, again.metadata) == \
            (original.timestamp_ns, original.duration_ns, original.metadata)
        assert comparable(again) == comparable(original, windows=False)  # this encoder never sends windows


def test_v3_encoding_groups_by_sampler_with_sorted_schemas_and_valid_hashes() -> None:
    payload, _ = vector("v2_windowed")
    original = decode(payload)
    original.gauges[0].metadata = {"unit": "nanoseconds", "sampler": "cpu_bandwidth", "name": "/n", "id": "10",
                                   "metric": "cgroup_cpu_bandwidth_quota"}  # insertion order is not key order
    encoded = encode_v3(original)
    groups = msgpack.unpackb(encoded)[3]
    assert [g[0] for g in groups] == sorted(g[0] for g in groups) == [
        "cpu_bandwidth/main", "cpu_perf/main", "syscall_counts/main", "syscall_latency/main"]
    for _name, hash_, schema, window, *_ in groups:
        assert window is None
        assert tuple(hash_) == schema_hash(msgpack.packb(schema))
        for descs in schema:
            for _, metadata in descs:
                assert list(metadata) == sorted(metadata)
    no_sampler = decode(vector("v2_2025")[0])
    assert [g[0] for g in msgpack.unpackb(encode_v3(no_sampler))[3]] == ["default/main"]
