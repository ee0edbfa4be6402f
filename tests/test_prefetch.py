"""A build's series (`site.budget`): decoded through one loader each, by the decoding thread or by the caller,
released and decoded again; whatever happened, every series reads exactly the values of the file, as read
independently by tests/rawparquet.py (plain pyarrow)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from rawparquet import RawRecording
from siterecordings import write_two_hosts

from rezgen.recording.reader import Recording, RecordingError, open_recording
from rezgen.site import budget as budget_module
from rezgen.site.budget import SeriesBudget
from rezgen.store.store import HistogramSeries

ORDER = ["syscall_latency", "cpu_usage"]


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


def decoding_threads(monkeypatch) -> list[str]:
    """The name of the thread of each decoding from now on."""
    threads: list[str] = []
    read_scalars, batches = Recording.read_scalars, Recording._batches

    def scalars(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return read_scalars(self, *args, **kwargs)

    def histogram(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return batches(self, *args, **kwargs)

    monkeypatch.setattr(Recording, "read_scalars", scalars)
    monkeypatch.setattr(Recording, "_batches", histogram)
    return threads


def test_the_thread_decodes_every_series_ahead_of_the_caller(two_hosts, monkeypatch):
    recording = open_recording(two_hosts)
    budget = SeriesBudget(recording)
    threads = decoding_threads(monkeypatch)
    with budget.decode_ahead(ORDER):
        time.sleep(0.5)  # the thread has decoded this small file: the caller decodes nothing
        assert_holds_the_files_values(recording, RawRecording(two_hosts))
    assert threads and set(threads) == {"rezgen-decode"}


def test_the_caller_racing_the_thread_reads_the_files_values_each_decoded_once(two_hosts, monkeypatch):
    recording = open_recording(two_hosts)
    budget = SeriesBudget(recording)
    threads = decoding_threads(monkeypatch)
    with budget.decode_ahead(ORDER):
        assert_holds_the_files_values(recording, RawRecording(two_hosts))
    assert len(threads) == len(budget._items)


def test_the_thread_stops_at_the_budget_and_the_caller_decodes_the_rest(two_hosts, monkeypatch):
    monkeypatch.setattr(budget_module, "LOADED_BUDGET", 0)
    recording = open_recording(two_hosts)
    budget = SeriesBudget(recording)
    threads = decoding_threads(monkeypatch)
    with budget.decode_ahead(ORDER):
        time.sleep(0.5)
        assert threads == ["rezgen-decode"]  # one item, then it is over the budget
        assert_holds_the_files_values(recording, RawRecording(two_hosts))
    assert threads.count("rezgen-decode") == 1


def test_released_series_decode_again_to_the_same_values(two_hosts):
    recording = open_recording(two_hosts)
    budget = SeriesBudget(recording)
    with budget.decode_ahead(ORDER):
        assert_holds_the_files_values(recording, RawRecording(two_hosts))
    assert budget.loaded_bytes() > 0
    for metric in {series.key.metric for series in recording.store}:
        budget.release(metric)
    assert budget.loaded_bytes() == 0 and not any(series.loaded for series in recording.store)
    assert_holds_the_files_values(recording, RawRecording(two_hosts))


def test_a_column_the_thread_could_not_decode_fails_for_the_caller_as_its_own_decoding_would(two_hosts, monkeypatch):
    recording = open_recording(two_hosts)
    budget = SeriesBudget(recording)

    def broken(self, *args, **kwargs):
        raise RecordingError("cannot read columns: broken")

    monkeypatch.setattr(Recording, "read_scalars", broken)
    with budget.decode_ahead(ORDER):
        time.sleep(0.5)
        cpu = next(series for series in recording.store if series.key.metric == "cpu_usage")
        with pytest.raises(RecordingError, match="broken"):
            cpu.points()
