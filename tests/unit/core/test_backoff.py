"""Streaks of failures: doubling waits up to a cap, one line at the start and one at the end."""

from ingestd.core.backoff import Streak


def test_a_streak_is_said_once_and_its_waits_double_up_to_the_cap() -> None:
    streak = Streak(base=2.0, cap=10.0)
    starts = [streak.fail(now=100.0) for _ in range(5)]
    assert starts == [True, False, False, False, False]
    assert streak.delay(100.0) == 10.0  # 2, 4, 8, then the cap
    assert streak.delay(111.0) == 0.0
    assert streak.succeed() is True
    assert streak.succeed() is False  # nothing to end
    assert streak.delay(100.0) == 0.0
    assert streak.fail(now=0.0) is True and streak.delay(0.0) == 2.0  # a new streak


def test_a_very_long_streak_does_not_overflow() -> None:
    streak = Streak(base=1.0, cap=300.0)
    for _ in range(5000):
        streak.fail(now=0.0)
    assert streak.delay(0.0) == 300.0
