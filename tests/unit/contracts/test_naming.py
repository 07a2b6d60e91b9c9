"""What a data file's name means: the default scheme, key patterns, order, missing slots."""

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestd.contracts.naming import (
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


def test_a_key_may_lead_the_name_and_orders_after_the_timestamp() -> None:
    from ingestd.contracts.naming import by_key, key_of, parse

    assert parse("acme_2018_06_28_00_00.txt") == (datetime(2018, 6, 28), "acme")
    assert key_of("acme.eu-2_2018_06_28_00_00.txt") == "acme.eu-2"
    assert key_of("2018_06_28_00_00.txt") == "" and key_of("2018_2018_06_28_00_00.txt") == "2018"
    for bad in (".hidden_2018_06_28_00_00.txt", "-opt_2018_06_28_00_00.txt",
                "a_b_2018_06_28_00_00.txt", "x" * 33 + "_2018_06_28_00_00.txt",
                "caf\u00e9_2018_06_28_00_00.txt", "_2018_06_28_00_00.txt",
                "acme_2018_02_30_00_00.txt"):  # fmt: skip
        assert parse(bad) is None, bad
    names = ["b_2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "a_2018_06_28_00_00.txt",
             "2018_06_28_00_00.txt"]  # fmt: skip
    assert oldest_first(names) == ["2018_06_28_00_00.txt", "a_2018_06_28_00_00.txt",
                                   "b_2018_06_28_00_00.txt", "2018_06_28_00_15.txt"]  # fmt: skip
    assert by_key(names)[""] == ["2018_06_28_00_00.txt", "2018_06_28_00_15.txt"]
    assert format_name(datetime(2018, 6, 28), "acme") == "acme_2018_06_28_00_00.txt"


def test_another_naming_scheme_by_a_pattern_with_named_groups() -> None:
    from ingestd.contracts.naming import parse, use_pattern

    pattern = (r"(?P<key>[a-z]+)-(?P<year>\d{4})(?P<month>\d\d)(?P<day>\d\d)"
               r"T(?P<hour>\d\d)(?P<minute>\d\d)\.json")  # fmt: skip
    use_pattern(pattern)
    try:
        assert parse("acme-20180628T0015.json") == (datetime(2018, 6, 28, 0, 15), "acme")
        assert parse("2018_06_28_00_00.txt") is None  # only the one scheme at a time
        assert parse("acme-20180230T0015.json") is None  # not a real date
    finally:
        use_pattern(None)
    assert parse("2018_06_28_00_00.txt") is not None
    with pytest.raises(ValueError, match="lacks the named groups hour, minute"):
        use_pattern(r"(?P<year>\d{4})(?P<month>\d\d)(?P<day>\d\d)\.txt")
    with pytest.raises(ValueError, match="not a regular expression"):
        use_pattern("(")


def test_the_fast_check_agrees_with_the_calendar_on_every_edge() -> None:
    import datetime as dt
    import itertools

    from ingestd.contracts import naming

    def by_calendar(name: str) -> bool:
        match = naming._DEFAULT.fullmatch(name)
        if match is None:
            return False
        try:
            dt.datetime(*map(int, match.group(*naming.TIME_GROUPS)))
        except ValueError:
            return False
        return True

    parts = itertools.product(
        ("", "a_", "A.b-1_", "_", "-a_", "x" * 33 + "_"),
        ("0000", "0001", "2020", "2100", "9999"),
        ("00", "01", "02", "12", "13"),
        ("00", "01", "28", "29", "30", "31", "32"),
        ("00", "23", "24"),
        ("00", "59", "60"),
    )
    names = [f"{k}{y}_{mo}_{d}_{h}_{mi}.txt" for k, y, mo, d, h, mi in parts]
    assert [n for n in names if naming.is_data_name(n) != by_calendar(n)] == []
    assert sum(map(naming.is_data_name, names)) > 500  # the valid ones are there too


@given(
    st.lists(
        st.sampled_from(
            [
                "2018_06_28_00_00.txt",
                "a-1_2018_06_28_00_15.txt",
                "2020_02_29_00_00.txt",
                "2021_02_29_00_00.txt",
                "0000_01_01_00_00.txt",
                "x.txt",
                "",
                "2018_06_28_00_00.txt\n2018_06_28_00_15.txt",
                "2018_06_28_24_00.txt",
            ]
        ),
        unique=True,
    )
)
def test_the_names_found_invalid_at_once_are_those_found_one_by_one(names: list[str]) -> None:
    from ingestd.contracts import naming

    assert naming.invalid_names(names) == [n for n in names if not naming.is_data_name(n)]


@given(st.lists(st.integers(0, 5000), unique=True), st.sampled_from([1.0, 7.5, 15.0, 1.1, 60.0]))
def test_gaps_in_minutes_count_as_gaps_in_time(offsets: list[int], interval: float) -> None:
    from datetime import timedelta

    from ingestd.contracts import naming

    minutes = sorted(naming.minute_of("2018_06_28_00_00.txt") + o for o in offsets)
    stamps = [naming.stamp_of_minute(m) for m in minutes]
    assert naming.count_missing_minutes(minutes, interval, 10) == naming.count_missing_slots(
        stamps, timedelta(minutes=interval), 10, ordered=True
    )
    assert [naming.minute_of(naming.format_name(s)) for s in stamps] == minutes
