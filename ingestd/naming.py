"""Pure rules for the provider's file names: `YYYY_MM_DD_HH_MM.txt`.

A name is accepted only if it matches the pattern exactly *and* forms a real date-time, so
`2020_02_30_00_00.txt` is not a data file. The timestamp is what orders the work, oldest first.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

_NAME = re.compile(r"(\d{4})_(\d{2})_(\d{2})_(\d{2})_(\d{2})\.txt", re.ASCII)
NAME_FORMAT = "%Y_%m_%d_%H_%M.txt"


def parse_name(name: str) -> datetime | None:
    """The timestamp a data-file name stands for, or None if it is not a data-file name."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    try:
        year, month, day, hour, minute = (int(part) for part in match.groups())
        return datetime(year, month, day, hour, minute)
    except ValueError:  # 2020_02_30, 25:00 and the like
        return None


def is_data_name(name: str) -> bool:
    return parse_name(name) is not None


def sort_key(name: str) -> tuple[datetime, str]:
    """Order key: timestamp first; the name breaks ties so the order is total."""
    stamp = parse_name(name)
    if stamp is None:
        raise ValueError(f"not a data-file name: {name!r}")
    return (stamp, name)


def oldest_first(names: Iterable[str]) -> list[str]:
    """The valid data-file names among `names`, oldest first."""
    return sorted((n for n in names if is_data_name(n)), key=sort_key)


def format_name(stamp: datetime) -> str:
    return stamp.strftime(NAME_FORMAT)


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
    stamps: Iterable[datetime], interval: timedelta, listed: int = 100
) -> tuple[int, list[datetime]]:
    """How many slots `missing_slots` would yield, and the first `listed` of them.

    Counted per gap by arithmetic, in time and memory bounded by the number of stamps: one
    far-future name (`9999_12_31_23_45.txt`) beside today's must not mean listing millions
    of slots.
    """
    if interval <= timedelta(0):
        raise ValueError("interval must be positive")
    ordered = sorted(set(stamps))
    count = 0
    first: list[datetime] = []
    for earlier, later in itertools.pairwise(ordered):
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


def printable(name: str, limit: int = 120) -> str:
    """A safe, bounded rendering of an arbitrary directory entry name for logs."""
    text = ascii(name)[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."
