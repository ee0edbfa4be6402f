"""A hand-written reader of remote-write protobuf for the tests (independent of rezgen.remote.wire)."""

from __future__ import annotations

import struct


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes) -> list[tuple[int, object]]:
    """(field number, value) of a protobuf message: varints as int, fixed64 as float, length-delimited as bytes."""
    out, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, at = _varint(data, at)
            out.append((number, value))
        elif wire_type == 1:
            out.append((number, struct.unpack_from("<d", data, at)[0]))
            at += 8
        elif wire_type == 2:
            size, at = _varint(data, at)
            out.append((number, data[at:at + size]))
            at += size
        else:
            raise AssertionError(f"wire type {wire_type}")
    assert at == len(data)
    return out


def write_request(data: bytes) -> list[tuple[list[tuple[str, str]], list[tuple[float, int]]]]:
    """A WriteRequest's TimeSeries: (labels in wire order, samples (value, ms))."""
    series = []
    for number, timeseries in _fields(data):
        assert number == 1
        labels, samples = [], []
        for field, payload in _fields(timeseries):  # type: ignore[arg-type]
            parts = dict(_fields(payload))  # type: ignore[arg-type]
            if field == 1:
                labels.append((parts[1].decode(), parts[2].decode()))  # type: ignore[attr-defined]
            else:
                assert field == 2
                samples.append((parts[1], parts[2]))
        series.append((labels, samples))
    return series
