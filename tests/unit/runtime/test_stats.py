"""Running stats: the moments the stats line and `verify` compute, exactly."""

import random

from hypothesis import given
from hypothesis import strategies as st

from ingestd.runtime.stats import RunningStats, format_number, stats_line


def brute_force(history: list[float]) -> float:
    newest = history[-1]
    return sum((x - newest) ** 2 for x in history)


def test_the_specified_example() -> None:
    stats = RunningStats()
    for minutes in (5, 6, 7, 8, 9):
        stats.add(minutes)
    assert stats.count == 5
    assert stats.total == 35
    assert stats.sum_of_squares == 30
    assert stats.due()
    assert stats_line(**stats.fields()) == "Files processed: 5, Total Time: 35, Sum of Squares: 30"


def test_reports_every_fifth_file_only() -> None:
    stats = RunningStats()
    due = []
    for minutes in range(12):
        stats.add(minutes)
        due.append(stats.due())
    assert [i + 1 for i, d in enumerate(due) if d] == [5, 10]


def test_empty_and_single() -> None:
    stats = RunningStats()
    assert stats.sum_of_squares == 0
    stats.add(42.5)
    assert stats.sum_of_squares == 0
    assert stats.total == 42.5


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=60))
def test_agrees_with_brute_force_after_every_file(history: list[float]) -> None:
    stats = RunningStats()
    for i, minutes in enumerate(history):
        stats.add(minutes)
        expected = brute_force(history[: i + 1])
        assert abs(stats.sum_of_squares - expected) <= 1e-9 * max(1.0, expected) + 1e-6


def test_large_magnitudes_stay_accurate() -> None:
    rng = random.Random(7)
    history = [1e9 + rng.uniform(12, 37) for _ in range(5000)]
    stats = RunningStats()
    for minutes in history:
        stats.add(minutes)
    # Exact reference: the offsets are small, so subtract in a way that keeps their digits.
    newest = history[-1]
    expected = sum((x - newest) ** 2 for x in history)
    assert abs(stats.sum_of_squares - expected) / expected < 1e-9
    # The naive formula loses everything here, which is why it is not used.
    s1 = sum(history)
    s2 = sum(x * x for x in history)
    naive = s2 - 2 * newest * s1 + len(history) * newest**2
    assert abs(naive - expected) / expected > 1e-3


def test_format_number() -> None:
    assert format_number(35.0) == "35"
    assert format_number(1450.98123) == "1450.9812"
    assert format_number(0.0) == "0"
    assert format_number(-0.00001) == "0"
