"""A build's series (`site.budget`): decoded through one loader each, released and decoded again; every series
reads exactly the values of the file, as read independently by tests/rawparquet.py (plain pyarrow)."""

from __future__ import annotations

import numpy as np
import pytest
from rawparquet import RawRecording
from siterecordings import write_two_hosts

from rezgen.recording.reader import Recording, open_recording
from rezgen.site.budget import SeriesBudget
from rezgen.store.store import HistogramSeries


@pytest.fixture
def two_hosts(tmp_path):
    return write_two_hosts(tmp_path / "two.parquet").path


def assert_holds_the_files_values(recording: Recording, raw: RawRecording) -> None:
    by_index = {c.index: c for c in raw.metric_columns}
    stamps = raw.timestamps
    for column in recording.columns:
        series = recording.store.get(recording.table, column.meta.key)
        expected = by_index[column.index]
        if isinstance(series, HistogramSeries):
            present, dense = raw.histogram(expected)
            window = series.window(int(stamps[0]) - 1, int(stamps[-1]))
            assert np.array_equal(window.times, stamps[present]), column.name
            got = window.cumulative(np.arange(len(window.times)))
            assert np.array_equal(got, dense[present].astype(np.float64)), column.name
        else:
            values = raw.values(expected)
            times, got = series.points()
            assert np.array_equal(times, stamps[~np.isnan(values)]), column.name
            assert np.array_equal(got, values[~np.isnan(values)]), column.name


def test_released_series_decode_again_to_the_same_values(two_hosts):
    recording = open_recording(two_hosts)
    budget = SeriesBudget(recording)
    assert_holds_the_files_values(recording, RawRecording(two_hosts))
    assert budget.loaded_bytes() > 0
    for metric in {series.key.metric for series in recording.store}:
        budget.release(metric)
    assert budget.loaded_bytes() == 0 and not any(series.loaded for series in recording.store)
    assert_holds_the_files_values(recording, RawRecording(two_hosts))
