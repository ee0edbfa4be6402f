"""`rezgen forward --live AGENT... --remote-write URL`: agents' snapshots to Prometheus-compatible TSDBs, headless.

A bridge with no web UI and no sliding window: each snapshot is translated and queued for every target
(`remote.writer`), and nothing else is kept. The terminal gets a line per change of an agent's reachability, a
target's first failure of each kind, and a summary per target on the way out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rezgen.agent.client import AgentClient, node_name
from rezgen.agent.poller import Poller
from rezgen.remote.writer import RemoteWriteConfig


def forward(urls: list[str], *, interval_ns: int, remote: RemoteWriteConfig,
            announce: Callable[[str], None] = print, stop: threading.Event | None = None,
            report: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
    """Run until `stop` is set or Ctrl+C (SIGTERM is turned into one by the CLI). `report` (a worker of
    `forward_workers`) takes the targets' final status instead of the start line and the summary lines."""
    writer = remote.writer()  # logs a target's failures
    writer.start()
    clients = []
    for i, url in enumerate(urls):
        node = node_name(url)

        def on_snapshot(snapshot: Any, node: str = node) -> None:
            writer.add(node, snapshot)

        # Polls spread over the interval (agents sampling on their own clock are then followed: PhaseLock).
        clients.append(AgentClient(url, interval_ns / 1e9, on_snapshot=on_snapshot,  # logs reachability
                                   offset_s=i / len(urls) * interval_ns / 1e9))
    poller = Poller(clients)
    poller.start()
    if report is None:
        announce(f"forwarding {len(urls)} agent{'s' if len(urls) != 1 else ''} every {interval_ns / 1e9:g} s to "
                 f"{', '.join(remote.urls)} (Ctrl+C to stop)")
    stop = stop or threading.Event()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        poller.stop()
        writer.stop()
        if report is not None:
            report(writer.status())
        else:
            summarise(writer.status(), announce)


def summarise(targets: list[dict[str, Any]], announce: Callable[[str], None]) -> None:
    for target in targets:
        announce(f"remote write {target['url']}: {target['sent']} samples sent, {target['dropped']} dropped "
                 f"(queue full), {target['rejected']} rejected, {target['queued']} unsent")
