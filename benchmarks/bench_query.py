"""Data-core benchmark: open c16.parquet and evaluate the overview's queries, against a bare pyarrow read.

Both run in fresh processes (interpreter start and imports included), median of 5 after a warm-up.
Goals (issue 2): time ratio <= 1.5, rezgen peak RSS <= 300 MB.

    .venv/bin/python benchmarks/bench_query.py [RECORDING]
"""

from __future__ import annotations

import sys

from common import measure_pair, recording

QUANTILES = (0.5, 0.9, 0.99, 0.999, 0.9999)
OVERVIEW = [
    "sum(irate(cpu_usage[5m])) / sum(cpu_cores) / 1e9",
    "sum by (id) (irate(cpu_usage[5m])) / 1e9",
    'sum(irate(network_bytes{direction="transmit"}[5m])) * 8',
    'sum(irate(network_bytes{direction="receive"}[5m])) * 8',
    'sum(irate(network_packets{direction="transmit"}[5m]))',
    'sum(irate(network_packets{direction="receive"}[5m]))',
    "sum(irate(syscall[5m]))",
    "sum(irate(softirq[5m]))",
    "sum by (id) (irate(softirq[5m]))",
    "sum(irate(softirq_time[5m])) / sum(cpu_cores) / 1e9",
    "sum by (id) (irate(softirq_time[5m])) / 1e9",
    'sum(irate(blockio_bytes{op="read"}[5m]))',
    'sum(irate(blockio_operations{op="read"}[5m]))',
    'sum(irate(blockio_bytes{op="write"}[5m]))',
    'sum(irate(blockio_operations{op="write"}[5m]))',
] + [
    f"histogram_quantile({q}, sum(irate({metric}[5m])))"
    for metric in ("tcp_packet_latency", "scheduler_runqueue_latency", "syscall_latency")
    for q in QUANTILES
]

REZGEN = """
import sys
from rezgen.recording.reader import open_recording
from rezgen.promql.engine import range_query
rec = open_recording(sys.argv[1])
start, end = rec.time_range
for expr in sys.argv[2:]:
    range_query(rec.store, expr, start, end, rec.interval_ns)
"""

PYARROW = """
import sys
import pyarrow.parquet as pq
pq.ParquetFile(sys.argv[1]).read()
"""


def main() -> None:
    path = str(recording(sys.argv[1] if len(sys.argv) > 1 else "c16.parquet"))
    floor, rezgen = measure_pair((PYARROW, path), (REZGEN, path, *OVERVIEW))
    print(f"recording: {path}  ({len(OVERVIEW)} overview queries)")
    print(f"pyarrow read   median {floor.wall:.3f} s  runs {floor.walls()}  peak RSS {floor.rss:.0f} MB")
    print(f"rezgen query   median {rezgen.wall:.3f} s  runs {rezgen.walls()}  peak RSS {rezgen.rss:.0f} MB")
    print(f"ratio {rezgen.wall / floor.wall:.2f}x (goal <= 1.5)  rezgen RSS {rezgen.rss:.0f} MB (goal <= 300)")

if __name__ == "__main__":
    main()
