"""`rezgen forward --workers N`: the agents shared out among N processes, each a full `forward` of its share.

One process decodes and encodes on one core at a time (the GIL), and 100 agents at 1 s want about a core of that;
a process per core also gives every share its own remote-write connection. Each series belongs to one agent and
each agent to one worker, so every series still reaches a target in order.

The parent supervises: SIGINT/SIGTERM are passed on to the workers (each stops as `forward` does, sending what it
can), their final target status is summed into the usual summary lines; a worker that dies on its own stops the
others and the command fails with one line.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from rezgen.commands.forward import forward, summarise
from rezgen.errors import RezgenError
from rezgen.remote.writer import RemoteWriteConfig

STOP_TIMEOUT_S = 30.0  # a worker's stop: polls in flight (≤ 10 s), the queue's 2 s drain, a request (≤ 10 s)
_COUNTS = ("queued", "sent", "dropped", "rejected", "requests")


class ForwardWorkerError(RezgenError):
    """A worker process ended on its own."""


def default_workers(agents: int) -> int:
    return max(1, min(os.cpu_count() or 1, agents))


def forward_sharded(urls: list[str], workers: int, *, interval_ns: int, remote: RemoteWriteConfig,
                    announce: Callable[[str], None] = print) -> None:
    """Run `workers` processes, agent k in worker k mod `workers`, until SIGINT/SIGTERM (a KeyboardInterrupt here,
    as the CLI turns SIGTERM into one). The workers log as this process does (the `rezgen` logger's level and the
    format of its stream handlers)."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold locks or threads
    remote = dataclasses.replace(remote, queue_bytes=remote.queue_bytes // workers)  # the same memory in all
    logger = logging.getLogger("rezgen")
    logs = (logger.level, [handler.formatter._fmt for handler in logger.handlers
                           if isinstance(handler, logging.StreamHandler) and handler.formatter is not None])
    processes, pipes = [], []
    for k in range(workers):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(urls[k::workers], interval_ns, remote, send, logs),
                                  name=f"rezgen forward worker {k + 1}", daemon=True)
        process.start()
        send.close()
        processes.append(process)
        pipes.append(receive)
    announce(f"forwarding {len(urls)} agents every {interval_ns / 1e9:g} s to {', '.join(remote.urls)} in "
             f"{workers} processes (Ctrl+C to stop)")
    died = None
    try:
        alive = {process.sentinel: process for process in processes}
        while alive and died is None:
            for sentinel in multiprocessing.connection.wait(list(alive), timeout=1.0):
                died = alive.pop(sentinel)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()
    if died is not None:
        k = processes.index(died)
        raise ForwardWorkerError(f"forward worker {k + 1} of {workers} (pid {died.pid}, agents "
                                 f"{', '.join(urls[k::workers][:3])}{', …' if len(urls[k::workers]) > 3 else ''}) "
                                 f"exited with code {died.exitcode}; stopped the others")
    summarise(_sum([pipe.recv() for pipe in pipes if pipe.poll()]), announce)


def _sum(reports: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Targets' status summed over workers, by URL, in the order given."""
    total: dict[str, dict[str, Any]] = {}
    for targets in reports:
        for target in targets:
            found = total.setdefault(target["url"], {"url": target["url"], **dict.fromkeys(_COUNTS, 0)})
            for name in _COUNTS:
                found[name] += target[name]
    return list(total.values())


def _worker(urls: list[str], interval_ns: int, remote: RemoteWriteConfig, send: Any,
            logs: tuple[int, list[str | None]]) -> None:
    stop = threading.Event()

    def stopping(signum: int, frame: Any) -> None:
        stop.set()  # once: a Ctrl+C reaches the whole process group, and the parent passes it on too

    signal.signal(signal.SIGINT, stopping)
    signal.signal(signal.SIGTERM, stopping)
    level, formats = logs
    logger = logging.getLogger("rezgen")
    logger.setLevel(level)
    for fmt in formats:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(fmt))
        logger.addHandler(handler)
    forward(urls, interval_ns=interval_ns, remote=remote, stop=stop, report=send.send)
    send.close()
