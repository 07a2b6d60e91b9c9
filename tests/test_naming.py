from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestd.naming import (
    count_missing_slots,
    format_name,
    is_data_name,
    missing_slots,
    oldest_first,
    parse_name,
    printable,
)


def test_parses_the_timestamp() -> None:
    assert parse_name("2020_08_18_02_15.txt") == datetime(2020, 8, 18, 2, 15)


@pytest.mark.parametrize(
    "name",
    [
        "2020_02_30_00_00.txt",  # no such day
        "2021_02_29_00_00.txt",  # not a leap year
        "2020_13_01_00_00.txt",
        "2020_01_01_24_00.txt",
        "2020_01_01_00_60.txt",
        "2020_1_01_00_00.txt",
        "2020_01_01_00_00.TXT",
        "2020_01_01_00_00.txt.tmp",
        ".2020_01_01_00_00.txt.tmp",
        " 2020_01_01_00_00.txt",
        "2020_01_01_00_00.txt\n",
        "2020-01-01-00-00.txt",
        "2020_01_01_00_00",
        "١٢٣٤_01_01_00_00.txt",  # non-ASCII digits match \d but are not a timestamp we accept
        "",
    ],
)
def test_rejects_near_misses(name: str) -> None:
    assert parse_name(name) is None
    assert not is_data_name(name)


def test_leap_day_is_valid() -> None:
    assert is_data_name("2020_02_29_23_59.txt")


@given(st.lists(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31))))
def test_names_sort_by_time_as_plain_strings(stamps: list[datetime]) -> None:
    # The ready queue relies on it: no parsing to order names.
    names = [format_name(s) for s in stamps]
    assert sorted(names) == oldest_first(names)


def test_oldest_first_orders_by_timestamp_and_drops_others() -> None:
    names = ["2018_06_28_00_15.txt", "junk", "2017_12_31_23_45.txt", "2018_06_28_00_00.txt"]
    assert oldest_first(names) == [
        "2017_12_31_23_45.txt",
        "2018_06_28_00_00.txt",
        "2018_06_28_00_15.txt",
    ]


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_format_and_parse_round_trip(stamp: datetime) -> None:
    stamp = stamp.replace(second=0, microsecond=0)
    assert parse_name(format_name(stamp)) == stamp


@given(st.text(max_size=30))
def test_parser_never_raises(text: str) -> None:
    stamp = parse_name(text)
    assert stamp is None or format_name(stamp) == text


def test_missing_slots_finds_gaps_only() -> None:
    base = datetime(2018, 6, 28)
    stamps = [base, base + timedelta(minutes=15), base + timedelta(minutes=60)]
    gaps = list(missing_slots(stamps, timedelta(minutes=15)))
    assert gaps == [base + timedelta(minutes=30), base + timedelta(minutes=45)]


def test_printable_escapes_and_bounds() -> None:
    assert printable("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
    assert len(printable("x" * 10_000)) == 123


@given(
    st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
    st.integers(min_value=1, max_value=120),
    st.integers(min_value=0, max_value=20),
)
def test_counting_missing_slots_agrees_with_listing_them(
    offsets: list[int], step: int, listed: int
) -> None:
    base = datetime(2018, 6, 28)
    stamps = [base + timedelta(minutes=m) for m in offsets]
    interval = timedelta(minutes=step)
    every = list(missing_slots(stamps, interval))
    assert count_missing_slots(stamps, interval, listed) == (len(every), every[:listed])


def test_counting_missing_slots_is_bounded_for_a_far_future_name() -> None:
    stamps = [datetime(2018, 6, 28), datetime(9999, 12, 31, 23, 45)]
    count, first = count_missing_slots(stamps, timedelta(minutes=1), listed=3)
    assert count > 4 * 10**9 and len(first) == 3
