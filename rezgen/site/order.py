"""The order a build works in: the metrics its sections' queries name, as they first name them, then the rest.

The caller of a build takes its tasks from the front and the child process from the back (see `prefetch`); the
sections come first and read the named metrics, so the caller charts what it already decoded. The other metrics
go from the cheapest to decode to the dearest: the child starts with the dearest, and the two meet over cheap
charts instead of one waiting for the other's last.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable

from rezgen.plotdata.evaluation import selector_names
from rezgen.promql.values import PromQLError
from rezgen.recording.reader import Column, Recording
from rezgen.store.model import Kind

Work = list[tuple[bool, list[Column]]]  # items: (histogram?, columns decoded together), in decoding order


def decode_work(recording: Recording, queries: Iterable[str]) -> Work:
    """What to decode, in the order the queries first name the metrics (then the rest): counters and gauges in
    their read groups, histograms a column at a time. Only what is not loaded yet."""
    store, table = recording.store, recording.table
    unloaded = [c for c in recording.columns if (s := store.get(table, c.meta.key)) is not None and not s.loaded]
    by_metric: dict[str, list[Column]] = defaultdict(list)
    for column in unloaded:
        by_metric[column.meta.key.metric].append(column)
    group_of = {id(c): i for i, group in enumerate(recording.scalar_groups) for c in group}
    wanted = {id(c) for c in unloaded}
    work: Work = []
    taken: set[int] = set()
    for metric in need_order(by_metric, queries):
        for column in by_metric[metric]:
            if column.meta.kind is Kind.HISTOGRAM:
                work.append((True, [column]))
            elif group_of[id(column)] not in taken:
                taken.add(group_of[id(column)])
                work.append((False, [c for c in recording.scalar_groups[group_of[id(column)]] if id(c) in wanted]))
    return work


def need_order(metrics: Iterable[str], queries: Iterable[str], cost: Callable[[str], float] | None = None
               ) -> list[str]:
    """The metrics in the order the queries first name them, then the others in name order, or with `cost` from
    the cheapest to the dearest: of two processes taking a list from either end, the one working from the back
    starts with the dearest, and the two meet over cheap ones rather than one waiting for the other's last."""
    known = set(metrics)
    order = named_metrics(queries, known)
    rest = sorted(known - order.keys())
    if cost is not None:
        rest.sort(key=cost)  # stable: equal costs stay in name order
    order.update((name, None) for name in rest)
    return list(order)


def named_metrics(queries: Iterable[str], known: set[str]) -> dict[str, None]:
    """The known metrics the queries name, in the order they first do."""
    order: dict[str, None] = {}
    for query in queries:
        try:
            names = selector_names(query)
        except PromQLError:
            continue  # the chart reports it
        order.update((name, None) for name in names if name in known)
    return order
