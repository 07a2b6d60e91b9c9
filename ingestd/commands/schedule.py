"""Pure: the schedule a run followed, from its records, beside the ideal FIFO schedule.

Each file's final record gives when it was first seen (its arrival), when its last attempt
started and finished, and who ran it. The ideal is the textbook FIFO schedule of the same
arrivals and durations on as many machines as there were workers: each file, in arrival order,
starts on the first machine free, as soon as it has arrived. Times are seconds since the first
arrival. `plot.py` draws it.

Lanes are the workers in name order. When the run's records show a steady number of wall
seconds per simulated minute (the simulation's `--seconds-in-min`: each file's duration over
its `minutes`), times are given in simulated minutes, and the picture says so.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingestd.contracts.ledger import DONE, FAILED, REDO, Stored


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
    lanes: list[str] = field(default_factory=list)  # worker ids, in name order
    actual: list[Bar] = field(default_factory=list)
    ideal: list[Bar] = field(default_factory=list)
    origin: datetime | None = None  # the first arrival
    # Wall seconds per simulated minute, when the records show a steady one: times are then
    # in simulated minutes. None: times are seconds.
    seconds_per_minute: float | None = None
    machine_count: int = 0  # the ideal schedule's machines

    @property
    def unit(self) -> str:
        if self.seconds_per_minute is None:
            return "s"
        return "simulated min"

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


@dataclass(frozen=True)
class Run:
    """What the picture needs of a file's standing record: small, one per file (a record
    dict per file cost gigabytes at a million records)."""

    file: str
    status: str
    worker: str
    seen: float  # epoch seconds
    start: float
    end: float
    attempt: int
    minutes: float | None


def _epoch(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _aware(moment).timestamp()


def _run(record: Stored) -> Run | None:
    seen, start, end = (_epoch(t) for t in (record.seen_at, record.started_at, record.finished_at))
    if seen is None or start is None or end is None:
        return None  # a hand-edited or foreign record: nothing to draw
    return Run(
        file=record.file,
        status=record.status,
        worker=str(record.worker),
        seen=seen,
        start=start,
        end=end,
        attempt=record.attempt or 1,
        minutes=record.minutes,
    )


def final_runs(records: Iterable[Stored], since: float | None = None) -> list[Run]:
    """Each file's standing record (its first done one, else its last failed one; what
    follows an operator's `redo`), as a `Run`, for files finished at or after `since`."""
    final: dict[str, Run | bool] = {}  # False: not drawn; True: done before `since`
    for record in records:
        status, name = record.status, record.file
        if status == REDO:
            final.pop(name, None)  # reopened: what comes after it stands
        if status not in (DONE, FAILED):
            continue
        standing = final.get(name)
        if standing is True or (isinstance(standing, Run) and standing.status == DONE):
            continue
        if since is not None and (_epoch(record.finished_at) or 0.0) < since:
            final[name] = status == DONE  # outside the window: a flag, not a run
            continue
        final[name] = _run(record) or False
    return [run for run in final.values() if isinstance(run, Run)]


def build(
    records: Iterable[Stored],
    machines: int | None = None,
    since: datetime | None = None,
) -> Timeline:
    """The run's timeline from its records (those finished at or after `since`); the ideal
    on `machines` (default: its workers)."""
    runs = final_runs(records, None if since is None else _aware(since).timestamp())
    timeline = Timeline()
    if not runs:
        return timeline
    origin = min(min(run.seen, run.start) for run in runs)
    timeline.origin = datetime.fromtimestamp(origin, UTC)
    timeline.lanes = sorted({run.worker for run in runs})
    lane_of = {worker: index for index, worker in enumerate(timeline.lanes)}
    scale = steady_seconds_per_minute(runs)
    timeline.seconds_per_minute = scale
    per = 1.0 if scale is None else scale  # wall seconds per drawn unit
    runs.sort(key=lambda run: (run.start, run.file))
    timeline.actual = [
        Bar(
            file=run.file,
            lane=lane_of[run.worker],
            start=(run.start - origin) / per,
            end=(run.end - origin) / per,
            arrival=(min(run.seen, run.start) - origin) / per,
            status=run.status,
            redone=run.attempt > 1,
        )
        for run in runs
    ]
    timeline.machine_count = machines or len(timeline.lanes)
    timeline.ideal = ideal_fifo(timeline.actual, timeline.machine_count)
    return timeline


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def steady_seconds_per_minute(runs: list[Run]) -> float | None:
    """The wall seconds per simulated minute the done files show, when they agree (within
    10% of their median: a simulation with `--seconds-in-min`); None otherwise."""
    ratios = sorted(
        (run.end - run.start) / run.minutes
        for run in runs
        if run.status == DONE and run.minutes is not None and run.minutes > 0
    )
    if len(ratios) < 2:
        return None
    median = ratios[len(ratios) // 2]
    if median <= 0:
        return None
    steady = sum(1 for r in ratios if abs(r - median) <= 0.1 * median + 0.005)
    return round(median, 4) if steady >= 0.9 * len(ratios) else None


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
