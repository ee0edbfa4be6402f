"""The live ingest's sliding window: rows older than the retention are evicted by agent time, in batches."""

from __future__ import annotations

from rezgen.agent.pieces import Entry, Snapshot
from rezgen.live.ingest import EVICT_LATE, Ingest
from rezgen.store.model import SeriesKey
from rezgen.store.store import Store

S = 1_000_000_000


def test_the_window_keeps_the_retention_and_at_most_a_64th_more() -> None:
    retention = 640 * S
    ingest = Ingest(Store(S), retention)
    ingest.add_agent("agent", None)
    table = ingest.agents()["agent"].table
    kept = []
    for k in range(3000):
        assert ingest.append("agent", Snapshot(2, k * S, None, {}, [Entry("c", SeriesKey("c"), k)], [], []))
        stamps = table.timestamps
        assert stamps[0] >= k * S - retention - retention // EVICT_LATE  # bounded
        assert stamps[0] <= max(0, k * S - retention)  # nothing within the retention is gone
        kept.append(len(stamps))
    assert max(kept) > 641 and min(kept[700:]) >= 640  # batches: sometimes more than the retention, never less
