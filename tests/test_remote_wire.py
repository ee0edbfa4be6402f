"""`remote.wire`: the protobuf and snappy of remote write, read back by a hand-written protobuf reader
(tests/protobuf_reader.py) and cramjam's snappy decoder (the real TSDBs read it in tests/test_remote_write.py)."""

from __future__ import annotations

import os

import cramjam
import numpy as np
import pytest
from protobuf_reader import write_request

from rezgen.remote.wire import (
    Template,
    encode_labels,
    encode_series,
    join_blocks,
    sample_tail,
    segment,
    series_head,
    snappy_block,
)


@pytest.mark.parametrize("stamp_ms", [0, 1, 1_700_000_000_000, 2**62])
def test_a_template_and_the_few_series_encoder_write_the_same_timeseries(stamp_ms: int) -> None:
    labels = [encode_labels([("__name__", "a"), ("node", "n")]), encode_labels([("__name__", "b" * 300)]), b""]
    tail = sample_tail(stamp_ms)
    heads = [series_head(encoded, len(tail)) for encoded in labels]
    values = np.array([1.5, -0.0, 2.0**60])
    filled = Template([segment(heads[:1], len(tail)), segment(heads[1:], len(tail))], len(tail)).fill(values, tail)
    assert filled == encode_series(heads, values, tail)
    decoded = write_request(filled)
    assert [names for names, _ in decoded] == [[("__name__", "a"), ("node", "n")], [("__name__", "b" * 300)], []]
    assert [samples for _, samples in decoded] == [[(v, stamp_ms)] for v in values.tolist()]


def test_a_template_made_of_runs_of_another_writes_those_series_in_the_new_order() -> None:
    tail = sample_tail(1_700_000_000_123)
    names = [f"s{i}" * (i * 20 + 1) for i in range(6)]  # heads of different lengths
    heads = [series_head(encode_labels([("__name__", name)]), len(tail)) for name in names]
    old = Template([segment(heads, len(tail))], len(tail))
    new_head = series_head(encode_labels([("__name__", "new")]), len(tail))
    # Series 4-5, a new one, series 0-1 and series 3: runs of the old template (views) and a new segment.
    template = Template([old.segment(4, 6), segment([new_head], len(tail)), old.segment(0, 2), old.segment(3, 4)],
                        len(tail))
    assert template.count == 6
    assert old.heads(1, 4) == heads[1:4] and old.heads(0, 6) == heads and old.heads(2, 2) == []
    assert template.heads(2, 4) == [new_head, heads[0]]
    decoded = write_request(template.fill(np.arange(6, dtype=np.float64), tail))
    assert [labels for labels, _ in decoded] == [[("__name__", name)] for name in
                                                 (names[4], names[5], "new", names[0], names[1], names[3])]
    assert [samples for _, samples in decoded] == [[(float(v), 1_700_000_000_123)] for v in range(6)]


def test_joined_snappy_blocks_are_one_block_of_the_joined_data() -> None:
    parts = [os.urandom(1000) + b"abc" * 5000 + os.urandom(300), b"x" * 100_000, b"", b"abcabc" * 30_000, b"q"]
    joined = join_blocks([(len(part), snappy_block(part)) for part in parts])
    assert bytes(cramjam.snappy.decompress_raw(joined)) == b"".join(parts)
    assert join_blocks([(len(parts[0]), snappy_block(parts[0]))]) == snappy_block(parts[0])
