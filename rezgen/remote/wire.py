"""Prometheus remote write 1.0 on the wire: protobuf `WriteRequest`s, built a snapshot at a time with numpy.

    message WriteRequest { repeated TimeSeries timeseries = 1; }
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }  // timestamp in ms

Every series of a snapshot becomes one `TimeSeries` with one sample. Protobuf concatenation appends repeated
fields, so the encodings of several snapshots joined together are one valid `WriteRequest`. A snapshot's series
are the same from one snapshot to the next, so `Template` encodes their labels once and then only writes each
sample's 8 value bytes and the shared timestamp into a copy of the template (two numpy copies per snapshot,
however many series). Label names and values are sorted by name, as the protocol asks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import cramjam
import numpy as np

Labels = Sequence[tuple[str, str]]

_NAME_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(name: str) -> str:
    """A valid Prometheus metric name: other characters become `_` (Rezolus V1 names such as `cpu/usage`)."""
    name = _NAME_BAD.sub("_", name) or "_"
    return f"_{name}" if name[0].isdigit() else name


def label_name(name: str) -> str:
    name = _LABEL_BAD.sub("_", name) or "_"
    return f"_{name}" if name[0].isdigit() else name


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + varint(len(payload)) + payload


def encode_labels(labels: Iterable[tuple[str, str]]) -> bytes:
    """The `labels` fields of a TimeSeries, sorted by name (names already valid)."""
    return b"".join(_field(0x0A, _field(0x0A, name.encode()) + _field(0x12, value.encode()))
                    for name, value in sorted(labels))


def sample_tail(timestamp_ms: int) -> bytes:
    """What follows a sample's value: the timestamp field."""
    return b"\x10" + varint(timestamp_ms & 0xFFFFFFFFFFFFFFFF)


def series_head(labels: bytes, tail_size: int) -> bytes:
    """A TimeSeries with one sample up to the sample's value: 0x0A len | labels | 0x12 len(Sample) 0x09."""
    width = 8 + tail_size
    mid = b"\x12" + varint(1 + width) + b"\x09"
    return b"\x0a" + varint(len(labels) + len(mid) + width) + labels + mid


Segment = tuple[Any, np.ndarray]  # series encoded with room for their values (bytes-like), and where each value goes


def segment(heads: Sequence[bytes], tail_size: int) -> Segment:
    """The series of `heads` (each a `series_head`) one after another, each followed by room for its value."""
    width = 8 + tail_size
    gap = bytes(width)
    ends = np.cumsum(np.fromiter(map(len, heads), dtype=np.int64, count=len(heads)) + width)
    return (gap.join(heads) + gap if heads else b""), ends - width


class Template:
    """The encoding of a fixed list of series with one sample each; `fill` writes the values and timestamp.

    Layout per series: `series_head` | value (8 bytes LE) | 0x10 ts. The timestamp's varint length sets the
    lengths, so a template is made for one length (`tail_size`). Made of segments (`segment`); `segment(first,
    last)` gives a run of its series back (a view, no copy), so the next template of a changed series list takes
    the runs that stay as they are and encodes only the new series.
    """

    def __init__(self, segments: Sequence[Segment], tail_size: int):
        self.tail_size = tail_size
        self.blank = np.frombuffer(b"".join(data for data, _ in segments), dtype=np.uint8)
        starts = np.cumsum([0, *(len(data) for data, _ in segments)])
        spots = [where + start for (_, where), start in zip(segments, starts.tolist())]
        # int32 offsets: a template is ~1 MB and 100 agents keep one each.
        self._spots = np.concatenate(spots).astype(np.int32) if spots else np.empty(0, dtype=np.int32)
        self.count = len(self._spots)

    def heads(self, first: int, last: int) -> list[bytes]:
        """The heads of series `first` to `last` (excluded)."""
        if first == last:
            return []
        data, spots = self.segment(first, last)
        data = data.tobytes()
        starts = [0, *(spots[:-1] + 8 + self.tail_size).tolist()]
        return [data[a:b] for a, b in zip(starts, spots.tolist())]

    def segment(self, first: int, last: int) -> Segment:
        """Series `first` to `last` (excluded), as a view of this template."""
        width = 8 + self.tail_size
        start = int(self._spots[first - 1]) + width if first else 0
        end = int(self._spots[last - 1]) + width
        return self.blank[start:end], self._spots[first:last] - start

    def fill(self, values: np.ndarray, tail: bytes) -> bytes:
        """One TimeSeries per series, in order, with `values` (float64) at the timestamp encoded in `tail`."""
        if len(tail) != self.tail_size or len(values) != self.count:
            raise ValueError("values or timestamp do not fit this template")
        rows = np.empty((self.count, 8 + self.tail_size), dtype=np.uint8)
        rows[:, :8] = np.ascontiguousarray(values, dtype="<f8").view(np.uint8).reshape(self.count, 8)
        rows[:, 8:] = np.frombuffer(tail, dtype=np.uint8)
        out = self.blank.copy()
        out[(self._spots[:, None] + np.arange(8 + self.tail_size, dtype=np.int32)).ravel()] = rows.ravel()
        return out.tobytes()


def encode_series(heads: Sequence[bytes], values: np.ndarray, tail: bytes) -> bytes:
    """TimeSeries for a few series that change from snapshot to snapshot (no template worth keeping): each
    `series_head` (made for `len(tail)`) with its value (float64) and the timestamp in `tail`."""
    raw = np.ascontiguousarray(values, dtype="<f8").tobytes()
    return b"".join(head + raw[8 * k:8 * k + 8] + tail for k, head in enumerate(heads))


def snappy_block(data: bytes) -> bytes:
    """`data` snappy-compressed in the block format (what a remote-write body is)."""
    return bytes(cramjam.snappy.compress_raw(data))


def join_blocks(blocks: Sequence[tuple[int, bytes]]) -> bytes:
    """One snappy block of the concatenated data of several `(uncompressed size, snappy_block)`, without
    compressing again. A block is varint(uncompressed size) then elements whose back-references never reach
    before the block's own start, so the elements of several blocks in a row decode to their data in a row."""
    if len(blocks) == 1:
        return blocks[0][1]
    return varint(sum(size for size, _ in blocks)) + b"".join(block[len(varint(size)):] for size, block in blocks)
