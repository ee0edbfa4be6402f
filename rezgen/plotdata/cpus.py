"""How many CPUs a host has, for the "Total" of a chart that averages over CPUs (a page multiplies the mean by it).

The one query the dashboards divide by (`sum(cpu_cores)`), evaluated over the page's range; its largest value
(CPUs come online, rarely go), or None when the data has no `cpu_cores`."""

from __future__ import annotations

import numpy as np

from rezgen.plotdata.evaluation import Scope, TimeRange, chunk_matrix
from rezgen.promql.engine import evaluate_range
from rezgen.promql.values import PromQLError
from rezgen.store.store import Store

CPU_QUERY = "sum(cpu_cores)"


def cpu_count(store: Store, span: TimeRange, scope: Scope = ()) -> int | None:
    if not store.series_of("cpu_cores"):
        return None
    top = np.nan
    try:
        for _, times, value in evaluate_range(store, CPU_QUERY, span.start_ns, span.end_ns, span.step_ns, scope):
            _, rows = chunk_matrix(value, len(times))
            if rows.size and np.isfinite(rows).any():
                top = np.nanmax([top, np.nanmax(rows)])
    except PromQLError:
        return None
    return int(top) if np.isfinite(top) and top > 0 else None
