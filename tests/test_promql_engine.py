"""PromQL over tiny hand-made stores: every value below is worked out by hand from Prometheus 3's rules.

Conventions: times are seconds; `at(store, expr, t)` runs an instant query and returns {series: value} (or a float for
a scalar); `over(store, expr, start, end, step)` runs a range query and returns {series: {t: value}}. A series is
written `name{a="1"}`, or `{a="1"}` once an operation has dropped the metric name.

The rules the expectations follow:
- windows are left-open: a range selector at t covers (t - range, t], an instant selector the newest sample in
  (t - 5m, t];
- rate/increase/delta extrapolate like Prometheus's extrapolatedRate: with s = sampled interval (first to last sample),
  a = s / (n - 1), a gap to a window edge is extrapolated in full when shorter than 1.1 a, else by a / 2; for
  counters the start gap is then capped at the time the counter would reach zero, s * first / increase; a drop is a
  counter reset, compensated by adding the value before it;
- Rezolus histograms behave as native histograms, and histogram_quantile reports the upper edge of the bucket holding
  rank max(1, ceil(q * count)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from storebuilder import build_store, hist, ns

from rezgen.promql import engine
from rezgen.promql.engine import instant_query, range_query
from rezgen.promql.values import PromQLError

# --- helpers ----------------------------------------------------------------------------------------------------------


def key(labels) -> str:
    pairs = dict(labels)
    name = pairs.pop("__name__", "")
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(pairs.items())) + "}"


def seconds(t_ns: int) -> float | int:
    t = t_ns / 1e9
    return int(t) if t == int(t) else t


def at(store, expr: str, t: float):
    result = instant_query(store, expr, ns(t))
    if result.kind == "scalar":
        return float(result.series[0].values[0])
    assert result.kind == "vector", result.kind
    out = {key(s.labels): float(s.values[0]) for s in result.series}
    assert len(out) == len(result.series), "duplicate label sets in a result"
    return out


def over(store, expr: str, start: float, end: float, step: float) -> dict[str, dict[float, float]]:
    result = range_query(store, expr, ns(start), ns(end), ns(step))
    assert result.kind == "matrix"
    out = {key(s.labels): {seconds(int(t)): float(v) for t, v in zip(s.times, s.values)} for s in result.series}
    assert len(out) == len(result.series), "duplicate label sets in a result"
    return out


def approx(expected):
    return pytest.approx(expected, rel=1e-12, abs=1e-12)


# --- data -------------------------------------------------------------------------------------------------------------

# A gauge sampled every second, t = 0..10.
G_VALUES = [5, 3, 8, 1, 9, 2, 7, 4, 6, 0, 10]

STORE = build_store({
    # Selectors.
    'x{a="1"}': [(0, 1), (10, 2), (20, 3)],
    'x{a="2"}': [(0, 10)],
    'x{a="10"}': [(0, 100)],
    'holes': [(0, 1), (10, None), (20, 3)],
    # Range functions.
    'g': list(enumerate(G_VALUES)),
    # Counters: c = 10 t every second for t = 0..20.
    'c_total': [(t, 10 * t) for t in range(21)],
    # A counter that starts late, one that stops early, one that starts near zero.
    'late_total': [(7, 100), (8, 110), (9, 120), (10, 130)],
    'stop_total': [(0, 100), (1, 110), (2, 120), (3, 130)],
    'fresh_total': [(7, 2), (8, 12), (9, 22), (10, 32)],
    # A counter with a reset: 10, 20, then the producer restarts: 5, 15.
    'r_total': [(7, 10), (8, 20), (9, 5), (10, 15)],
    # A counter for subqueries: 1000 + 10 t every second for t = 0..120.
    's_total': [(t, 1000 + 10 * t) for t in range(121)],
    # Aggregations.
    'm{cpu="0",mode="user"}': [(0, 1)],
    'm{cpu="0",mode="sys"}': [(0, 2)],
    'm{cpu="1",mode="user"}': [(0, 3)],
    'm{cpu="1",mode="sys"}': [(0, 6)],
    'load{host="a"}': [(0, 1), (10, 5), (20, 3)],
    'load{host="b"}': [(0, 2), (10, 4), (20, 6)],
    'load{host="c"}': [(0, 3), (10, 1), (20, 2)],
    'part{i="1"}': [(0, 1)],
    'part{i="2"}': [(400, 2)],
    'classic{i="1"}': [(0, 2)], 'classic{i="2"}': [(0, 4)], 'classic{i="3"}': [(0, 4)], 'classic{i="4"}': [(0, 4)],
    'classic{i="5"}': [(0, 5)], 'classic{i="6"}': [(0, 5)], 'classic{i="7"}': [(0, 7)], 'classic{i="8"}': [(0, 9)],
    # Binary operators.
    'a{k="1"}': [(0, 10)],
    'a{k="2"}': [(0, 20)],
    'b{k="1"}': [(0, 2)],
    'b{k="3"}': [(0, 5)],
    'n': [(0, -3)],
    'req{job="api",code="200"}': [(0, 10)],
    'req{job="api",code="500"}': [(0, 2)],
    'req2{job="api",code="200"}': [(0, 7)],
    'limit{job="api",zone="eu"}': [(0, 100)],
    'limit{job="web",zone="us"}': [(0, 50)],
    'dup{job="api",zone="eu"}': [(0, 1)],
    'dup{job="api",zone="us"}': [(0, 2)],
    'on_and_off': [(0, 1), (400, 1)],
})

# Histograms, g = 2, m = 5 (16 buckets: 0..7 exact, 8 = [8, 9], 9 = [10, 11], 10 = [12, 13], 11 = [14, 15],
# 12 = [16, 19], 13 = [20, 23], 14 = [24, 27], 15 = [28, 31]). Cumulative counts every second; the deltas:
#   read:  t0 → t1: the tiny example of recording-format.md §2.5, {3: 1, 8: 2, 12: 5, 13: 1, 15: 1} (10 observations);
#          t1 → t2: {8: 4}; t2 → t3: nothing.
#   write: t0 → t1: {4: 4}; t1 → t2: {4: 1}; t2 → t3: {4: 1}.
# rate(h[2s]) at t ∈ {1, 2, 3} sees exactly the samples t-1 and t: sampled interval 1 s, the gap to the window start
# (1 s) is below 1.1 s so it is extrapolated in full, the gap to the end is 0: increase = 2 × delta, rate = delta.
HIST = build_store({'marker': [(0, 0)]}, histograms={
    'h{op="read"}': hist(2, 5, [
        (0, {3: 10, 8: 10, 12: 10}),
        (1, {3: 11, 8: 12, 12: 15, 13: 1, 15: 1}),
        (2, {3: 11, 8: 16, 12: 15, 13: 1, 15: 1}),
        (3, {3: 11, 8: 16, 12: 15, 13: 1, 15: 1}),
    ]),
    'h{op="write"}': hist(2, 5, [(0, {0: 20}), (1, {0: 20, 4: 4}), (2, {0: 20, 4: 5}), (3, {0: 20, 4: 6})]),
    # A producer restart between t1 and t2: bucket 3 goes 12 → 1.
    'hr': hist(2, 5, [(0, {3: 10}), (1, {3: 12}), (2, {3: 1, 8: 1}), (3, {3: 2, 8: 1})]),
    # Same grouping power, different max value power: g = 2, m = 6 adds 16 = [32, 39], 17 = [40, 47],
    # 18 = [48, 55], 19 = [56, 63].
    'hm{m="5"}': hist(2, 5, [(0, {1: 10}), (1, {1: 13})]),
    'hm{m="6"}': hist(2, 6, [(0, {19: 10}), (1, {17: 1, 19: 11})]),
    'hg{g="2"}': hist(2, 5, [(0, {1: 10}), (1, {1: 13})]),
    # No sample at t = 1 (the table has a row there: other series have one).
    'hgap': hist(2, 5, [(0, {1: 1}), (2, {1: 5})]),
    'hg{g="3"}': hist(3, 5, [(0, {1: 10}), (1, {1: 13})]),
})

READ_DELTA_SUM = 1 * 3 + 2 * 8.5 + 5 * 17.5 + 1 * 21.5 + 1 * 29.5  # bucket midpoints: 158.5


# --- instant selectors ------------------------------------------------------------------------------------------------

def test_instant_selector_takes_the_newest_sample_at_or_before_t():
    assert at(STORE, 'x{a="1"}', 15) == {'x{a="1"}': 2}
    assert at(STORE, 'x{a="1"}', 20) == {'x{a="1"}': 3}  # a sample exactly at t counts


def test_instant_selector_looks_back_five_minutes_left_open():
    assert at(STORE, 'x{a="1"}', 319) == {'x{a="1"}': 3}
    assert at(STORE, 'x{a="1"}', 320) == {}  # the sample at 20 = t - 5m is outside (t - 5m, t]


def test_nothing_before_the_first_sample():
    assert at(STORE, 'late_total', 6.5) == {}


def test_an_absent_row_falls_back_to_the_previous_sample():
    assert at(STORE, 'holes', 10) == {'holes{}': 1}
    assert at(STORE, 'holes', 20) == {'holes{}': 3}


@pytest.mark.parametrize(("expr", "expected"), [
    ('x{a="1"}', {'x{a="1"}'}),
    ('x{a=~"1"}', {'x{a="1"}'}),  # regexes are anchored
    ('x{a=~"1.*"}', {'x{a="1"}', 'x{a="10"}'}),
    ('x{a!="1"}', {'x{a="2"}', 'x{a="10"}'}),
    ('x{a!~"1.*"}', {'x{a="2"}'}),
    ('x', {'x{a="1"}', 'x{a="2"}', 'x{a="10"}'}),
    ('{__name__="x",a="2"}', {'x{a="2"}'}),
    ('{__name__=~"x|b",a=~"1|3"}', {'x{a="1"}'}),
    ('x{b=""}', {'x{a="1"}', 'x{a="2"}', 'x{a="10"}'}),  # a missing label equals ""
    ('x{a=""}', set()),
    ('nope', set()),
])
def test_label_matchers(expr, expected):
    assert set(at(STORE, expr, 5)) == expected


def test_range_query_steps_at_start_plus_k_step():
    assert over(STORE, 'c_total', 1, 4, 1.5) == {'c_total{}': {1: 10, 2.5: 20, 4: 40}}


def test_range_query_series_that_start_late_and_stop_early():
    """part{i="1"} has one sample at 0 (visible until 300 exclusive), part{i="2"} one at 400."""
    assert over(STORE, 'part', 0, 800, 100) == {
        'part{i="1"}': {0: 1, 100: 1, 200: 1},
        'part{i="2"}': {400: 2, 500: 2, 600: 2},
    }


# --- range selectors and *_over_time ----------------------------------------------------------------------------------

# g[4s] at t = 10 covers (6, 10]: the samples at 7, 8, 9, 10 = 4, 6, 0, 10 (the one at exactly 6 is excluded).
@pytest.mark.parametrize(("expr", "expected"), [
    ('count_over_time(g[4s])', 4),
    ('sum_over_time(g[4s])', 20),
    ('avg_over_time(g[4s])', 5),
    ('min_over_time(g[4s])', 0),
    ('max_over_time(g[4s])', 10),
    ('present_over_time(g[4s])', 1),
    ('stdvar_over_time(g[4s])', 13),  # deviations from 5: -1, 1, -5, 5 → (1 + 1 + 25 + 25) / 4
    ('stddev_over_time(g[4s])', math.sqrt(13)),
    ('quantile_over_time(0.5, g[4s])', 5),  # sorted 0 4 6 10: rank 1.5 → 4 + 0.5 × 2
    ('quantile_over_time(0.25, g[4s])', 3),  # rank 0.75 → 0 + 0.75 × 4
    ('quantile_over_time(1, g[4s])', 10),
    ('quantile_over_time(2, g[4s])', math.inf),
    ('quantile_over_time(-1, g[4s])', -math.inf),
    ('changes(g[4s])', 3),  # 4→6, 6→0, 0→10
    ('resets(g[4s])', 1),  # 6→0
    ('count_over_time(g[4500ms])', 5),  # (5.5, 10]
])
def test_over_time_functions(expr, expected):
    assert at(STORE, expr, 10) == {'{}': approx(expected)}


def test_last_over_time_keeps_the_metric_name():
    assert at(STORE, 'last_over_time(g[4s])', 10) == {'g{}': 10}


def test_over_time_between_samples():
    assert at(STORE, 'sum_over_time(g[4s])', 9.5) == {'{}': 7 + 4 + 6 + 0}  # (5.5, 9.5]: t = 6..9


def test_a_sample_exactly_at_t_minus_range_is_excluded():
    assert at(STORE, 'count_over_time(c_total[3s])', 10) == {'{}': 3}  # 8, 9, 10 — not 7
    assert at(STORE, 'count_over_time(c_total[3001ms])', 10) == {'{}': 4}  # (6.999, 10] reaches the sample at 7
    assert at(STORE, 'increase(c_total[3s])', 10) == {'{}': approx(30)}  # 8..10: 20 × 3/2


def test_over_time_with_no_sample_in_the_window_is_absent():
    assert at(STORE, 'count_over_time(late_total[2s])', 6) == {}
    assert over(STORE, 'count_over_time(late_total[2s])', 6, 12, 1) == {
        '{}': {7: 1, 8: 2, 9: 2, 10: 2, 11: 1}}


def test_deriv_and_predict_linear():
    """c = 10 t: the least-squares slope is 10/s; predict_linear extrapolates from the value at t (100)."""
    assert at(STORE, 'deriv(c_total[5s])', 10) == {'{}': approx(10)}
    assert at(STORE, 'predict_linear(c_total[5s], 3)', 10) == {'{}': approx(130)}


def test_instant_query_of_a_range_selector_returns_the_raw_samples():
    result = instant_query(STORE, 'g[3s]', ns(10))
    assert result.kind == "matrix"
    (series,) = result.series
    assert key(series.labels) == 'g{}'
    assert [seconds(int(t)) for t in series.times] == [8, 9, 10]
    assert series.values.tolist() == [6, 0, 10]


# --- rate, increase, delta, irate, idelta -----------------------------------------------------------------------------

def test_rate_of_a_steady_counter():
    """c[4s] at 10: samples 7..10 (70..100), s = 3 s, start gap 1 s < 1.1 s → extrapolated: 30 × 4/3 = 40."""
    assert at(STORE, 'increase(c_total[4s])', 10) == {'{}': approx(40)}
    assert at(STORE, 'rate(c_total[4s])', 10) == {'{}': approx(10)}


def test_rate_between_samples():
    """(6.5, 10.5]: samples 7..10, gaps of 0.5 s at both ends are extrapolated: 30 × 4/3."""
    assert at(STORE, 'increase(c_total[4s])', 10.5) == {'{}': approx(40)}


def test_rate_needs_two_samples_in_the_window():
    assert at(STORE, 'rate(c_total[1s])', 10) == {}  # (9, 10] holds only the sample at 10
    assert at(STORE, 'rate(c_total[1500ms])', 10) == {'{}': approx(10)}  # 9 and 10: 10 × 1.5 / 1 / 1.5


def test_rate_of_a_series_that_starts_inside_the_window():
    """late[10s] at 10: samples 7..10 (100..130), s = 3 s; the start gap (7 s) is too long: extrapolate a/2 = 0.5 s.
    (Zero point: 3 × 100/30 = 10 s, no limit.) increase = 30 × 3.5/3 = 35."""
    assert at(STORE, 'increase(late_total[10s])', 10) == {'{}': approx(35)}
    assert at(STORE, 'rate(late_total[10s])', 10) == {'{}': approx(3.5)}


def test_rate_of_a_series_that_stops_inside_the_window():
    """stop[10s] at 10: (0, 10] holds 1, 2, 3 (110..130), s = 2 s; start gap 1 s in full, end gap 7 s → 0.5 s.
    increase = 20 × 3.5/2 = 35."""
    assert at(STORE, 'increase(stop_total[10s])', 10) == {'{}': approx(35)}


def test_increase_is_not_extrapolated_below_zero():
    """fresh[10s] at 10: samples 7..10 = 2, 12, 22, 32; start gap 7 s → a/2 = 0.5 s, but the counter would reach
    zero 3 × 2/30 = 0.2 s before the first sample: extrapolate only 0.2 s. increase = 30 × 3.2/3 = 32."""
    assert at(STORE, 'increase(fresh_total[10s])', 10) == {'{}': approx(32)}


def test_zero_point_does_not_undo_the_half_interval_rule():
    """Samples at 3..10 = 7, 17, ..., 77: increase 70 over s = 7 s (a = 1 s). At t = 10 with [10s] the start gap is
    3 s ≥ 1.1 s, so Prometheus 3 extrapolates a/2 = 0.5 s; the zero point (7 × 7/70 = 0.7 s) is further away, so it
    does not matter. increase = 70 × 7.5/7 = 75. rezgen first caps 3 s at 0.7 s, finds 0.7 < 1.1 and extrapolates
    0.7 s: 77."""
    store = build_store({'c_total': [(t, 7 + 10 * (t - 3)) for t in range(3, 11)]})
    assert at(store, 'increase(c_total[10s])', 10) == {'{}': approx(75)}


def test_counter_reset_is_compensated():
    """r[4s] at 10: 10, 20, 5, 15 → 15 - 10 + 20 (the value before the drop) = 25; zero point 3 × 10/25 = 1.2 s is
    beyond the 1 s start gap. increase = 25 × 4/3, rate = that / 4."""
    assert at(STORE, 'increase(r_total[4s])', 10) == {'{}': approx(100 / 3)}
    assert at(STORE, 'rate(r_total[4s])', 10) == {'{}': approx(25 / 3)}


def test_delta_does_not_treat_a_drop_as_a_reset():
    """g[4s] at 10: 4, 6, 0, 10 → 10 - 4 = 6, extrapolated × 4/3 (no zero-point cap for gauges)."""
    assert at(STORE, 'delta(g[4s])', 10) == {'{}': approx(8)}
    assert at(STORE, 'delta(late_total[10s])', 10) == {'{}': approx(35)}
    # fresh: increase() stops at the zero point (32, above); delta() extrapolates the full a/2: 30 × 3.5/3.
    assert at(STORE, 'delta(fresh_total[10s])', 10) == {'{}': approx(35)}


def test_irate_uses_the_last_two_samples():
    assert at(STORE, 'irate(c_total[5s])', 10) == {'{}': approx(10)}
    assert at(STORE, 'irate(r_total[4s])', 10) == {'{}': approx(10)}  # 5 → 15 in 1 s


def test_irate_across_a_reset_counts_from_zero():
    assert at(STORE, 'irate(r_total[4s])', 9) == {'{}': approx(5)}  # 20 → 5: a restart, 5 new in 1 s


def test_irate_needs_two_samples():
    assert at(STORE, 'irate(r_total[1s])', 10) == {}


def test_idelta():
    assert at(STORE, 'idelta(g[4s])', 10) == {'{}': 10}  # 0 → 10
    assert at(STORE, 'idelta(g[4s])', 9) == {'{}': -6}  # 6 → 0


def test_rate_over_a_range_query_is_absent_where_the_window_has_fewer_than_two_samples():
    """late[2s]: at 8, 9, 10 the window holds two samples 1 s apart (start gap 1 s extrapolated: rate = 10/s)."""
    assert over(STORE, 'rate(late_total[2s])', 6, 12, 1) == {'{}': approx({8: 10, 9: 10, 10: 10})}


def test_rate_drops_the_metric_name():
    assert list(at(STORE, 'rate(c_total[4s])', 10)) == ['{}']


# --- aggregations -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "expected"), [
    ('sum(m)', {'{}': 12}),
    ('sum by (cpu) (m)', {'{cpu="0"}': 3, '{cpu="1"}': 9}),
    ('sum without (mode) (m)', {'{cpu="0"}': 3, '{cpu="1"}': 9}),
    ('avg by (mode) (m)', {'{mode="user"}': 2, '{mode="sys"}': 4}),
    ('min(m)', {'{}': 1}),
    ('max by (cpu) (m)', {'{cpu="0"}': 2, '{cpu="1"}': 6}),
    ('count(m)', {'{}': 4}),
    ('group by (cpu) (m)', {'{cpu="0"}': 1, '{cpu="1"}': 1}),
    ('stdvar(m)', {'{}': 3.5}),  # mean 3: (4 + 1 + 0 + 9) / 4
    ('stddev(m)', {'{}': math.sqrt(3.5)}),
    ('quantile(0.5, m)', {'{}': 2.5}),  # 1 2 3 6: rank 1.5
    ('quantile by (cpu) (0.5, m)', {'{cpu="0"}': 1.5, '{cpu="1"}': 4.5}),
    ('stddev(classic)', {'{}': 2}),  # 2 4 4 4 5 5 7 9
    ('stdvar(classic)', {'{}': 4}),
    ('count_values("v", classic)', {'{v="2"}': 1, '{v="4"}': 3, '{v="5"}': 2, '{v="7"}': 1, '{v="9"}': 1}),
    ('sum by (nope) (m)', {'{}': 12}),
])
def test_aggregations(expr, expected):
    assert at(STORE, expr, 0) == approx(expected)


def test_sum_without_keeps_other_labels_and_drops_the_name():
    assert at(STORE, 'sum without (cpu) (m)', 0) == {'{mode="sys"}': 8, '{mode="user"}': 4}


def test_aggregation_counts_only_series_present_at_each_step():
    assert over(STORE, 'sum(part)', 0, 800, 200) == {'{}': {0: 1, 200: 1, 400: 2, 600: 2}}
    assert over(STORE, 'count(part)', 0, 800, 200) == {'{}': {0: 1, 200: 1, 400: 1, 600: 1}}


def test_topk_picks_per_step():
    """load: a = 1, 5, 3; b = 2, 4, 6; c = 3, 1, 2 at 0, 10, 20."""
    assert over(STORE, 'topk(1, load)', 0, 20, 10) == {
        'load{host="c"}': {0: 3}, 'load{host="a"}': {10: 5}, 'load{host="b"}': {20: 6}}
    assert over(STORE, 'bottomk(1, load)', 0, 20, 10) == {
        'load{host="a"}': {0: 1}, 'load{host="c"}': {10: 1, 20: 2}}


def test_topk_with_k_larger_than_one():
    assert at(STORE, 'topk(2, load)', 10) == {'load{host="a"}': 5, 'load{host="b"}': 4}
    assert at(STORE, 'topk(5, load)', 10) == {'load{host="a"}': 5, 'load{host="b"}': 4, 'load{host="c"}': 1}
    assert at(STORE, 'topk(0, load)', 10) == {}


def test_topk_by_group():
    assert at(STORE, 'topk by (cpu) (1, m)', 0) == {'m{cpu="0",mode="sys"}': 2, 'm{cpu="1",mode="sys"}': 6}


# --- binary operators: scalars ----------------------------------------------------------------------------------------

def test_scalar_arithmetic():
    assert at(STORE, '2 * 3 + 1', 0) == 7
    assert at(STORE, '2 ^ 10', 0) == 1024
    assert at(STORE, '7 % 3', 0) == 1
    assert at(STORE, '1 / 0', 0) == math.inf
    assert instant_query(STORE, '1 + 1', ns(0)).kind == "scalar"


def test_vector_scalar_arithmetic_drops_the_name():
    assert at(STORE, 'a * 2', 0) == {'{k="1"}': 20, '{k="2"}': 40}
    assert at(STORE, '100 - a', 0) == {'{k="1"}': 90, '{k="2"}': 80}
    assert at(STORE, '-a', 0) == {'{k="1"}': -10, '{k="2"}': -20}


def test_comparison_filters_and_keeps_the_name():
    assert at(STORE, 'a > 15', 0) == {'a{k="2"}': 20}
    assert at(STORE, 'a == 10', 0) == {'a{k="1"}': 10}


def test_comparison_with_the_scalar_on_the_left_keeps_the_vector_value():
    assert at(STORE, '15 < a', 0) == {'a{k="2"}': 20}


def test_bool_comparison_yields_0_or_1_and_drops_the_name():
    assert at(STORE, 'a > bool 15', 0) == {'{k="1"}': 0, '{k="2"}': 1}
    assert at(STORE, '1 < bool 2', 0) == 1
    assert at(STORE, '2 < bool 1', 0) == 0


def test_scalar_comparison_without_bool_is_an_error():
    with pytest.raises(PromQLError):
        at(STORE, '1 < 2', 0)


# --- binary operators: vector matching --------------------------------------------------------------------------------

def test_vector_arithmetic_only_where_both_sides_are_present():
    # One-to-one matching on() keeps only the (no) matching labels.
    assert over(STORE, 'part{i="1"} + on() vector(1)', 0, 400, 100) == {'{}': {0: 2, 100: 2, 200: 2}}
    assert over(STORE, 'part * 10', 0, 800, 200) == {'{i="1"}': {0: 10, 200: 10}, '{i="2"}': {400: 20, 600: 20}}


def test_one_to_one_matching_on_all_labels_but_the_name():
    assert at(STORE, 'a / b', 0) == {'{k="1"}': 5}  # k="2" and k="3" have no partner


def test_one_to_one_comparison_keeps_the_left_name_and_value():
    assert at(STORE, 'a > b', 0) == {'a{k="1"}': 10}
    assert at(STORE, 'a > bool b', 0) == {'{k="1"}': 1}


def test_on_restricts_matching_and_result_labels():
    assert at(STORE, 'req{code="200"} + on(job) limit', 0) == {'{job="api"}': 110}


def test_ignoring():
    assert at(STORE, 'req{code="200"} + ignoring(code, zone) limit', 0) == {'{job="api"}': 110}


def test_group_left_keeps_the_many_side_labels():
    assert at(STORE, 'req / on(job) group_left limit', 0) == approx({
        '{code="200",job="api"}': 0.1, '{code="500",job="api"}': 0.02})


def test_group_left_copies_labels_from_the_one_side():
    assert at(STORE, 'req * on(job) group_left(zone) limit', 0) == {
        '{code="200",job="api",zone="eu"}': 1000, '{code="500",job="api",zone="eu"}': 200}


def test_group_right():
    assert at(STORE, 'limit / on(job) group_right req', 0) == {
        '{code="200",job="api"}': 10, '{code="500",job="api"}': 50}


def test_on_nothing_broadcasts_a_single_series():
    assert at(STORE, 'sum(a) / on() group_left sum(b)', 0) == approx({'{}': 30 / 7})
    assert at(STORE, 'sum by (cpu) (m) / on() group_left sum(m)', 0) == {'{cpu="0"}': 0.25, '{cpu="1"}': 0.75}


def test_duplicate_series_on_the_one_side_is_an_error():
    with pytest.raises(PromQLError, match="duplicate series"):
        at(STORE, 'req * on(job) group_left dup', 0)
    with pytest.raises(PromQLError, match="duplicate series"):
        at(STORE, 'req{code="200"} + on(job) dup', 0)


def test_many_to_one_without_group_left_is_an_error():
    with pytest.raises(PromQLError, match="multiple matches"):
        at(STORE, 'req + on(job) limit', 0)


def test_group_left_results_must_be_unique():
    """req and req2 differ only in their names, which arithmetic drops: both give {code="200",job="api"}."""
    with pytest.raises(PromQLError, match="multiple matches"):
        at(STORE, '{__name__=~"req|req2",code="200"} * on(job) group_left limit', 0)


def test_filtering_comparison_with_two_left_series_for_one_match_is_an_error():
    """req (10) and req2 (7) both exceed the right side's 5 and share the matching signature {code="200",job="api"}.
    Prometheus (VectorBinop) checks one-to-one uniqueness on that signature for every kept sample → "multiple matches
    for labels: many-to-one matching must be explicit (group_left/group_right)" (promtool agrees). rezgen returns
    both series."""
    with pytest.raises(PromQLError, match="multiple matches"):
        at(STORE, '{__name__=~"req|req2",code="200"} > (req{code="200"} - 5)', 0)


def test_series_of_the_one_side_may_take_turns():
    """part{i="1"} (visible 0..299) and part{i="2"} (400..699) share the signature of on(), but never at the same
    step: matching is decided step by step, so there is no duplicate."""
    assert over(STORE, 'on_and_off + on() group_left part', 0, 600, 200) == {'{}': {0: 2, 200: 2, 400: 3, 600: 3}}


# --- set operators ----------------------------------------------------------------------------------------------------

def test_and_or_unless():
    assert at(STORE, 'a and b', 0) == {'a{k="1"}': 10}
    assert at(STORE, 'a or b', 0) == {'a{k="1"}': 10, 'a{k="2"}': 20, 'b{k="3"}': 5}
    assert at(STORE, 'a unless b', 0) == {'a{k="2"}': 20}


def test_set_operators_with_on():
    assert at(STORE, 'a and on() b', 0) == {'a{k="1"}': 10, 'a{k="2"}': 20}
    assert at(STORE, 'a unless on() b', 0) == {}
    assert at(STORE, 'a or on() b', 0) == {'a{k="1"}': 10, 'a{k="2"}': 20}


def test_set_operators_per_step():
    """part{i="1"} lives at 0..200, part{i="2"} at 400..600."""
    assert over(STORE, 'part{i="2"} or on() part{i="1"}', 0, 600, 200) == {
        'part{i="1"}': {0: 1, 200: 1}, 'part{i="2"}': {400: 2, 600: 2}}
    assert over(STORE, 'on_and_off unless on() part{i="1"}', 0, 600, 200) == {'on_and_off{}': {400: 1, 600: 1}}


# --- functions --------------------------------------------------------------------------------------------------------

def test_label_replace_with_capture_groups():
    assert at(STORE, 'label_replace(a, "kk", "x-$1", "k", "(.*)")', 0) == {
        'a{k="1",kk="x-1"}': 10, 'a{k="2",kk="x-2"}': 20}
    assert at(STORE, 'label_replace(a, "kk", "${1}y", "k", "(.*)")', 0) == {
        'a{k="1",kk="1y"}': 10, 'a{k="2",kk="2y"}': 20}
    assert at(STORE, 'label_replace(req, "x", "$2/$1", "code", "(.)(.*)")', 0) == {
        'req{code="200",job="api",x="00/2"}': 10, 'req{code="500",job="api",x="00/5"}': 2}


def test_label_replace_without_a_match_leaves_the_series_alone():
    assert at(STORE, 'label_replace(a, "kk", "z", "k", "2")', 0) == {'a{k="1"}': 10, 'a{k="2",kk="z"}': 20}
    assert at(STORE, 'label_replace(a, "kk", "z", "nope", "x")', 0) == {'a{k="1"}': 10, 'a{k="2"}': 20}


def test_label_replace_to_an_empty_value_removes_the_label():
    assert at(STORE, 'label_replace(a, "k", "", "k", "1")', 0) == {'a{}': 10, 'a{k="2"}': 20}


def test_label_replace_errors():
    with pytest.raises(PromQLError):
        at(STORE, 'label_replace(a, "kk", "$1", "k", "(")', 0)
    with pytest.raises(PromQLError):
        at(STORE, 'label_replace(a, "not-a-label", "$1", "k", "(.*)")', 0)


@pytest.mark.parametrize(("replacement", "regex"), [
    ("$1x", "(.*)"),  # Go reads the longest name: group "1x", which does not exist
    ("$1", "2"),  # group 1 does not exist
    ("$name", "(.*)"),  # no group called name
])
def test_label_replace_references_to_missing_groups_expand_to_nothing(replacement, regex):
    """Go's Expand substitutes "" for a group that does not exist, so kk ends up empty, i.e. not set (promtool:
    {__name__="a", k="1"} and {__name__="a", k="2"} unchanged)."""
    expr = f'label_replace(a, "kk", "{replacement}", "k", "{regex}")'
    assert at(STORE, expr, 0) == {'a{k="1"}': 10, 'a{k="2"}': 20}


@pytest.mark.parametrize("expr", [
    'rate({__name__=~"c_total|r_total"}[4s])',  # rate drops the names: two {} series
    'label_replace(a, "k", "", "k", ".*")',  # both become a{}
    'abs({__name__=~"a|b",k="1"})',
])
def test_a_function_result_with_duplicate_label_sets_is_an_error(expr):
    """Prometheus: "vector cannot contain metrics with the same labelset" (promtool agrees for all three)."""
    with pytest.raises(PromQLError):
        over(STORE, expr, 10, 10, 1)


def test_sort_desc_orders_an_instant_query_by_value():
    """Prometheus: sort/sort_desc order the result of an instant query (only range queries have a fixed order)."""
    result = instant_query(STORE, 'sort_desc(load)', ns(20))  # a = 3, b = 6, c = 2
    assert [key(s.labels) for s in result.series] == ['load{host="b"}', 'load{host="a"}', 'load{host="c"}']
    result = instant_query(STORE, 'sort(load)', ns(20))
    assert [key(s.labels) for s in result.series] == ['load{host="c"}', 'load{host="a"}', 'load{host="b"}']


def test_label_join():
    assert at(STORE, 'label_join(req, "jc", "/", "job", "code")', 0) == {
        'req{code="200",jc="api/200",job="api"}': 10, 'req{code="500",jc="api/500",job="api"}': 2}


def test_scalar_and_vector():
    assert at(STORE, 'scalar(b{k="1"})', 0) == 2
    assert math.isnan(at(STORE, 'scalar(b)', 0))  # two series
    assert math.isnan(at(STORE, 'scalar(nope)', 0))
    assert at(STORE, 'a * scalar(b{k="1"})', 0) == {'{k="1"}': 20, '{k="2"}': 40}
    assert at(STORE, 'vector(3)', 0) == {'{}': 3}
    assert over(STORE, 'vector(time())', 0, 10, 5) == {'{}': {0: 0, 5: 5, 10: 10}}


def test_time():
    assert at(STORE, 'time()', 12.5) == 12.5


@pytest.mark.parametrize(("expr", "expected"), [
    ('clamp(g, 2, 6)', 2),  # g at 3 = 1
    ('clamp_min(g, 2)', 2),
    ('clamp_max(g, 0.5)', 0.5),
    ('abs(n)', 3),
    ('abs(-g)', 1),
    ('ceil(g / 2)', 1),
    ('floor(g / 2)', 0),
    ('round(g / 2)', 1),  # 0.5 rounds up
    ('round(n / 2)', -1),  # -1.5 rounds up to -1 (floor(x + 0.5))
    ('round(g * 3.7, 2)', 4),  # 3.7 to the nearest 2
    ('sqrt(g * 4)', 2),
])
def test_math_functions_drop_the_name(expr, expected):
    assert at(STORE, expr, 3) == {'{}': approx(expected)}


def test_clamp_with_min_above_max_is_empty():
    assert at(STORE, 'clamp(g, 5, 1)', 3) == {}


def test_absent():
    assert at(STORE, 'absent(nope{job="x"})', 0) == {'{job="x"}': 1}
    assert at(STORE, 'absent(a)', 0) == {}
    assert at(STORE, 'absent_over_time(nope[1m])', 0) == {'{}': 1}
    assert over(STORE, 'absent(part{i="2"})', 0, 400, 200) == {'{i="2"}': {0: 1, 200: 1}}


def test_string_literal_instant_query():
    result = instant_query(STORE, '"hello"', ns(0))
    assert result.kind == "string" and result.string == "hello"


@pytest.mark.parametrize("expr", [
    'foo(a)',  # unknown function
    'a +',  # syntax error
    'sum(',
    'a{',
    'rate(a)',  # wrong argument type
])
def test_bad_queries_raise_promql_error(expr):
    with pytest.raises(PromQLError):
        at(STORE, expr, 0)


def test_range_query_of_a_range_vector_is_an_error():
    with pytest.raises(PromQLError):
        over(STORE, 'g[5s]', 0, 10, 1)


def test_range_query_arguments_are_checked():
    with pytest.raises(PromQLError):
        range_query(STORE, 'g', ns(0), ns(10), 0)
    with pytest.raises(PromQLError):
        range_query(STORE, 'g', ns(10), ns(0), ns(1))


# --- offset and @ -----------------------------------------------------------------------------------------------------

def test_offset_shifts_the_evaluation_time_back():
    assert at(STORE, 'c_total offset 5s', 10) == {'c_total{}': 50}
    assert at(STORE, 'increase(r_total[4s] offset 2s)', 12) == {'{}': approx(100 / 3)}


def test_negative_offset_looks_ahead():
    assert at(STORE, 'c_total offset -5s', 10) == {'c_total{}': 150}


def test_offset_on_a_subquery():
    """s[30s:10s] offset 10s at 65 evaluates at 55: grid (25, 55] → 30, 40, 50."""
    assert at(STORE, 'max_over_time(s_total[30s:10s] offset 10s)', 65) == {'{}': 1500}
    assert at(STORE, 'count_over_time(s_total[30s:10s] offset 10s)', 65) == {'{}': 3}


def test_at_pins_the_evaluation_time():
    assert over(STORE, 'c_total @ 5', 0, 20, 10) == {'c_total{}': {0: 50, 10: 50, 20: 50}}
    assert at(STORE, 'c_total @ 10 offset 3s', 20) == {'c_total{}': 70}
    assert at(STORE, 'rate(c_total[4s] @ 10)', 20) == {'{}': approx(10)}


def test_at_start_and_end():
    assert over(STORE, 'c_total @ start()', 4, 8, 2) == {'c_total{}': {4: 40, 6: 40, 8: 40}}
    assert over(STORE, 'c_total @ end()', 4, 8, 2) == {'c_total{}': {4: 80, 6: 80, 8: 80}}


# --- subqueries -------------------------------------------------------------------------------------------------------

def test_rate_over_a_subquery():
    """s = 1000 + 10 t. s[1m:10s] at 60 evaluates s at the multiples of 10 s in (0, 60]: 10..60 → 1100..1600.
    Sampled 50 s, increase 500; start gap 10 s < 1.1 × 10 s → extrapolated in full: 500 × 60/50 / 60 = 10/s."""
    assert at(STORE, 'rate(s_total[1m:10s])', 60) == {'{}': approx(10)}
    # At 65 the grid is the same (10..60); gaps of 5 s at both ends.
    assert at(STORE, 'rate(s_total[1m:10s])', 65) == {'{}': approx(10)}


def test_subquery_grid_is_aligned_and_left_open():
    assert at(STORE, 'count_over_time(s_total[30s:10s])', 60) == {'{}': 3}  # 40, 50, 60 — not 30
    assert at(STORE, 'max_over_time(s_total[30s:10s])', 65) == {'{}': 1600}  # 40, 50, 60
    assert at(STORE, 'min_over_time(s_total[30s:10s])', 65) == {'{}': 1400}


def test_subquery_default_step_is_one_minute():
    assert at(STORE, 'count_over_time(s_total[2m:])', 120) == {'{}': 2}  # 60, 120


def test_subquery_of_an_expression():
    """rate(s[2s]) is 10 wherever the window holds 2 samples; max over a subquery of it is 10."""
    assert at(STORE, 'max_over_time(rate(s_total[2s])[30s:10s])', 60) == {'{}': approx(10)}


def test_subquery_in_a_range_query():
    assert over(STORE, 'sum_over_time(vector(1)[30s:10s])', 0, 20, 10) == {'{}': {0: 3, 10: 3, 20: 3}}


# --- histograms -------------------------------------------------------------------------------------------------------

def test_histogram_count_of_a_rate():
    assert at(HIST, 'histogram_count(rate(h[2s]))', 1) == {'{op="read"}': 10, '{op="write"}': 4}
    assert at(HIST, 'histogram_count(increase(h[2s]))', 1) == {'{op="read"}': 20, '{op="write"}': 8}


def test_histogram_sum_counts_each_observation_at_its_bucket_midpoint():
    assert at(HIST, 'histogram_sum(rate(h[2s]))', 1) == {'{op="read"}': READ_DELTA_SUM, '{op="write"}': 16}
    assert READ_DELTA_SUM == 158.5


def test_histogram_avg():
    assert at(HIST, 'histogram_avg(rate(h[2s]))', 1) == approx({'{op="read"}': 15.85, '{op="write"}': 4})


def test_histogram_quantile_is_the_upper_edge_of_the_bucket_holding_the_rank():
    """The tiny example: p50 → rank 5 → bucket 12 = [16, 19]; p99 → rank 10 → bucket 15 = [28, 31]."""
    assert at(HIST, 'histogram_quantile(0.5, rate(h{op="read"}[2s]))', 1) == {'{op="read"}': 19}
    assert at(HIST, 'histogram_quantile(0.99, rate(h{op="read"}[2s]))', 1) == {'{op="read"}': 31}
    assert at(HIST, 'histogram_quantile(0, rate(h{op="read"}[2s]))', 1) == {'{op="read"}': 3}


def test_histogram_quantile_of_a_slow_rate_matches_the_counts():
    """slow: 3 observations of 2 and 1 of [10, 11] between t = 0 and t = 10. rate(slow[20s]) at 10 is {2: 0.3,
    9: 0.1}/s (the 10 s start gap is extrapolated in full: × 20/10 / 20). The distribution is that of the counts:
    p50 → rank 2 of 4 → bucket 2 → 2, as increase() (the same counts × 2) gives."""
    store = build_store(histograms={'slow': hist(2, 5, [(0, {2: 100, 9: 100}), (10, {2: 103, 9: 101})])})
    assert at(store, 'histogram_quantile(0.5, increase(slow[20s]))', 10) == {'{}': 2}
    assert at(store, 'histogram_quantile(0.5, rate(slow[20s]))', 10) == {'{}': 2}


def test_histogram_quantile_has_no_point_when_nothing_was_observed():
    assert over(HIST, 'histogram_quantile(0.5, rate(h{op="read"}[2s]))', 1, 3, 1) == {'{op="read"}': {1: 19, 2: 9}}
    assert over(HIST, 'histogram_count(rate(h{op="read"}[2s]))', 1, 3, 1) == {'{op="read"}': {1: 10, 2: 4, 3: 0}}


def test_histogram_quantile_outside_0_1():
    assert at(HIST, 'histogram_quantile(2, rate(h{op="read"}[2s]))', 1) == {'{op="read"}': math.inf}
    assert at(HIST, 'histogram_quantile(-1, rate(h{op="read"}[2s]))', 1) == {'{op="read"}': -math.inf}


def test_sum_of_histograms_is_bucket_wise():
    """read + write at 1: {3: 1, 4: 4, 8: 2, 12: 5, 13: 1, 15: 1}, T = 14. p50: rank 7 → running 1, 5, 7 → bucket 8
    = [8, 9]; p99: rank ceil(13.86) = 14 → bucket 15."""
    assert at(HIST, 'histogram_quantile(0.5, sum(rate(h[2s])))', 1) == {'{}': 9}
    assert at(HIST, 'histogram_quantile(0.99, sum(rate(h[2s])))', 1) == {'{}': 31}
    assert at(HIST, 'histogram_count(sum(rate(h[2s])))', 1) == {'{}': 14}
    assert at(HIST, 'histogram_sum(sum(rate(h[2s])))', 1) == {'{}': READ_DELTA_SUM + 16}
    assert at(HIST, 'histogram_count(sum by (op) (rate(h[2s])))', 1) == {'{op="read"}': 10, '{op="write"}': 4}


def test_histogram_fraction_counts_whole_buckets_inside_the_bounds():
    assert at(HIST, 'histogram_fraction(0, 19, rate(h{op="read"}[2s]))', 1) == {'{op="read"}': approx(0.8)}
    assert at(HIST, 'histogram_fraction(0, 9, sum(rate(h[2s])))', 1) == {'{}': approx(0.5)}  # (1 + 4 + 2) / 14


def test_histogram_heatmap_has_one_series_per_used_bucket():
    assert over(HIST, 'histogram_heatmap(rate(h{op="read"}[2s]))', 1, 2, 1) == {
        '{le="3",op="read"}': {1: 1, 2: 0},
        '{le="9",op="read"}': {1: 2, 2: 4},
        '{le="19",op="read"}': {1: 5, 2: 0},
        '{le="23",op="read"}': {1: 1, 2: 0},
        '{le="31",op="read"}': {1: 1, 2: 0},
    }


def test_irate_of_a_histogram():
    assert at(HIST, 'histogram_count(irate(h[5s]))', 2) == {'{op="read"}': 4, '{op="write"}': 1}
    assert at(HIST, 'histogram_quantile(0.5, irate(h{op="read"}[5s]))', 2) == {'{op="read"}': 9}


def test_histogram_functions_of_the_raw_cumulative_histogram():
    assert at(HIST, 'histogram_count(h{op="read"})', 2) == {'{op="read"}': 44}
    # t = 0: {3: 10, 8: 10, 12: 10}, p50 → rank 15 → bucket 8 = [8, 9].
    assert at(HIST, 'histogram_quantile(0.5, h{op="read"})', 0) == {'{op="read"}': 9}


def test_histogram_reset():
    """hr: bucket 3 goes 10 → 12 → (restart) 1, with 1 in bucket 8 → 2. Over t1 → t2 the new counts are the
    increase: {3: 1, 8: 1}."""
    assert at(HIST, 'histogram_count(rate(hr[2s]))', 2) == {'{}': 2}
    assert at(HIST, 'histogram_quantile(1, rate(hr[2s]))', 2) == {'{}': 9}
    assert at(HIST, 'histogram_count(irate(hr[3s]))', 2) == {'{}': 2}
    assert at(HIST, 'histogram_count(rate(hr[2s]))', 3) == {'{}': 1}


def test_increase_of_a_histogram_across_a_reset():
    """hr[4s] at 3: t0 → t1 adds 2 in bucket 3, the restart brings {3: 1, 8: 1}, t2 → t3 adds 1 in bucket 3: 5
    observations over a sampled 3 s; the 1 s start gap is extrapolated in full: 5 × 4/3."""
    assert at(HIST, 'histogram_count(increase(hr[4s]))', 3) == {'{}': approx(20 / 3)}
    # Bucket by bucket: 4 × 4/3 in bucket 3 = [3, 3], 4/3 in bucket 8 = [8, 9].
    assert at(HIST, 'histogram_heatmap(increase(hr[4s]))', 3) == approx({'{le="3"}': 16 / 3, '{le="9"}': 4 / 3})


def test_histogram_functions_without_observations():
    """At t = 3 nothing was observed in h{op="read"}: count and sum are 0, average and fraction have no point."""
    assert at(HIST, 'histogram_count(rate(h{op="read"}[2s]))', 3) == {'{op="read"}': 0}
    assert at(HIST, 'histogram_sum(rate(h{op="read"}[2s]))', 3) == {'{op="read"}': 0}
    assert at(HIST, 'histogram_avg(rate(h{op="read"}[2s]))', 3) == {}
    assert at(HIST, 'histogram_fraction(0, 9, rate(h{op="read"}[2s]))', 3) == {}


def test_histogram_with_a_missing_sample():
    """hgap has samples at 0 and 2 only. irate: {1: 4} over 2 s → 2/s. rate over [5s] at 2: one interval of 2 s,
    start gap 3 s ≥ 1.1 × 2 s → extrapolate 1 s: 4 × 3/2 / 5 = 1.2/s."""
    assert at(HIST, 'histogram_count(irate(hgap[5s]))', 2) == {'{}': approx(2)}
    # Prometheus 3 caps the start at the count's zero point: 2 s * 1/4 = 0.5 s < the 1 s half interval,
    # so the increase 4 is extrapolated over 2.5 s of the 2 s sampled: 5 per 5 s window = 1/s.
    assert at(HIST, 'histogram_count(rate(hgap[5s]))', 2) == {'{}': approx(1.0)}
    assert at(HIST, 'histogram_count(rate(hgap[1500ms]))', 2) == {}  # only the sample at 2


def test_histogram_selector_lookback():
    assert over(HIST, 'histogram_count(hgap)', 0, 2, 1) == {'{}': {0: 1, 1: 1, 2: 5}}


def test_histograms_with_different_max_value_powers_are_summed_with_padding():
    """hm{m="5"} adds {1: 3}; hm{m="6"} adds {17: 1, 19: 1} (17 = [40, 47], 19 = [56, 63]). Sum T = 5:
    p50 → rank 3 → bucket 1; p80 → rank 4 → bucket 17 → 47; p100 → 63."""
    assert at(HIST, 'histogram_quantile(0.5, sum(rate(hm[2s])))', 1) == {'{}': 1}
    assert at(HIST, 'histogram_quantile(0.8, sum(rate(hm[2s])))', 1) == {'{}': 47}
    assert at(HIST, 'histogram_quantile(1, sum(rate(hm[2s])))', 1) == {'{}': 63}
    assert at(HIST, 'histogram_heatmap(sum(rate(hm[2s])))', 1) == {'{le="1"}': 3, '{le="47"}': 1, '{le="63"}': 1}


def test_histograms_with_different_grouping_powers_cannot_be_summed():
    with pytest.raises(PromQLError):
        at(HIST, 'sum(rate(hg[2s]))', 1)


def test_histogram_scaling_by_a_scalar():
    assert at(HIST, 'histogram_count(rate(h{op="read"}[2s]) * 60)', 1) == {'{op="read"}': 600}
    assert at(HIST, 'histogram_count(rate(h{op="read"}[2s]) / 2)', 1) == {'{op="read"}': 5}


@pytest.mark.parametrize("expr", [
    'h',  # a bare histogram as the result
    'rate(h[2s])',
    'histogram_quantile(0.5, marker)',  # not a histogram
    'rate(h[2s]) + rate(h[2s])',
    'max(rate(h[2s]))',
    'max_over_time(h[2s])',
    'deriv(h[2s])',
    'predict_linear(h[2s], 60)',
    'histogram_count(rate(h[2s])[4s:1s])',
])
def test_histogram_misuse_is_a_promql_error(expr):
    with pytest.raises(PromQLError):
        at(HIST, expr, 2)


# --- range queries in chunks and scopes -------------------------------------------------------------------------------

def test_chunked_evaluation_is_invisible(monkeypatch):
    """With a tiny chunk budget, a 41-step range query runs in three chunks and still gives every step."""
    monkeypatch.setattr(engine, "CHUNK_STEPS", 16)
    assert len(list(engine.evaluate_range(STORE, 'c_total', 0, ns(20), ns(0.5)))) == 3
    assert over(STORE, 'c_total', 0, 20, 0.5) == {'c_total{}': {t / 2: 10 * (t // 2) for t in range(41)}}
    assert over(HIST, 'histogram_count(rate(h{op="write"}[2s]))', 1, 3, 0.05)['{op="write"}'][3] == approx(1)


def test_chunks_are_sized_by_every_series_the_query_reads():
    """Counters and gauges: SCALAR_CELLS per chunk (256 to CHUNK_STEPS steps); histograms: CHUNK_CELLS buckets
    summed over every histogram series read (16 steps at least)."""
    assert engine.selected_size(STORE, engine.parse('c_total + g')) == (2, 0)
    assert engine.selected_size(HIST, engine.parse('h')) == (0, 2 * 16)  # two g=2, m=5 histograms of 16 buckets
    assert engine.chunk_steps(1, 0) == engine.CHUNK_STEPS
    assert engine.chunk_steps(10_000, 0) == 256
    assert engine.chunk_steps(2_000, 0) == engine.SCALAR_CELLS // 2_000
    assert engine.chunk_steps(0, 7424) == engine.CHUNK_CELLS // 7424
    assert engine.chunk_steps(0, 10 * 7424) == engine.CHUNK_CELLS // (10 * 7424)
    assert engine.chunk_steps(0, 10**9) == 16


def test_a_histogram_result_of_a_range_or_instant_query_is_one_error():
    for query in (lambda: over(HIST, 'rate(h[2s])', 1, 3, 1), lambda: at(HIST, 'rate(h[2s])', 2)):
        with pytest.raises(PromQLError) as caught:
            query()
        assert str(caught.value) == engine.HISTOGRAM_RESULT
    # a caller that reads buckets gets them
    (_, _, value), = engine.evaluate_range(HIST, 'rate(h[2s])', ns(1), ns(3), ns(1), histograms=True)
    assert all(sample.is_histogram for sample in value.series)


@pytest.mark.parametrize("raised, message", [
    (MemoryError(), engine.OUT_OF_MEMORY),
    (ValueError("number too large\nto fit"), "number too large"),  # one line
    (OverflowError("int too big"), "int too big"),
    (ValueError(), "ValueError"),
])
def test_what_evaluation_raises_becomes_one_promql_error(monkeypatch, raised, message):
    from rezgen.promql.evaluator import Evaluator

    def fail(self, node):
        raise raised

    monkeypatch.setattr(Evaluator, "eval", fail)
    for query in (lambda: range_query(STORE, 'g', 0, ns(10), ns(1)), lambda: instant_query(STORE, 'g', ns(1))):
        with pytest.raises(PromQLError) as caught:
            query()
        assert str(caught.value) == message


@pytest.mark.parametrize("expr, recognised", [
    ('sum(irate(h[2s]))', True),
    ('sum(irate({__name__="h"}[2s]))', True),
    ('sum(irate(h{op="read"}[3s]))', True),
    ('sum by (op) (irate(h[2s]))', False),
    ('sum(rate(h[2s]))', False),
    ('max(irate(h[2s]))', False),
    ('sum(irate(h[2s] offset 1s))', False),
    ('sum(irate(marker[2s]))', False),  # not a histogram
    ('sum(irate(hg[2s]))', False),  # two grouping powers
    ('sum(irate(nothing[2s]))', False),
])
def test_the_sparse_sum_of_histogram_irates_is_recognised_in_one_place(expr, recognised):
    from rezgen.promql.sparse import summed_irate

    assert (summed_irate(HIST, engine.parse(expr)) is not None) == recognised


@pytest.mark.parametrize("selector", ['h', 'hm', 'h{op="read"}', 'hr'])
def test_the_sparse_sum_of_histogram_irates_equals_the_general_path(selector):
    """`sum by ()` keeps the engine off the fast path and sums the same series: the same buckets, bit for bit."""
    fast = list(engine.evaluate_range(HIST, f'sum(irate({selector}[2s]))', 0, ns(3), ns(0.5), histograms=True))
    general = list(engine.evaluate_range(HIST, f'sum by () (irate({selector}[2s]))', 0, ns(3), ns(0.5),
                                         histograms=True))
    for (_, _, f), (_, _, g) in zip(fast, general, strict=True):
        assert [s.labels for s in f.series] == [s.labels for s in g.series]
        for a, b in zip(f.series, g.series):
            assert a.layout == b.layout and np.array_equal(a.present, b.present)
            assert np.array_equal(np.where(a.present[:, None], a.values, 0), np.where(b.present[:, None], b.values, 0))


def test_scope_restricts_series_that_carry_the_label():
    store = build_store({'u{node="a"}': [(0, 1)], 'u{node="b"}': [(0, 2)], 'u': [(0, 3)]})
    result = range_query(store, 'sum(u)', 0, 0, ns(1), scope=(("node", "a"),))
    assert [s.values.tolist() for s in result.series] == [[4]]  # node="a" and the series without a node label


# --- limits: what one query may cost (rezgen/promql/limits.py) --------------------------------------------------------


def _c16():
    from shared import shared_recording

    from rezgen.recording.reader import open_recording

    return open_recording(shared_recording("c16.parquet"))


@pytest.mark.parametrize(("expr", "message"), [
    ("+".join(["1"] * 5000), "too many operators: 4999, limit 256"),  # SIGSEGV in promql-parser before
    ("(" * 1000 + "1" + ")" * 1000, "nested too deeply"),  # RecursionError (500) before
    ("-" * 300 + "x", "too many operators: 300"),
    ("+".join(["1"] * 200), "nested too deeply: expression depth over 128"),  # parses, but 200 deep
    ("x" + " " * 70_000, "query too long: 70,001 bytes, limit 65,536"),
])
def test_queries_the_parser_or_evaluator_would_not_survive_are_refused_before_parsing(expr, message):
    with pytest.raises(PromQLError, match=message):
        at(STORE, expr, 0)


@pytest.mark.parametrize("expr", [
    'x{a="' + "(" * 1000 + '"}',  # brackets inside a string count for nothing
    'x{a!="+-*/", a!~"' + "[(]" * 500 + '"} # ' + "(" * 500,  # nor do matchers, operators in them and comments
    "+".join(["1"] * 100),  # a long chain within the limits
])
def test_brackets_and_operators_in_strings_matchers_and_comments_do_not_count(expr):
    at(STORE, expr, 0)  # no error


def test_regex_matchers_are_re2_anchored_like_prometheus():
    assert at(STORE, 'x{a=~"1|2"}', 0) == {'x{a="1"}': 1, 'x{a="2"}': 10}  # anchored: "10" does not match "1"
    assert at(STORE, 'x{a!~"1.*"}', 0) == {'x{a="2"}': 10}
    with pytest.raises(PromQLError, match=r"invalid regular expression 'a\{1001\}'"):  # RE2's, as Go's: 1000 at most
        at(STORE, 'x{a=~"a{1001}"}', 0)


def test_a_pathological_regex_finishes_promptly_and_is_right():
    import concurrent.futures

    recording = _c16()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # backtracking ran 467 CPU-seconds in Python's re
        found = pool.submit(instant_query, recording.store, '{__name__=~"(.|.)*X"}', recording.time_range[1])
        assert found.result(timeout=10).series == []
        names = pool.submit(instant_query, recording.store, 'count({__name__=~"(.|.){0,18}_cores"})',
                            recording.time_range[1])
        assert [float(s.values[0]) for s in names.result(timeout=10).series] == [1.0]  # cpu_cores only


@pytest.mark.slow
def test_count_values_over_every_series_counts_the_float_samples():
    from collections import Counter
    from decimal import Decimal

    from rawparquet import RawRecording
    from shared import shared_recording

    recording = _c16()
    raw = RawRecording(shared_recording("c16.parquet"))
    row = 200
    t = int(raw.timestamps[row])
    expected: Counter[str] = Counter()
    for column in raw.metric_columns:
        if column.kind in ("counter", "gauge"):
            seen = raw.values(column)[: row + 1]
            seen = seen[~np.isnan(seen)]
            if len(seen):  # the newest sample at or before t (every sample of c16 is within the 5-minute lookback)
                text = format(Decimal(repr(float(seen[-1]))), "f")  # Go's FormatFloat(v, 'f', -1): shortest digits
                expected[text.rstrip("0").rstrip(".") if "." in text else text] += 1
    result = instant_query(recording.store, 'count_values("v", {__name__=~".+"})', t)
    counted = {dict(s.labels)["v"]: float(s.values[0]) for s in result.series}
    assert counted == {k: float(n) for k, n in expected.items()}


def test_count_values_over_steps():
    assert over(STORE, 'count_values("v", load)', 0, 20, 10) == {
        '{v="1"}': {0: 1, 10: 1}, '{v="2"}': {0: 1, 20: 1}, '{v="3"}': {0: 1, 20: 1}, '{v="4"}': {10: 1},
        '{v="5"}': {10: 1}, '{v="6"}': {20: 1}}


def test_the_sample_estimate_counts_series_steps_windows_and_subquery_grids():
    from rawparquet import RawRecording
    from shared import shared_recording

    from rezgen.promql.cache import parse
    from rezgen.promql.cost import estimate_samples

    recording = _c16()
    raw = RawRecording(shared_recording("c16.parquet"))
    series = len(raw.select("cgroup_syscall"))
    stamps = raw.timestamps
    t = int(stamps[-1])
    times = np.arange(t - 99 * 10**9, t + 1, 10**9)
    assert estimate_samples(recording.store, parse("cgroup_syscall"), times, t, t) == series * 100
    # window points: the rows in (first step - 1m, last step], for each series; then rate's output
    rows = int(((stamps > times[0] - 60 * 10**9) & (stamps <= times[-1])).sum())
    assert estimate_samples(recording.store, parse("rate(cgroup_syscall[1m])"), times, t, t) == \
        series * rows + series * 100
    # a subquery at one step: its inner grid of 100 ms steps in (t - 1h, t], evaluated and then copied
    grid = t // 10**8 - ((t - 3600 * 10**9) // 10**8 + 1) + 1
    one = np.array([t])
    assert estimate_samples(recording.store, parse("max_over_time(cgroup_syscall[1h:100ms])"), one, t, t) == \
        series * grid * 2 + series


def test_a_query_over_the_sample_limit_is_refused_and_one_at_it_runs():
    from rezgen.promql.cache import parse
    from rezgen.promql.cost import estimate_samples
    from rezgen.promql.limits import QueryTooExpensive

    recording = _c16()
    t = recording.time_range[1]
    expr = "max_over_time(rate(cgroup_syscall[1m])[5m:1s])"
    needed = estimate_samples(recording.store, parse(expr), np.array([t]), t, t)
    with pytest.raises(QueryTooExpensive, match=f"limit {needed - 1:,} \\(--query-max-samples\\)"):
        instant_query(recording.store, expr, t, max_samples=needed - 1)
    assert len(instant_query(recording.store, expr, t, max_samples=needed).series) > 0


def test_a_query_past_its_deadline_stops():
    from rezgen.promql.deadline import QueryTimeout, deadline

    with deadline(0.0), pytest.raises(QueryTimeout, match="query timed out in expression evaluation"):
        range_query(STORE, "sum(rate(c_total[5s]))", 0, ns(20), ns(1))
    with deadline(60.0):
        assert range_query(STORE, "sum(rate(c_total[5s]))", 0, ns(20), ns(1)).series
