"""`remote.sender.Sender`: the queue's memory bound (compressed bytes) drops the oldest chunks and counts their
samples, whatever the data-time bound; a target that is back gets what was kept, in order, as snappy-compressed
protobuf (read back here with cramjam and a hand-written protobuf reader)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import ClassVar

import cramjam
import numpy as np
import pytest
from processes import wait_for
from prometheus_oracle import free_port
from protobuf_reader import write_request

from rezgen.remote.samples import Chunk
from rezgen.remote.sender import Packed, Sender
from rezgen.remote.wire import Template, encode_labels, sample_tail, segment, series_head


def chunk(k: int, series: int = 200) -> Chunk:
    """Snapshot k: `series` series of one sample each (value k), at k seconds."""
    tail = sample_tail(k * 1000)
    heads = [series_head(encode_labels([("__name__", "m"), ("i", str(i))]), len(tail)) for i in range(series)]
    template = Template([segment(heads, len(tail))], len(tail))
    return Chunk(k * 1_000_000_000, series, template.fill(np.full(series, float(k)), tail))


class Receiver(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.bodies.append(bytes(cramjam.snappy.decompress_raw(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


def test_the_memory_bound_drops_the_oldest_and_the_rest_arrives_in_order(port: int) -> None:
    packed = [Packed.of(chunk(k)) for k in range(10)]
    bound = sum(len(p.block) for p in packed[:4])  # room for four chunks
    sender = Sender(f"http://127.0.0.1:{port}/api/v1/write", bound_ns=10**15, max_bytes=bound)
    sender.start()
    try:
        for p in packed:  # nothing listens yet: everything waits
            sender.put(p)
        # A chunk in a failing request is bounded once that attempt ends (refused at once here).
        wait_for(lambda: sender.status().dropped == 6 * 200, timeout=10, what="the oldest dropped")
        assert sender.status().queued == 4 * 200
        Receiver.bodies = []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            wait_for(lambda: sender.status().sent == 4 * 200, timeout=30, what="the kept chunks sent")
        finally:
            server.shutdown()
            server.server_close()
    finally:
        sender.stop(drain_s=0)
    got = [(dict(labels)["i"], samples) for body in Receiver.bodies for labels, samples in write_request(body)]
    assert got == [(str(i), [(float(k), k * 1000)]) for k in range(6, 10) for i in range(200)]
    assert sender.status().dropped == 6 * 200 and sender.status().queued == 0


def test_chunks_are_compressed_once_and_a_request_joins_several(port: int) -> None:
    Receiver.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sender = Sender(f"http://127.0.0.1:{port}/api/v1/write", bound_ns=10**15)
    try:
        for k in range(20):
            sender.put(Packed.of(chunk(k)))
        sender.start()
        wait_for(lambda: sender.status().sent == 20 * 200, timeout=30, what="everything sent")
    finally:
        sender.stop(drain_s=0)
        server.shutdown()
        server.server_close()
    assert len(Receiver.bodies) < 20, "several chunks per request"
    assert b"".join(Receiver.bodies) == b"".join(chunk(k).data for k in range(20))
