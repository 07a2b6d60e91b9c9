"""Pure rules for the provider's file names: `YYYY_MM_DD_HH_MM.txt` or `KEY_YYYY_MM_DD_HH_MM.txt`.

A name is accepted only if it matches the pattern exactly *and* forms a real date-time, so
`2020_02_30_00_00.txt` is not a data file. The timestamp is what orders the work, oldest first,
then the key. A KEY (a client, a provider) is 1 to 32 letters, digits, `-` and `.`, starting
with a letter or digit: `_` separates it from the timestamp, so it cannot appear in it; a
leading `.` would be a hidden or temp file, a leading `-` reads as an option on a command line.
A name without a key belongs to the default key, "".

Other naming schemes: `use_pattern(REGEX)` (`--key-pattern`), a regular expression with the
named groups `year`, `month`, `day`, `hour`, `minute` and optionally `key`, matched against the
whole name. It is set once per process, at start-up, before any name is looked at.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, NamedTuple

DEFAULT_KEY = ""
TIME_GROUPS = ("year", "month", "day", "hour", "minute")
_DEFAULT = re.compile(
    r"(?:(?P<key>[A-Za-z0-9][A-Za-z0-9.-]{0,31})_)?"
    r"(?P<year>\d{4})_(?P<month>\d{2})_(?P<day>\d{2})_(?P<hour>\d{2})_(?P<minute>\d{2})\.txt",
    re.ASCII,
)
# The default scheme with the ranges of months, days, hours and minutes in the pattern: only a
# day past the 28th still needs the calendar (`is_data_name`'s fast path).
_DEFAULT_STRICT = re.compile(
    r"(?:[A-Za-z0-9][A-Za-z0-9.-]{0,31}_)?"
    r"\d{4}_(?:0[1-9]|1[0-2])_(?:0[1-9]|[12]\d|3[01])_(?:[01]\d|2[0-3])_[0-5]\d\.txt",
    re.ASCII,
)
_name = _DEFAULT
NAME_FORMAT = "%Y_%m_%d_%H_%M.txt"


class Parsed(NamedTuple):
    stamp: datetime
    key: str


def use_pattern(pattern: str | None) -> None:
    """Accept names by `pattern` from now on (None: the default names). ValueError, with a
    message a person can act on, for a pattern that cannot name a timestamp."""
    global _name
    if pattern is None:
        _name = _DEFAULT
        return
    _name = compile_pattern(pattern)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
    missing = [group for group in TIME_GROUPS if group not in compiled.groupindex]
    if missing:
        raise ValueError(
            f"{pattern!r} lacks the named groups {', '.join(missing)}: a key pattern must "
            "say where the timestamp is, e.g. (?P<key>\\w+)-(?P<year>\\d{4})(?P<month>\\d\\d)"
            "(?P<day>\\d\\d)(?P<hour>\\d\\d)(?P<minute>\\d\\d)\\.json"
        )
    return compiled


def default_scheme() -> bool:
    """Whether names are the default scheme's (which sort by time when they have no key)."""
    return _name is _DEFAULT


def parse(name: str) -> Parsed | None:
    """The timestamp and key a data-file name stands for, or None if it is not one."""
    match = _name.fullmatch(name)
    if match is None:
        return None
    # One call for the five groups, no generator: operator commands parse a million names.
    year, month, day, hour, minute = match.group(*TIME_GROUPS)
    try:
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute))
    except (ValueError, TypeError):  # 2020_02_30, 25:00 and the like; a group that is empty
        return None
    key = match.group("key") if "key" in _name.groupindex else None
    return Parsed(stamp, key or DEFAULT_KEY)


def parse_name(name: str) -> datetime | None:
    """The timestamp a data-file name stands for, or None if it is not a data-file name."""
    parsed = parse(name)
    return None if parsed is None else parsed.stamp


def key_of(name: str) -> str:
    parsed = parse(name)
    return DEFAULT_KEY if parsed is None else parsed.key


def is_data_name(name: str) -> bool:
    # `parse` without building its result: audits ask this of a million names.
    if _name is _DEFAULT:
        if _DEFAULT_STRICT.fullmatch(name) is None:
            return False
        year, day = name[-20:-16], name[-12:-10]
        if day < "29" and year != "0000":
            return True
        return _valid_day(year, name[-15:-13], day)
    match = _name.fullmatch(name)
    if match is None:
        return False
    year, month, day, hour, minute = match.group(*TIME_GROUPS)
    try:
        return _valid_day(year, month, day) and 0 <= int(hour) < 24 and 0 <= int(minute) < 60
    except (ValueError, TypeError):  # a group that is empty or not a number
        return False


_STRICT_LINES = re.compile(r"^" + _DEFAULT_STRICT.pattern + r"$", re.ASCII | re.M)


def invalid_names(names: Collection[str]) -> list[str]:
    """The names among `names` that are not data-file names: for the default scheme, one
    regex pass over them all (status asks this of a million names)."""
    if _name is _DEFAULT and names:
        text = "\n".join(names)
        # Counted by `subn`, which keeps no match (a list of a million would be 70 MB). A
        # name with a newline in it would count as two lines: then every name is asked alone.
        lines = text.count("\n") + 1
        if lines == len(names) and _STRICT_LINES.subn("", text)[1] == lines:
            # Only a day past the 28th, or year 0, still needs the calendar.
            return [n for n in _CALENDAR_LINES.findall(text) if not is_data_name(n)]
    return [n for n in names if not is_data_name(n)]


# Lines of strict default names (as checked above) whose day or year the calendar must judge.
_CALENDAR_LINES = re.compile(
    r"^(?:[^\n]*_(?:29|3[01])_\d\d_\d\d|(?:[^\n]*_)?0000_[^\n]*)\.txt$", re.M
)


_DAY_MINUTES: dict[str, int] = {}  # `YYYY_MM_DD` -> minutes from year 1 to that day
_CLOCK_MINUTES = {f"{h:02d}_{m:02d}": h * 60 + m for h in range(24) for m in range(60)}


def minute_of(name: str) -> int:
    """A data-file name's time as whole minutes since year 1 (cheaper than `stamp_of`'s
    datetime, for gaps between a million names)."""
    if _name is _DEFAULT:
        day = _DAY_MINUTES.get(name[-20:-10])
        if day is None:
            date = name[-20:-10]
            stamp = datetime(int(date[0:4]), int(date[5:7]), int(date[8:10]))
            day = _DAY_MINUTES[date] = (stamp.toordinal() - 1) * 1440
        return day + _CLOCK_MINUTES[name[-9:-4]]
    stamp = stamp_of(name)
    return (stamp.toordinal() - 1) * 1440 + stamp.hour * 60 + stamp.minute


def stamp_of_minute(minute: int) -> datetime:
    return datetime.fromordinal(minute // 1440 + 1) + timedelta(minutes=minute % 1440)


@functools.lru_cache(maxsize=1 << 16)
def _valid_day(year: str, month: str, day: str) -> bool:
    """Whether the day exists (not 2020_02_30): a handful of days per thousand names."""
    try:
        datetime(int(year), int(month), int(day))
    except (ValueError, TypeError):
        return False
    return True


def _default_order(name: str) -> tuple[str, str, str]:
    """`sort_key`'s order for the default scheme, from the text alone: its fixed-width
    timestamp sorts as the time does (operator commands order a million names)."""
    return (name[-20:], name[:-21], name)


def stamp_of(name: str) -> datetime:
    """The timestamp of a name known to be a data-file name (a fast path for the default
    scheme's fixed layout)."""
    if _name is _DEFAULT:
        t = name[-20:]
        return datetime(int(t[0:4]), int(t[5:7]), int(t[8:10]), int(t[11:13]), int(t[14:16]))
    stamp = parse_name(name)
    if stamp is None:
        raise ValueError(f"not a data-file name: {name!r}")
    return stamp


def sort_key(name: str) -> tuple[datetime, str, str]:
    """Order key: timestamp first, then the key; the name breaks ties so the order is total."""
    parsed = parse(name)
    if parsed is None:
        raise ValueError(f"not a data-file name: {name!r}")
    return (parsed.stamp, parsed.key, name)


def order_key(name: str) -> tuple[Any, str, str]:
    """`sort_key`'s order, the cheapest way the scheme allows (the text alone for the
    default scheme). Keys of one scheme compare with each other only."""
    return _default_order(name) if _name is _DEFAULT else sort_key(name)


def oldest_first(names: Iterable[str]) -> list[str]:
    """The valid data-file names among `names`, oldest first."""
    valid = (n for n in names if is_data_name(n))
    return sorted(valid, key=_default_order if _name is _DEFAULT else sort_key)


def by_key(names: Iterable[str], checked: bool = False) -> dict[str, list[str]]:
    """The valid data-file names among `names` (`checked`: all of them are), per key, each
    list oldest first."""
    keyed: dict[str, list[str]] = {}
    if _name is _DEFAULT:
        # A key's names differ only in their timestamps: their text sorts as their time.
        for name in names:
            if checked or is_data_name(name):
                keyed.setdefault(name[:-21], []).append(name)
        for group in keyed.values():
            group.sort()
        return keyed
    for name in oldest_first(names):
        keyed.setdefault(key_of(name), []).append(name)
    return keyed


def format_name(stamp: datetime, key: str = DEFAULT_KEY) -> str:
    """The default scheme's name for `stamp` (and `key`)."""
    return f"{key}_{stamp.strftime(NAME_FORMAT)}" if key else stamp.strftime(NAME_FORMAT)


def missing_slots(stamps: Iterable[datetime], interval: timedelta) -> Iterator[datetime]:
    """Slots of the `interval` series between the first and last stamp that have no file.

    Stamps off the grid (a provider that is a minute late in its naming) do not count as
    missing slots; only whole gaps in the series do.
    """
    ordered = sorted(set(stamps))
    for earlier, later in itertools.pairwise(ordered):
        slot = earlier + interval
        while slot < later:
            yield slot
            slot += interval


def count_missing_slots(
    stamps: Iterable[datetime], interval: timedelta, listed: int = 100, ordered: bool = False
) -> tuple[int, list[datetime]]:
    """How many slots `missing_slots` would yield, and the first `listed` of them.

    Counted per gap by arithmetic, in time and memory bounded by the number of stamps: one
    far-future name (`9999_12_31_23_45.txt`) beside today's must not mean listing millions
    of slots.
    """
    if interval <= timedelta(0):
        raise ValueError("interval must be positive")
    # `ordered`: strictly ascending already (a key's names), so streamed, never held.
    series = stamps if ordered else sorted(set(stamps))
    count = 0
    first: list[datetime] = []
    for earlier, later in itertools.pairwise(series):
        # Slots earlier + k*interval with 0 < k and earlier + k*interval < later.
        in_gap = -((earlier - later) // interval) - 1  # ceil((later - earlier) / interval) - 1
        if in_gap <= 0:
            continue
        count += in_gap
        slot = earlier + interval
        while len(first) < listed and slot < later:
            first.append(slot)
            slot += interval
    return count, first


def count_missing_minutes(
    minutes: Iterable[int], interval: float, listed: int = 100
) -> tuple[int, list[datetime]]:
    """`count_missing_slots` of strictly ascending times in whole minutes (`minute_of`):
    the same count and slots, without a datetime per name."""
    step = timedelta(minutes=interval)
    if step <= timedelta(0):
        raise ValueError("interval must be positive")
    # In microseconds, as timedelta computes, so both count alike whatever the interval.
    micros = step // timedelta(microseconds=1)
    count = 0
    first: list[datetime] = []
    for earlier, later in itertools.pairwise(minutes):
        apart = (later - earlier) * 60_000_000
        if apart <= micros:
            continue  # the common case: the next slot, or sooner
        count += -(-apart // micros) - 1  # ceil(apart / interval) - 1
        slot, end = stamp_of_minute(earlier) + step, stamp_of_minute(later)
        while len(first) < listed and slot < end:
            first.append(slot)
            slot += step
    return count, first


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


def terminal_safe(text: object) -> str:
    """`text` with every control character escaped (`\\x1b`): a name or an error printed to a
    terminal can never move the cursor, recolour it or retitle the window."""
    return str(text).translate(_CONTROLS)


def printable(name: str, limit: int = 120) -> str:
    """A safe, bounded rendering of an arbitrary directory entry name for logs."""
    text = ascii(name)[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."
