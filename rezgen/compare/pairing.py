"""Which host of one recording is compared with which of the other: nodes pair by name.

A recording of one agent has a single host (`SINGLE_HOST`); two such recordings pair with each other whatever their
machines are called. When one recording combines several nodes, a single-host recording pairs with the node of
its own hostname, if there is one. A host without a partner is shown alone, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from rezgen.pages.model import SINGLE_HOST


@dataclass(frozen=True)
class HostPair:
    key: str  # the host as pages and data paths name it
    a: str | None  # the host in recording A (SINGLE_HOST for its only one), None when A has no such host
    b: str | None


def pair_hosts(hosts_a: list[str], hosts_b: list[str], hostname_a: str | None = None,
               hostname_b: str | None = None) -> list[HostPair]:
    """`hosts_*`: the node names of a multi-node recording, [] for a single host; `hostname_*`: a single-host
    recording's machine name (from its system information), which a multi-node partner may name as a node."""
    if not hosts_a and not hosts_b:
        return [HostPair(SINGLE_HOST, SINGLE_HOST, SINGLE_HOST)]
    names_a = hosts_a or [hostname_a or SINGLE_HOST]
    names_b = hosts_b or [hostname_b or SINGLE_HOST]
    pairs = []
    for name in sorted(set(names_a) | set(names_b)):
        in_a = (SINGLE_HOST if not hosts_a else name) if name in names_a else None
        in_b = (SINGLE_HOST if not hosts_b else name) if name in names_b else None
        pairs.append(HostPair(name, in_a, in_b))
    return pairs
