"""`RemoteWriter`: every snapshot ingested, to every remote-write target (`--remote-write URL`, repeatable).

`add` runs on the poller's thread: it translates the snapshot once (`samples.Translator`, one per agent),
compresses it (`sender.Packed`) and hands it to each target's queue, without waiting on any of them (`sender.Sender`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rezgen.agent.pieces import Snapshot
from rezgen.remote.samples import Translator
from rezgen.remote.sender import MAX_QUEUE_BYTES, Packed, Sender


@dataclass(frozen=True)
class RemoteWriteConfig:
    urls: list[str]
    bound_ns: int = 600_000_000_000  # --remote-write-queue: how much data (in data time) waits for a target
    external: dict[str, str] = field(default_factory=dict)  # --external-label k=v
    grouping_power: int = 2  # --histogram-grouping-power
    queue_bytes: int = MAX_QUEUE_BYTES  # per target: the memory bound of its queue (shared out by forward's workers)

    def writer(self) -> RemoteWriter:
        return RemoteWriter(self.urls, bound_ns=self.bound_ns, external=self.external,
                            grouping_power=self.grouping_power, queue_bytes=self.queue_bytes)


class RemoteWriter:
    def __init__(self, urls: list[str], *, bound_ns: int, external: Mapping[str, str] | None = None,
                 grouping_power: int = 2, queue_bytes: int = MAX_QUEUE_BYTES):
        self.senders = [Sender(url, bound_ns, queue_bytes) for url in urls]
        self.external = dict(external or {})
        self.grouping_power = grouping_power
        self._translators: dict[str, Translator] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        for sender in self.senders:
            sender.start()

    def stop(self) -> None:
        for sender in self.senders:
            sender.stop()

    def add(self, node: str, snapshot: Snapshot) -> None:
        """Queue one agent's snapshot for every target; call from one thread per node at a time."""
        translator = self._translators.get(node)
        if translator is None:
            with self._lock:
                translator = self._translators.setdefault(
                    node, Translator(node, self.external, self.grouping_power))
        chunk = Packed.of(translator.translate(snapshot))
        for sender in self.senders:
            sender.put(chunk)

    def status(self) -> list[dict[str, Any]]:
        return [sender.status().json() for sender in self.senders]
