"""Decoding ahead (`recording.prefetch.DecodeAhead`): whether a child process or a thread decodes, and whatever
becomes of the decoder, every series of the build reads exactly the values of the file, as read independently
by tests/rawparquet.py (plain pyarrow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rawparquet import RawRecording
from siterecordings import write_two_hosts
from test_reader import counter, histogram, write

from rezgen.recording.reader import Recording, open_recording
from rezgen.site.prefetch import DecodeAhead, run_in_order
from rezgen.store.store import HistogramSeries

QUERIES = ['histogram_quantile(0.99, sum(irate(syscall_latency{op="write"}[5m])))', "sum(irate(cpu_usage[5m]))"]


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


def test_a_thread_decodes_every_series_ahead_of_the_caller(two_hosts, monkeypatch):
    recording = open_recording(two_hosts)
    with DecodeAhead(recording, QUERIES, fork=False) as ahead:
        assert ahead.child is None
        time.sleep(0.5)  # the thread has decoded this small file: the caller decodes nothing
        refuse_to_decode(monkeypatch)
        assert_holds_the_files_values(recording, RawRecording(two_hosts))


def test_the_child_sends_the_caller_the_columns_of_metrics_the_queries_name_and_no_others(two_hosts, monkeypatch):
    recording = open_recording(two_hosts)

    def read_everything() -> tuple[int, int]:  # the only task: the child takes it, as it takes tasks from the back
        return os.getpid(), sum(len(series.points()[0]) for series in recording.store)

    with DecodeAhead(recording, ["sum(irate(cpu_usage[5m]))"], [read_everything], fork=True) as ahead:
        assert ahead.child is not None
        time.sleep(0.5)  # the child has taken the task
        [(pid, points)] = ahead.run_tasks()  # the child's messages are in by the time its result is
        assert pid == ahead.child
        decoded = record_decoding(monkeypatch)  # here, in the caller
        assert points == sum(len(series.points()[0]) for series in recording.store)
        assert_holds_the_files_values(recording, RawRecording(two_hosts))
    assert "cpu_usage" not in decoded  # sent: the caller's sections read what the queries name
    assert "syscall_latency" in decoded  # a histogram no query names: only the child's own task read it


def record_decoding(monkeypatch) -> set[str]:
    """The metrics whose columns are decoded from now on."""
    decoded: set[str] = set()
    read_scalars, batches = Recording.read_scalars, Recording._batches

    def scalars(self, columns, *args, **kwargs):
        decoded.update(column.meta.key.metric for column in columns)
        return read_scalars(self, columns, *args, **kwargs)

    def histogram(self, column, *args, **kwargs):
        decoded.add(column.meta.key.metric)
        return batches(self, column, *args, **kwargs)

    monkeypatch.setattr(Recording, "read_scalars", scalars)
    monkeypatch.setattr(Recording, "_batches", histogram)
    return decoded


def test_columns_the_child_sent_are_not_decoded_again_by_the_caller(two_hosts, monkeypatch):
    recording = open_recording(two_hosts)
    named = [s for s in recording.store if s.key.metric in ("syscall_latency", "cpu_usage")]

    def read_named() -> int:
        return sum(len(series.points()[0]) for series in named)

    with DecodeAhead(recording, QUERIES, [read_named], fork=True) as ahead:
        time.sleep(0.5)  # the child has taken the task
        expected = ahead.run_tasks()
        refuse_to_decode(monkeypatch)  # here, in the caller
        assert expected == [read_named()]


def refuse_to_decode(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(Recording, "read_scalars", refuse)
    monkeypatch.setattr(Recording, "_batches", refuse)


def test_series_a_child_never_delivered_decode_themselves(two_hosts, monkeypatch):
    monkeypatch.setattr(DecodeAhead, "_child_main", lambda self, pipe: None)
    recording = open_recording(two_hosts)
    with DecodeAhead(recording, QUERIES, fork=True):
        assert_holds_the_files_values(recording, RawRecording(two_hosts))


def test_series_a_thread_never_delivered_decode_themselves(two_hosts, monkeypatch):
    monkeypatch.setattr(DecodeAhead, "_decode_ahead", lambda self: self._abandon())
    recording = open_recording(two_hosts)
    with DecodeAhead(recording, QUERIES, fork=False):
        assert_holds_the_files_values(recording, RawRecording(two_hosts))


def test_series_whose_child_process_was_killed_decode_themselves(two_hosts, tmp_path, monkeypatch):
    monkeypatch.setattr(DecodeAhead, "_child_main", lambda self, pipe: os.kill(os.getpid(), signal.SIGKILL))
    recording = open_recording(two_hosts)
    with DecodeAhead(recording, QUERIES, marking_tasks(tmp_path / "marks", 5), fork=True) as ahead:
        assert_holds_the_files_values(recording, RawRecording(two_hosts))
        assert ahead.run_tasks() == [(number, os.getpid()) for number in range(5)]


def test_series_left_when_the_decoder_stops_decode_themselves(two_hosts):
    recording = open_recording(two_hosts)
    with DecodeAhead(recording, QUERIES, fork=True):
        pass  # the build ended (or failed) before reading anything
    assert_holds_the_files_values(recording, RawRecording(two_hosts))


def test_a_column_the_child_skips_reaches_the_parent_as_a_warning(tmp_path):
    # g=2, m=5 means 16 buckets; these rows have 12: decoding drops the column with a warning.
    path = write(tmp_path / "short.parquet", [
        counter("ok", [0, 1, 2]),
        histogram("short:buckets", [[0] * 12, [1] * 12, [2] * 12], metric="short"),
    ])
    recording = open_recording(path)
    with DecodeAhead(recording, ["short"], fork=True):
        series = next(s for s in recording.store if isinstance(s, HistogramSeries))
        assert len(series.window().times) == 0
    assert any("'short:buckets'" in w and "16 buckets" in w for w in recording.warnings)


def test_a_child_process_is_only_forked_where_no_other_thread_runs(two_hosts):
    recording = open_recording(two_hosts)
    started, release = threading.Event(), threading.Event()
    other = threading.Thread(target=lambda: (started.set(), release.wait()))
    other.start()
    started.wait()
    try:
        with DecodeAhead(recording, QUERIES) as ahead:
            assert ahead.child is None
    finally:
        release.set()
        other.join()


def marking_tasks(path, count: int, fails_in_child: bool = False) -> list:
    """Tasks that each append their number and process to a file and return them (tasks may run in the child
    process)."""
    parent = os.getpid()

    def task(number: int) -> tuple[int, int]:
        if fails_in_child and os.getpid() != parent:
            raise RuntimeError("a task failing in the child")
        time.sleep(0.01)
        with open(path, "a") as out:
            out.write(f"{number} {os.getpid()}\n")
        return number, os.getpid()

    return [lambda n=n: task(n) for n in range(count)]


def runs(path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fork", [True, False], ids=["child process", "thread"])
def test_every_task_runs_exactly_once_and_its_result_comes_back_in_order(two_hosts, tmp_path, fork):
    marks = tmp_path / "marks"
    recording = open_recording(two_hosts)
    announced = []
    with DecodeAhead(recording, QUERIES, marking_tasks(marks, 50), fork=fork) as ahead:
        time.sleep(0.5)  # a child decodes this small file at once, and then takes tasks from the back
        results = ahead.run_tasks(announced.append)
        done = runs(marks)  # all written by the time run_tasks returns
    assert sorted(done) == sorted(results)
    assert [number for number, _ in results] == list(range(50))
    mine = [number for number, pid in results if pid == os.getpid()]
    assert announced == mine + [number for number in range(50) if number not in mine]  # the child's at the end
    if fork:
        assert {pid for _, pid in done} == {os.getpid(), ahead.child}
        assert results[-1] == (49, ahead.child)
    else:
        assert {pid for _, pid in done} == {os.getpid()}


def test_tasks_that_fail_in_the_child_are_run_by_the_caller(two_hosts, tmp_path):
    marks = tmp_path / "marks"
    recording = open_recording(two_hosts)
    with DecodeAhead(recording, QUERIES, marking_tasks(marks, 50, fails_in_child=True), fork=True) as ahead:
        time.sleep(0.5)  # the child has taken a task, and failed
        results = ahead.run_tasks()
    assert sorted(runs(marks)) == results == [(number, os.getpid()) for number in range(50)]


def test_run_in_order_runs_and_announces_every_task_here(tmp_path):
    announced = []
    results = run_in_order(marking_tasks(tmp_path / "marks", 5), announced.append)
    assert results == [(number, os.getpid()) for number in range(5)] and announced == list(range(5))


KILLED_PARENT = """
import sys, time
from rezgen.site.prefetch import DecodeAhead
from rezgen.recording.reader import open_recording
recording = open_recording(sys.argv[1])
with DecodeAhead(recording, [], [lambda: time.sleep(60)], fork=True) as ahead:
    print(ahead.child, flush=True)
    time.sleep(60)
"""


def test_the_child_process_dies_with_a_parent_killed_outright(two_hosts):
    parent = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(two_hosts)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    parent.stdout.close()
    for _ in range(100):
        try:
            if ") Z " in Path(f"/proc/{child}/stat").read_text():  # dead, not reaped yet
                return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the child outlived its parent")
