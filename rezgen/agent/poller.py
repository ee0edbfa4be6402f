"""`Poller`: many agents polled from a few threads instead of a thread each.

A scheduler thread keeps the clients in a heap by `next_due` and hands each due one to a small pool of workers,
which run its `AgentClient.step` (fetch, decode, callbacks) and give it back with its next due time. A client is
in the heap or in a worker, never both: one request at a time per agent, as with its own thread. With a thread
per agent, 100 agents meant 100 threads taking turns on the GIL; every wake-up of an I/O-bound one (a socket read,
the remote-write sender) waited behind the CPU-bound ones, so polls and sends fell behind long before the CPU ran
out. A few workers keep the same overlap of network waits with far less of that convoy.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from rezgen.agent.client import AgentClient

logger = logging.getLogger(__name__)
WORKERS = 4


class Poller:
    def __init__(self, clients: list[AgentClient], workers: int = WORKERS):
        self.clients = clients
        self._pool = ThreadPoolExecutor(max(1, min(workers, len(clients))), thread_name_prefix="agent poll")
        self._heap: list[tuple[float, int, AgentClient]] = []
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._schedule, name="agent scheduler", daemon=True)

    def start(self) -> None:
        with self._cond:
            for i, client in enumerate(self.clients):
                client.begin()
                heapq.heappush(self._heap, (client.next_due, i, client))
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; returns once the polls in flight have ended (their clients' stop cuts waits short), so
        no callback runs after this."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for client in self.clients:
            client.stop(timeout=0)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _schedule(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                due, i, client = self._heap[0]
                delay = due - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                try:
                    self._pool.submit(self._run, i, client)
                except RuntimeError:  # shut down
                    return

    def _run(self, i: int, client: AgentClient) -> None:
        try:
            client.step()
        except Exception:  # a bug in one client must not take the others' polls down
            logger.exception("agent %s: poll failed", client.url)
            client.next_due = time.monotonic() + client.interval_s
        with self._cond:
            if not self._stopped:
                heapq.heappush(self._heap, (client.next_due, i, client))
                self._cond.notify()
