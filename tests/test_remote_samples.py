"""`remote.samples.Translator` + `remote.wire`: what goes on the wire, decoded here by a hand-written protobuf
reader (not rezgen's), is every sample the recording holds (tests/remote_expect.py computes them with pyarrow and
plain integers) — also while the agent's series come and go, when the translator re-plans and keeps the encodings
of the series that stayed.
"""

from __future__ import annotations

from protobuf_reader import write_request
from remote_expect import Expected
from shared import shared_recording

from rezgen.agent.snapshot import SchemaCache, decode
from rezgen.remote.samples import Translator
from rezgen.synthetic.encode import encode
from rezgen.synthetic.recorded import RecordedAgent

NODE = "host:4241"


def by_name(decoded: list) -> dict[str, dict[tuple, dict[int, float]]]:
    out: dict[str, dict[tuple, dict[int, float]]] = {}
    for labels, samples in decoded:
        assert [name for name, _ in labels] == sorted(name for name, _ in labels), "labels sorted by name"
        name = dict(labels)["__name__"]
        rest = tuple(kv for kv in labels if kv[0] != "__name__")
        for value, ms in samples:
            assert ms not in out.setdefault(name, {}).setdefault(rest, {}), "one sample per series and snapshot"
            out[name][rest][ms] = value
    return out


def served(samples: dict, names: set[str]) -> dict:
    """c16 was recorded by Rezolus's recorder from several sources: the agent's columns carry the `endpoint` and
    `source` it read, which `rezgen replay` does not serve (rezgen.synthetic.recorded), nor the other sources'."""
    assert names <= set(samples)
    return {name: {tuple(kv for kv in labels if kv[0] not in ("endpoint", "source")): points
                   for labels, points in series.items()} for name, series in samples.items() if name in names}


def test_the_wire_holds_every_sample_while_series_come_and_go() -> None:
    recording = shared_recording("c16.parquet")
    agent, schemas, translator = RecordedAgent(recording), SchemaCache(), Translator(NODE, {"cluster": "a"})
    rows = range(14, 26)  # c16 gains task series at rows 18, 19 and 24: the translator re-plans there
    sizes, data, stamps = [], b"", []
    for row in rows:
        snapshot = decode(encode(agent.snapshot(row), 2), schemas)
        chunk = translator.translate(snapshot)
        sizes.append(len(snapshot.scalars(0).values))
        stamps.append(snapshot.timestamp_ns // 1_000_000)
        decoded = write_request(chunk.data)
        assert chunk.samples == len(decoded) == sum(len(samples) for _, samples in decoded)
        data += chunk.data  # concatenated chunks are one WriteRequest
    assert len(set(sizes)) >= 3, "the counters changed within the rows"
    got = by_name(write_request(data))
    want = served(Expected(recording, 0, NODE, {"cluster": "a"}).samples(stamps), set(got))
    assert len(want) > 90 and len(want["task_cpu_usage"]) > 100
    assert any(dict(labels).get("quantile") == "0.99" for labels in want["syscall_latency"])
    assert got == want


def test_a_histogram_at_another_grouping_power_gets_its_own_buckets() -> None:
    recording = shared_recording("demo.parquet")
    agent, schemas, translator = RecordedAgent(recording), SchemaCache(), Translator(NODE, {}, grouping_power=0)
    data, stamps = b"", []
    for row in range(3):
        snapshot = decode(encode(agent.snapshot(row), 2), schemas)
        data += translator.translate(snapshot).data
        stamps.append(snapshot.timestamp_ns // 1_000_000)
    assert by_name(write_request(data)) == Expected(recording, 0, NODE, {}, power=0).samples(stamps)
