"""The `ARROW:schema` footer entry of a recording, written with every repeated string and key/value pair stored once.

A Parquet file keeps its columns' Arrow field metadata (a recording's metric, labels, unit: format doc §1.2) only
there: an Arrow IPC schema message (Schema.fbs), base64-encoded. Arrow's own writer stores every field's key/value
pairs in full, ~45 bytes of FlatBuffers framing each: for a c16-size host (1,900 columns, 9,600 pairs) 750 KB,
a third of a ten-minute segment. FlatBuffers lets any number of references share one table, so here `metric_type`
= `counter`, `unit` = `nanoseconds` and the like are one table each, and every field of one type shares its type
table: the same schema in a third of the bytes, decoded as before by every Arrow reader (pyarrow, arrow-rs). The
schema's own metadata goes in too, as Arrow's writer does: pyarrow reads it from there, not from the file's.
"""

from __future__ import annotations

import base64
import functools
import struct

import flatbuffers
import pyarrow as pa

KEY = b"ARROW:schema"
_INT, _LIST = 2, 12  # Type union members (Schema.fbs)
_SCHEMA, _V5 = 1, 4  # MessageHeader union member, MetadataVersion


def encoded_schema(schema: pa.Schema) -> bytes:
    """The value of the `ARROW:schema` key for `schema` (base64 of an IPC schema message)."""
    return _encoded(schema.serialize().to_pybytes())


@functools.lru_cache(maxsize=2)  # by Arrow's own serialization (fast): segments in a row often share their columns
def _encoded(serialized: bytes) -> bytes:
    return base64.b64encode(_message(_Tables(), pa.ipc.read_schema(pa.py_buffer(serialized))))


class _Tables:
    """A FlatBuffers builder that writes each string, key/value pair and type once."""

    def __init__(self) -> None:
        self.builder = flatbuffers.Builder(1 << 16)
        self._strings: dict[str, int] = {}
        self._pairs: dict[tuple[str, str], int] = {}
        self._types: dict[pa.DataType, tuple[int, int]] = {}
        self._empty: int | None = None

    def string(self, text: str) -> int:
        found = self._strings.get(text)
        if found is None:
            found = self._strings[text] = self.builder.CreateString(text)
        return found

    def vector(self, offsets: list[int]) -> int:
        if not offsets and self._empty is not None:
            return self._empty
        b = self.builder
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        out = b.EndVector()
        if not offsets:
            self._empty = out
        return out

    def pair(self, key: str, value: str) -> int:
        found = self._pairs.get((key, value))
        if found is None:
            k, v = self.string(key), self.string(value)
            b = self.builder
            b.StartObject(2)
            b.PrependUOffsetTRelativeSlot(0, k, 0)
            b.PrependUOffsetTRelativeSlot(1, v, 0)
            found = self._pairs[(key, value)] = b.EndObject()
        return found

    def type(self, kind: pa.DataType) -> tuple[int, int]:
        found = self._types.get(kind)
        if found is None:
            b = self.builder
            if pa.types.is_integer(kind):
                b.StartObject(2)
                b.PrependInt32Slot(0, kind.bit_width, 0)
                b.PrependBoolSlot(1, pa.types.is_signed_integer(kind), False)
                found = (_INT, b.EndObject())
            elif pa.types.is_list(kind):
                b.StartObject(0)
                found = (_LIST, b.EndObject())
            else:
                raise ValueError(f"a recording has no {kind} columns")
            self._types[kind] = found
        return found

    def field(self, field: pa.Field) -> int:
        children = [self.field(field.type.value_field)] if pa.types.is_list(field.type) else []
        name = self.string(field.name)
        kind, table = self.type(field.type)
        nested = self.vector(children)
        pairs = [self.pair(k.decode(), v.decode()) for k, v in (field.metadata or {}).items()]
        metadata = self.vector(pairs) if pairs else None
        b = self.builder
        b.StartObject(7)
        b.PrependUOffsetTRelativeSlot(0, name, 0)
        b.PrependBoolSlot(1, field.nullable, False)
        b.PrependUint8Slot(2, kind, 0)
        b.PrependUOffsetTRelativeSlot(3, table, 0)
        b.PrependUOffsetTRelativeSlot(5, nested, 0)
        if metadata is not None:
            b.PrependUOffsetTRelativeSlot(6, metadata, 0)
        return b.EndObject()


def _message(tables: _Tables, schema: pa.Schema) -> bytes:
    fields = tables.vector([tables.field(f) for f in schema])
    own = [tables.pair(k.decode(), v.decode()) for k, v in (schema.metadata or {}).items() if k != KEY]
    metadata = tables.vector(own)
    b = tables.builder
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(1, fields, 0)  # endianness: Little, the default
    b.PrependUOffsetTRelativeSlot(2, metadata, 0)
    header = b.EndObject()
    b.StartObject(5)
    b.PrependInt16Slot(0, _V5, 0)
    b.PrependUint8Slot(1, _SCHEMA, 0)
    b.PrependUOffsetTRelativeSlot(2, header, 0)
    b.PrependInt64Slot(3, 0, 0)
    b.Finish(b.EndObject())
    body = bytes(b.Output())
    body += b"\0" * (-len(body) % 8)
    return struct.pack("<Ii", 0xFFFFFFFF, len(body)) + body  # IPC framing: continuation marker, length
