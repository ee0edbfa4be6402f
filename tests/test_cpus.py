"""The CPU count a chart's "Total" multiplies its mean per CPU by."""

from __future__ import annotations

import pytest
from rawparquet import RawRecording
from shared import shared_recording

from rezgen.plotdata.cpus import cpu_count
from rezgen.plotdata.plots import TimeRange
from rezgen.recording.reader import open_recording
from rezgen.timeparse import ceil_ms


def _span(recording) -> TimeRange:
    start, end = recording.time_range
    return TimeRange(ceil_ms(start), end, recording.interval_ns)


@pytest.mark.parametrize("name", ["c16.parquet", "demo.parquet", "AB_base.parquet"])
def test_the_cpu_count_is_the_largest_sum_of_cpu_cores(name):
    path = shared_recording(name)
    raw = RawRecording(path)
    columns = [raw.values(c) for c in raw.select("cpu_cores")]
    expected = int(max(sum(v[i] for v in columns) for i in range(len(columns[0]))))
    recording = open_recording(path)
    assert cpu_count(recording.store, _span(recording)) == expected


def test_data_without_cpu_cores_has_no_cpu_count():
    recording = open_recording(shared_recording("simple_capture.parquet"))
    assert cpu_count(recording.store, _span(recording)) is None
