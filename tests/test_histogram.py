"""The Rezolus H2 histogram layout and the percentile rule (recording-format.md §2.3–§2.5).

Expected bounds come from the format document's tables, or from a small reference built straight from the layout's
definition ("values below 2^(g+1) each get their own bucket; above that every power of two is cut into 2^g buckets
of equal width"), never from the closed-form formula the code uses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rezgen.store.histogram import Layout, LayoutError, quantile_rows, quantiles


def reference_buckets(g: int, m: int) -> list[tuple[int, int]]:
    """Inclusive (low, high) of every bucket, enumerated from the definition, as exact Python ints."""
    buckets = [(v, v) for v in range(2 ** (g + 1))]
    for k in range(g + 1, m):
        width = 2**k // 2**g
        for j in range(2**g):
            low = 2**k + j * width
            buckets.append((low, low + width - 1))
    return buckets


# The worked example of §2.4: g = 2, m = 5 has 16 buckets.
G2M5_TABLE = [(v, v) for v in range(8)] + [(8, 9), (10, 11), (12, 13), (14, 15), (16, 19), (20, 23), (24, 27),
                                           (28, 31)]

# The tiny percentile example of §2.5 (g = 2, m = 5): T = 10 observations.
TINY_DELTA = {3: 1, 8: 2, 12: 5, 13: 1, 15: 1}


def dense(counts: dict[int, int], buckets: int = 16) -> np.ndarray:
    out = np.zeros(buckets)
    for index, count in counts.items():
        out[index] = count
    return out


# --- Layout: bucket counts --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("g", "m", "buckets"), [
    (3, 64, 496),  # Rezolus default
    (7, 64, 7424),
    (2, 5, 16),  # the worked example
    # Seen in recordings (§2.3):
    (7, 8, 256), (7, 15, 1152), (7, 31, 3200), (7, 37, 3968), (7, 38, 4096), (7, 43, 4736), (7, 44, 4864),
])
def test_bucket_count_matches_the_format_document(g, m, buckets):
    assert Layout(g, m).buckets == buckets


@pytest.mark.parametrize(("g", "m"), [(0, 1), (0, 5), (1, 4), (2, 5), (3, 12), (4, 9)])
def test_bucket_count_matches_the_definition(g, m):
    assert Layout(g, m).buckets == len(reference_buckets(g, m))


@pytest.mark.parametrize(("g", "m"), [(3, 3), (5, 4), (-1, 5), (3, 65)])
def test_invalid_parameters_are_rejected(g, m):
    with pytest.raises(LayoutError):
        Layout(g, m)


def test_layout_error_is_a_value_error():
    with pytest.raises(ValueError):
        Layout(8, 8)


# --- Layout: bucket bounds --------------------------------------------------------------------------------------------

def test_worked_example_g2_m5_bounds():
    layout = Layout(2, 5)
    assert list(zip(layout.lows.tolist(), layout.highs.tolist())) == [(float(lo), float(hi)) for lo, hi in G2M5_TABLE]


def test_worked_example_bucket_13_is_20_to_23():
    layout = Layout(2, 5)
    assert (layout.lows[13], layout.highs[13]) == (20, 23)


@pytest.mark.parametrize(("g", "m"), [(0, 6), (1, 7), (2, 5), (3, 14), (4, 20)])
def test_bounds_match_the_definition(g, m):
    layout = Layout(g, m)
    reference = reference_buckets(g, m)
    assert layout.lows.tolist() == [float(lo) for lo, _ in reference]
    assert layout.highs.tolist() == [float(hi) for _, hi in reference]


def test_buckets_tile_the_value_range_without_gaps():
    layout = Layout(3, 20)
    assert layout.lows[0] == 0
    assert np.all(layout.lows[1:] == layout.highs[:-1] + 1)
    assert layout.highs[-1] == 2**20 - 1


@pytest.mark.parametrize(("index", "low", "high"), [
    (15, 15, 15),  # last exact bucket
    (16, 16, 17),
    (24, 32, 35),
    (32, 64, 71),
    (48, 256, 287),
])
def test_rezolus_default_layout_spot_bounds(index, low, high):
    layout = Layout(3, 64)
    assert (layout.lows[index], layout.highs[index]) == (low, high)


def test_top_bucket_of_a_64_bit_layout_reaches_u64_max():
    layout = Layout(3, 64)
    assert layout.lows[495] == float(17293822569102704640)
    assert layout.highs[495] == float(2**64 - 1)


def test_top_bucket_ends_at_2_to_the_m_minus_1():
    assert Layout(2, 5).highs[-1] == 31
    assert Layout(7, 38).highs[-1] == 2**38 - 1


def test_midpoints_are_the_centre_of_each_inclusive_bucket():
    layout = Layout(2, 5)
    assert layout.midpoints[3] == 3
    assert layout.midpoints[8] == 8.5  # [8, 9]
    assert layout.midpoints[12] == 17.5  # [16, 19]
    assert layout.midpoints[15] == 29.5  # [28, 31]


# --- Layout.index_of --------------------------------------------------------------------------------------------------

def test_index_of_worked_example_value_22_is_bucket_13():
    assert Layout(2, 5).index_of(22) == 13


def test_index_of_every_value_of_the_worked_example():
    layout = Layout(2, 5)
    for index, (low, high) in enumerate(G2M5_TABLE):
        for value in range(low, high + 1):
            assert layout.index_of(value) == index, value


@pytest.mark.parametrize(("g", "m"), [(3, 64), (7, 64), (0, 10), (1, 9)])
def test_index_of_inverts_the_bounds(g, m):
    """Both inclusive edges of every bucket map back to that bucket (exact ints: float edges round above 2^53)."""
    layout = Layout(g, m)
    for index, (low, high) in enumerate(reference_buckets(g, m)):
        assert layout.index_of(low) == index
        assert layout.index_of(high) == index


def test_index_of_rezolus_default_examples():
    layout = Layout(3, 64)
    assert layout.index_of(0) == 0
    assert layout.index_of(15) == 15
    assert layout.index_of(17) == 16
    assert layout.index_of(2559) == 73  # §2.6: bucket 73 = [2304, 2559]
    assert layout.index_of(2304) == 73
    assert layout.index_of(65535) == 111  # §2.6: bucket 111 = [61440, 65535]
    assert layout.index_of(2**64 - 1) == 495


# --- quantile_rows: the percentile rule -------------------------------------------------------------------------------

HIGHS = Layout(2, 5).highs


def test_tiny_example_p50_is_19():
    """rank = ceil(0.5 * 10) = 5; running sums 1, 3, 8 → bucket 12 = [16, 19] → 19."""
    assert quantile_rows(dense(TINY_DELTA), 0.5, HIGHS).tolist() == [19.0]


def test_tiny_example_p99_is_31():
    """rank = ceil(0.99 * 10) = 10 → the last observation, bucket 15 = [28, 31] → 31."""
    assert quantile_rows(dense(TINY_DELTA), 0.99, HIGHS).tolist() == [31.0]


@pytest.mark.parametrize(("q", "expected"), [
    (0.0, 3.0),  # rank max(1, 0) = 1 → bucket 3
    (0.1, 3.0),  # rank 1
    (0.2, 9.0),  # rank 2 → bucket 8 = [8, 9]
    (0.25, 9.0),  # rank ceil(2.5) = 3 → running sum 3 reached at bucket 8
    (0.35, 19.0),  # rank 4 → bucket 12
    (0.8, 19.0),  # rank 8 → running sum 8 reached at bucket 12
    (0.85, 23.0),  # rank 9 → bucket 13 = [20, 23]
    (1.0, 31.0),  # rank 10
])
def test_rank_is_max_1_ceil_q_times_count(q, expected):
    assert quantile_rows(dense(TINY_DELTA), q, HIGHS).tolist() == [expected]


def test_rows_are_independent():
    rows = np.stack([dense(TINY_DELTA), dense({0: 4}), dense({5: 1, 14: 1})])
    # Row 3: rank ceil(0.5 * 2) = 1 → bucket 5.
    assert quantile_rows(rows, 0.5, HIGHS).tolist() == [19.0, 0.0, 5.0]


def test_empty_rows_have_no_quantile():
    rows = np.stack([dense({}), dense(TINY_DELTA), dense({})])
    result = quantile_rows(rows, 0.5, HIGHS)
    assert math.isnan(result[0]) and math.isnan(result[2])
    assert result[1] == 19.0


def test_all_rows_empty():
    assert np.isnan(quantile_rows(np.zeros((3, 16)), 0.5, HIGHS)).all()


def test_q_below_zero_is_minus_infinity_like_prometheus():
    rows = np.stack([dense(TINY_DELTA), dense({})])
    result = quantile_rows(rows, -0.5, HIGHS)
    assert result[0] == -math.inf
    assert math.isnan(result[1])


def test_q_above_one_is_plus_infinity_like_prometheus():
    rows = np.stack([dense(TINY_DELTA), dense({})])
    result = quantile_rows(rows, 1.5, HIGHS)
    assert result[0] == math.inf
    assert math.isnan(result[1])


def test_q_nan_is_nan():
    assert np.isnan(quantile_rows(dense(TINY_DELTA), math.nan, HIGHS)).all()


def test_fractional_counts_with_at_least_one_observation():
    """Counts may be fractional (averaged rows): T = 6, p50 → rank 3 → running sums 1.5, 6 → bucket 9 = [10, 11]."""
    assert quantile_rows(dense({2: 1.5, 9: 4.5}), 0.5, HIGHS).tolist() == [11.0]


@pytest.mark.parametrize(("q", "expected"), [(0.0, 2.0), (0.5, 2.0), (0.6, 11.0), (1.0, 11.0)])
def test_scaling_a_row_does_not_move_its_quantile(q, expected):
    """rate() divides bucket counts by the window: the distribution, hence every quantile, is unchanged.

    Integer counts {2: 17, 9: 13} (T = 30): p50 → rank 15 → bucket 2 = [2, 2]; p60 → rank 18 → bucket 9 = [10, 11].
    The same observations as rates over a 10 s window ({2: 1.7, 9: 1.3}) must give the same answers, as must the
    rule applied as "first bucket whose running sum reaches q * T" (identical to the rank rule on integer counts).
    rezgen's ceil(q * 3) gives rank 2 for p50 (→ 11), and for rows with T < 1 no bucket ever reaches rank 1
    (→ the top bucket, 31, which holds no observation at all).
    """
    counts = dense({2: 17, 9: 13})
    assert quantile_rows(counts, q, HIGHS).tolist() == [expected]  # the rule on raw counts
    assert quantile_rows(counts / 10, q, HIGHS).tolist() == [expected]
    assert quantile_rows(counts / 100, q, HIGHS).tolist() == [expected]


def test_one_dimensional_input_is_one_row():
    assert quantile_rows(dense({7: 3}), 0.5, HIGHS).shape == (1,)


def rank_rule(counts: list[int], q: float, highs: list[float]) -> float:
    """The Rezolus rule walked by hand: the upper edge of the bucket holding rank max(1, ceil(q * count))."""
    rank = max(1, math.ceil(q * sum(counts)))
    running = 0
    for count, high in zip(counts, highs):
        running += count
        if running >= rank:
            return high
    raise AssertionError("no bucket holds the rank")


@pytest.mark.parametrize("used_buckets", [40, 1000])
def test_quantiles_over_only_the_used_buckets_follow_the_rank_rule(used_buckets):
    """Percentile plots pass only the buckets that hold a count (with their edges) and several q at once."""
    layout = Layout(7, 64)
    rng = np.random.default_rng(used_buckets)
    used = np.sort(rng.choice(layout.buckets, size=used_buckets, replace=False))
    counts = rng.integers(0, 4, size=(60, used_buckets)) * (rng.random((60, used_buckets)) < 0.2)
    counts[:5] = 0  # steps without observations
    qs = np.array([0.5, 0.9, 0.99, 0.999, 0.9999])
    highs = layout.highs[used]
    for rates in (counts.astype(float), counts / 0.999):  # counts, and the same as rates over a window
        got = quantiles(rates, qs, highs)
        assert got.shape == (len(qs), 60)
        for row in range(60):
            for i, q in enumerate(qs):
                if counts[row].sum() == 0:
                    assert math.isnan(got[i, row])
                else:
                    assert got[i, row] == rank_rule(counts[row].tolist(), q, highs.tolist())



@pytest.mark.parametrize("used_buckets", [3, 40, 1000])
def test_many_quantiles_at_once_follow_the_rank_rule_as_one_at_a_time(used_buckets):
    """A spectrum asks for 100 quantiles at once (searched per row); each equals the same quantile asked alone
    (scanned per quantile), and the rank rule."""
    layout = Layout(7, 64)
    rng = np.random.default_rng(used_buckets)
    used = np.sort(rng.choice(layout.buckets, size=used_buckets, replace=False))
    counts = rng.integers(0, 4, size=(50, used_buckets)) * (rng.random((50, used_buckets)) < 0.3)
    counts[:4] = 0
    counts[4, 1:] = 0  # only the first bucket holds a count
    highs = layout.highs[used]
    qs = np.concatenate([[0.0, 1.0, float("nan"), -0.5, 1.5], np.arange(1, 101) / 100, 0.99 + np.arange(1, 101) / 1e4])
    for rates in (counts.astype(float), counts / 0.999, counts * 0.1):
        many = quantiles(rates, qs, highs)
        alone = np.stack([quantiles(rates, np.array([q]), highs)[0] for q in qs])
        assert np.array_equal(many, alone, equal_nan=True)
        for row in range(5, 50):
            for i in (6, 55, 104, 203):  # p2, p51, p100, p99.99
                if counts[row].sum():
                    assert many[i, row] == rank_rule(counts[row].tolist(), qs[i], highs.tolist())
