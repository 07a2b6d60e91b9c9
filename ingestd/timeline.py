"""Pure: the schedule a run followed, from its records, beside the ideal FIFO schedule.

Each file's final record gives when it was first seen (its arrival), when its last attempt
started and finished, and who ran it. The ideal is the textbook FIFO schedule of the same
arrivals and durations on as many machines as there were workers: each file, in arrival order,
starts on the first machine free, as soon as it has arrived. Times are seconds since the first
arrival. `plot.py` draws it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .ledger import DONE, FAILED


@dataclass(frozen=True)
class Bar:
    file: str
    lane: int
    start: float
    end: float
    arrival: float
    status: str = DONE
    redone: bool = False  # done after an earlier attempt died or crashed

    @property
    def latency(self) -> float:
        return self.end - self.arrival


@dataclass
class Timeline:
    lanes: list[str] = field(default_factory=list)  # worker ids, in order of first work
    actual: list[Bar] = field(default_factory=list)
    ideal: list[Bar] = field(default_factory=list)
    origin: datetime | None = None  # the first arrival

    @property
    def arrivals(self) -> list[float]:
        return sorted(bar.arrival for bar in self.actual)

    @staticmethod
    def makespan(bars: list[Bar]) -> float:
        """First arrival to last finish."""
        if not bars:
            return 0.0
        return max(b.end for b in bars) - min(b.arrival for b in bars)

    @staticmethod
    def mean_latency(bars: list[Bar]) -> float:
        return sum(b.latency for b in bars) / len(bars) if bars else 0.0


def _when(record: dict[str, Any], key: str) -> datetime | None:
    try:
        return datetime.fromisoformat(str(record[key]))
    except (KeyError, ValueError):
        return None


def final_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each file's record that stands: its first done one, else its last failed one."""
    final: dict[str, dict[str, Any]] = {}
    for record in records:
        status, name = record.get("status"), record.get("file")
        if not isinstance(name, str) or status not in (DONE, FAILED):
            continue
        if final.get(name, {}).get("status") != DONE:
            final[name] = record
    return list(final.values())


def build(records: Iterable[dict[str, Any]], machines: int | None = None) -> Timeline:
    """The run's timeline from its records; the ideal on `machines` (default: its workers)."""
    rows = []
    for record in final_records(records):
        seen, start, end = (_when(record, k) for k in ("seen_at", "started_at", "finished_at"))
        if seen is None or start is None or end is None:
            continue  # a hand-edited or foreign record: nothing to draw
        rows.append((min(seen, start), start, end, record))
    timeline = Timeline()
    if not rows:
        return timeline
    rows.sort(key=lambda row: (row[1], row[3]["file"]))
    origin = min(row[0] for row in rows)
    timeline.origin = origin
    for seen, start, end, record in rows:
        worker = str(record.get("worker"))
        if worker not in timeline.lanes:
            timeline.lanes.append(worker)
        timeline.actual.append(
            Bar(
                file=record["file"],
                lane=timeline.lanes.index(worker),
                start=(start - origin).total_seconds(),
                end=(end - origin).total_seconds(),
                arrival=(seen - origin).total_seconds(),
                status=record["status"],
                redone=int(record.get("attempt") or 1) > 1,
            )
        )
    timeline.ideal = ideal_fifo(timeline.actual, machines or len(timeline.lanes))
    return timeline


def ideal_fifo(bars: list[Bar], machines: int) -> list[Bar]:
    """The same arrivals and durations, FIFO on `machines`: the schedule to compare with."""
    free = [(0.0, lane) for lane in range(max(machines, 1))]
    ideal = []
    for bar in sorted(bars, key=lambda b: (b.arrival, b.file)):
        free_at, lane = heapq.heappop(free)
        start = max(free_at, bar.arrival)
        end = start + (bar.end - bar.start)
        heapq.heappush(free, (end, lane))
        ideal.append(Bar(bar.file, lane, start, end, bar.arrival, bar.status, bar.redone))
    return ideal
