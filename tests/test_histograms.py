"""HistogramColumn: cumulative bucket histograms kept as sparse per-row deltas, with resets and eviction.

Rows are given as cumulative counts (what a Rezolus recording holds); expectations are the same cumulative arrays read
back, or bucket-wise increases worked out by hand (a reset restarts the count from zero, as in Prometheus).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from rezgen.store.histograms import HistogramColumn

BUCKETS = 8


def row(**counts: float) -> np.ndarray:
    """row(b1=3, b5=2) → dense cumulative array with bucket 1 = 3 and bucket 5 = 2."""
    out = np.zeros(BUCKETS)
    for name, count in counts.items():
        out[int(name[1:])] = count
    return out


def column_of(*rows: np.ndarray | None) -> HistogramColumn:
    """A column from cumulative rows, None meaning a row without a sample."""
    column = HistogramColumn(BUCKETS)
    for r in rows:
        if r is None:
            column.append_absent(1)
        else:
            column.append_cumulative(r)
    return column


def capacity(grow_array) -> int:
    return grow_array._data.shape[0]


def capacities(column: HistogramColumn) -> tuple[int, ...]:
    return tuple(capacity(a) for a in (column._present, column._reset, column._ends, column._index, column._count))


ROWS = [row(b1=1), row(b1=3, b5=1), row(b1=3, b5=4), row(b1=6, b5=4, b7=2)]


# --- appending and reading back ---------------------------------------------------------------------------------------

def test_cumulative_rows_read_back_exactly():
    column = column_of(*ROWS)
    assert column.rows == 4
    np.testing.assert_array_equal(column.cumulative_at(np.arange(4)), np.stack(ROWS))


def test_only_changed_buckets_are_stored():
    """Deltas: {1: 1}, {1: 2, 5: 1}, {5: 3}, {1: 3, 7: 2} → 6 stored entries."""
    assert column_of(*ROWS).entries == 6


def test_an_unchanged_row_stores_nothing():
    column = column_of(row(b2=5), row(b2=5), row(b2=5))
    assert column.entries == 1
    np.testing.assert_array_equal(column.cumulative_at(np.array([2])), [row(b2=5)])


def test_cumulative_at_a_subset_of_rows():
    column = column_of(*ROWS)
    np.testing.assert_array_equal(column.cumulative_at(np.array([1, 3])), np.stack([ROWS[1], ROWS[3]]))


def test_wrong_bucket_count_is_rejected():
    column = HistogramColumn(BUCKETS)
    with pytest.raises(ValueError):
        column.append_cumulative(np.zeros(BUCKETS + 1))


def test_extend_with_a_presence_mask():
    column = HistogramColumn(BUCKETS)
    column.extend_cumulative(np.stack([row(b0=1), row(b0=2, b3=1)]), np.array([True, False, True]))
    assert column.rows == 3
    np.testing.assert_array_equal(column.cumulative_at(np.array([0, 2])), np.stack([row(b0=1), row(b0=2, b3=1)]))


def test_extend_checks_the_block_matches_the_mask():
    column = HistogramColumn(BUCKETS)
    with pytest.raises(ValueError):
        column.extend_cumulative(np.stack([row(b0=1)]), np.array([True, True]))


# --- absent rows ------------------------------------------------------------------------------------------------------

def test_absent_rows_hold_no_sample_and_do_not_break_cumulative_values():
    column = column_of(row(b1=2), None, None, row(b1=5, b4=1))
    assert column.rows == 4
    np.testing.assert_array_equal(column.cumulative_at(np.array([0, 3])), np.stack([row(b1=2), row(b1=5, b4=1)]))


def test_a_window_lists_only_rows_with_samples():
    column = column_of(row(b1=2), None, row(b1=3), None, row(b1=7))
    times = np.array([10, 20, 30, 40, 50])
    window = column.window(times, slice(0, 5))
    assert window.times.tolist() == [10, 30, 50]
    assert window.rows.tolist() == [0, 2, 4]


def test_a_window_over_part_of_the_rows():
    column = column_of(row(b1=2), None, row(b1=3), None, row(b1=7))
    window = column.window(np.array([10, 20, 30, 40, 50]), slice(1, 4))
    assert window.times.tolist() == [30]
    np.testing.assert_array_equal(window.cumulative(np.array([0])), [row(b1=3)])


def test_a_window_past_the_last_written_row():
    """The table may have more rows than a histogram that stopped reporting."""
    column = column_of(row(b1=2), row(b1=3))
    window = column.window(np.array([10, 20, 30, 40]), slice(0, 4))
    assert window.times.tolist() == [10, 20]


# --- increases and resets ---------------------------------------------------------------------------------------------

def test_increase_between_two_samples_is_the_bucket_wise_difference():
    column = column_of(*ROWS)
    window = column.window(np.array([1, 2, 3, 4]), slice(0, 4))
    increase = window.increase(np.array([0, 1]), np.array([3, 2]))
    np.testing.assert_array_equal(increase, np.stack([row(b1=5, b5=4, b7=2), row(b5=3)]))


def test_increase_skips_absent_rows():
    column = column_of(row(b1=2), None, row(b1=3, b2=1), None, row(b1=7, b2=1))
    window = column.window(np.array([1, 2, 3, 4, 5]), slice(0, 5))
    np.testing.assert_array_equal(window.increase(np.array([0]), np.array([2])), [row(b1=5, b2=1)])


def test_a_decrease_in_any_bucket_is_a_reset():
    """5 → 8 → (reset) 2 → 4 in bucket 1: increase = 3 + 2 + 2 = 7 (the restart counts from zero)."""
    column = column_of(row(b1=5, b3=1), row(b1=8, b3=1), row(b1=2), row(b1=4, b3=1))
    window = column.window(np.array([1, 2, 3, 4]), slice(0, 4))
    np.testing.assert_array_equal(window.increase(np.array([0]), np.array([3])), [row(b1=7, b3=1)])
    # The interval of the reset alone: the whole new cumulative array.
    np.testing.assert_array_equal(window.increase(np.array([1]), np.array([2])), [row(b1=2)])


def test_cumulative_values_after_a_reset_are_the_new_counts():
    rows = [row(b1=5, b3=1), row(b1=8, b3=1), row(b1=2), row(b1=4, b3=1)]
    column = column_of(*rows)
    np.testing.assert_array_equal(column.cumulative_at(np.arange(4)), np.stack(rows))


def test_a_reset_to_all_zeros():
    rows = [row(b1=5), row(), row(b2=1)]
    column = column_of(*rows)
    np.testing.assert_array_equal(column.cumulative_at(np.arange(3)), np.stack(rows))
    window = column.window(np.array([1, 2, 3]), slice(0, 3))
    np.testing.assert_array_equal(window.increase(np.array([0]), np.array([2])), [row(b2=1)])


def test_several_resets():
    rows = [row(b0=4), row(b0=1), row(b0=3), row(b0=2), row(b0=9)]
    column = column_of(*rows)
    np.testing.assert_array_equal(column.cumulative_at(np.arange(5)), np.stack(rows))
    window = column.window(np.arange(5), slice(0, 5))
    # 4 → 1 (reset: +1) → 3 (+2) → 2 (reset: +2) → 9 (+7) = 12.
    np.testing.assert_array_equal(window.increase(np.array([0]), np.array([4])), [row(b0=12)])


# --- eviction ---------------------------------------------------------------------------------------------------------

def test_dropping_rows_keeps_the_cumulative_values_of_the_rest():
    column = column_of(*ROWS)
    column.drop_front(2)
    assert column.rows == 2
    np.testing.assert_array_equal(column.cumulative_at(np.arange(2)), np.stack(ROWS[2:]))


def test_dropping_rows_frees_their_entries():
    column = column_of(*ROWS)
    column.drop_front(2)
    assert column.entries == 3  # deltas of the kept rows: {5: 3}, {1: 3, 7: 2}


def test_dropping_in_steps_equals_dropping_at_once():
    once, steps = column_of(*ROWS), column_of(*ROWS)
    once.drop_front(3)
    for _ in range(3):
        steps.drop_front(1)
    np.testing.assert_array_equal(once.cumulative_at(np.array([0])), [ROWS[3]])
    np.testing.assert_array_equal(steps.cumulative_at(np.array([0])), [ROWS[3]])


def test_dropping_past_a_reset():
    rows = [row(b1=5), row(b1=8), row(b1=2), row(b1=4), row(b1=6, b2=1)]
    column = column_of(*rows)
    column.drop_front(3)  # the reset row goes
    np.testing.assert_array_equal(column.cumulative_at(np.arange(2)), np.stack(rows[3:]))


def test_dropping_before_a_reset_keeps_the_reset():
    rows = [row(b1=5), row(b1=8), row(b1=2), row(b1=4)]
    column = column_of(*rows)
    column.drop_front(1)
    np.testing.assert_array_equal(column.cumulative_at(np.arange(3)), np.stack(rows[1:]))
    window = column.window(np.arange(3), slice(0, 3))
    np.testing.assert_array_equal(window.increase(np.array([0]), np.array([2])), [row(b1=4)])  # 2 (restart) + 2


def test_dropping_absent_rows():
    rows = [row(b1=1), None, None, row(b1=4), None, row(b1=6)]
    column = column_of(*rows)
    column.drop_front(2)
    assert column.rows == 4
    window = column.window(np.array([3, 4, 5, 6]), slice(0, 4))
    assert window.times.tolist() == [4, 6]
    np.testing.assert_array_equal(window.cumulative(np.arange(2)), np.stack([row(b1=4), row(b1=6)]))


def test_dropping_every_row_then_appending_again():
    column = column_of(row(b1=1), row(b1=2))
    column.drop_front(2)
    assert column.rows == 0
    column.append_cumulative(row(b1=5))
    np.testing.assert_array_equal(column.cumulative_at(np.array([0])), [row(b1=5)])
    column.append_cumulative(row(b1=6))
    window = column.window(np.array([1, 2]), slice(0, 2))
    np.testing.assert_array_equal(window.increase(np.array([0]), np.array([1])), [row(b1=1)])


def test_dropping_more_rows_than_exist_drops_them_all():
    column = column_of(row(b1=1), row(b1=2))
    column.drop_front(10)
    assert column.rows == 0
    assert column.entries == 0


def test_memory_stays_bounded_across_many_append_and_evict_cycles():
    """A sliding window of 50 rows, 3 changing buckets per row and a producer restart every 97 rows: the arrays settle
    at a fixed capacity, and every kept row still reads back exactly."""
    column = HistogramColumn(BUCKETS)
    cumulative = np.zeros(BUCKETS)
    kept: deque[np.ndarray] = deque(maxlen=50)
    rng = np.random.default_rng(7)

    def cycle(i: int) -> None:
        if i % 97 == 96:
            cumulative[:] = 0  # restart
        cumulative[rng.choice(BUCKETS, 3, replace=False)] += 1
        column.append_cumulative(cumulative.copy())
        kept.append(cumulative.copy())
        if column.rows > 50:
            column.drop_front(1)

    for i in range(300):
        cycle(i)
    settled = capacities(column)
    for i in range(300, 2300):
        cycle(i)
    assert capacities(column) == settled
    assert column.rows == 50
    assert max(settled) <= 4 * 50 * BUCKETS
    np.testing.assert_array_equal(column.cumulative_at(np.arange(50)), np.stack(kept))
