"""Many fake Rezolus agents in one process, for bench_forward: every agent serves the same recording's rows (V2,
gzip), one row per second of wall time from start, on its own 127.0.0.1 port. Rows are encoded once (`rezgen
replay`'s encoder) and only their systemtime is rewritten as each becomes current, so serving 100 agents costs
little. On SIGTERM it stops and writes, per agent, when each row was first fetched, to --stats.

    python benchmarks/fleet_agents.py RECORDING --agents 100 --rows 120 --stats out.json
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import AsyncIterator

import msgpack
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rezgen.synthetic.encode import encode
from rezgen.synthetic.recorded import RecordedAgent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recording")
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rows", type=int, default=120)
    parser.add_argument("--stats", required=True)
    args = parser.parse_args()
    agent = RecordedAgent(args.recording)
    rows = []
    for i in range(args.rows):
        lap, row = divmod(i, agent.rows)
        rows.append(encode(agent.snapshot(row, lap), 2))
    # Each body is 0x96, [secs, nanos], the rest: the rest is kept, the time pair rewritten per row.
    tails = []
    for raw in rows:
        unpacker = msgpack.Unpacker()
        unpacker.feed(raw)
        unpacker.read_array_header()
        unpacker.skip()
        tails.append(raw[unpacker.tell():])
    start = float(int(time.time()) + 2)
    current: dict[int, bytes] = {}
    lock = threading.Lock()
    first_fetch: dict[int, dict[int, float]] = {}

    def body(k: int) -> bytes:
        with lock:
            found = current.get(k)
            if found is None:
                stamp = int((start + k) * 1e9)
                raw = b"\x96" + msgpack.packb([stamp // 1_000_000_000, stamp % 1_000_000_000]) + tails[k % len(tails)]
                found = gzip.compress(raw, 6)
                current.clear()
                current[k] = found
            return found

    async def binary(request: Request) -> Response:
        now = time.time()
        k = int(now - start)
        if k < 0:
            k = 0
        port = request.scope["server"][1]
        fetched = first_fetch.setdefault(port, {})
        if k not in fetched:
            fetched[k] = now
        return Response(body(k), media_type="application/octet-stream", headers={"content-encoding": "gzip"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # On the way out (uvicorn re-raises the SIGTERM once it has stopped, so nothing after run() would run).
        with open(args.stats, "w") as out:
            json.dump({"start": start, "first_fetch": {str(p): v for p, v in first_fetch.items()},
                       "raw_bytes": len(rows[0]), "gzip_bytes": len(gzip.compress(rows[0], 6))}, out)

    app = Starlette(routes=[Route("/metrics/binary", binary)], lifespan=lifespan)
    sockets = []
    for _ in range(args.agents):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2))

    print("agents " + " ".join(map(str, ports)), flush=True)
    server.run(sockets=sockets)  # until SIGTERM


if __name__ == "__main__":
    main()
