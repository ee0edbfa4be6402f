"""The order of a build's work (`recording.order`): the metrics the sections' queries name first, as they first
name them; the rest from the cheapest to decode to the dearest; the columns decoded as items in that order."""

from __future__ import annotations

from test_reader import counter, gauge, histogram, write

from rezgen.recording.reader import open_recording
from rezgen.site.order import decode_work, need_order
from rezgen.store.model import Kind


def test_metrics_are_in_the_order_the_queries_first_name_them_then_by_name():
    queries = ["sum(irate(c[5m])) / sum(a)", "rate(unknown[1m])", "not a query (", "b + c"]
    assert need_order(["d", "b", "c", "a", "e"], queries) == ["c", "a", "b", "d", "e"]


def test_metrics_no_query_names_go_from_the_cheapest_to_decode_to_the_dearest():
    cost = {"a": 5, "b": 1, "c": 9, "d": 3, "e": 3}
    assert need_order(["d", "b", "c", "a", "e"], ["sum(c)"], cost.__getitem__) == ["c", "b", "d", "e", "a"]


def test_columns_are_decoded_once_histograms_alone_and_counters_in_their_read_groups(tmp_path):
    path = write(tmp_path / "r.parquet", [
        counter("a", [0, 1, 2], metric="requests"),
        histogram("h:buckets", [[0] * 16] * 3, metric="latency"),
        gauge("m", [1, 2, 3], metric="memory"),
        histogram("h2:buckets", [[0] * 16] * 3, metric="size"),
    ])
    recording = open_recording(path)
    work = decode_work(recording, ["histogram_quantile(0.9, sum(irate(size[5m])))"])
    assert [(histogram, [c.meta.key.metric for c in columns]) for histogram, columns in work] == [
        (True, ["size"]),  # the query names it: first
        (True, ["latency"]),  # then by name: latency, memory, requests
        (False, ["requests", "memory"]),  # one read group (a small file), in the recording's column order
    ]
    assert all((c.meta.kind is Kind.HISTOGRAM) == histogram for histogram, columns in work for c in columns)
