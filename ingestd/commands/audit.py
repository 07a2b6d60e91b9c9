"""Pure: audit a manifest's records against the files present (`ingestd verify`).

Violations: a file with more than one `done` record; a file done by two workers whose
processing intervals overlap; a record for a name that is not a valid data-file name; a data
file present in DIR that is neither done nor failed. Per-worker totals are recomputed exactly
as the stats log computes them (same order, same running moments).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingestd.contracts.ledger import (
    DONE,
    FAILED,
    REDO,
    RETRY,
    Stored,
    Summary,
    SummaryBlock,
    blocks_of,
)
from ingestd.contracts.naming import invalid_names, is_data_name, oldest_first
from ingestd.runtime.stats import RunningStats

Summaries = Iterable[Summary] | Callable[[], Iterable[Summary]]
Records = Iterable[Stored] | Callable[[], Iterable[Stored]]


@dataclass
class Audit:
    """What one pass over the records found. Kept small (a name per done file, the standing
    record of failed files only): a million records must not cost a record dict each."""

    records: int = 0
    done: set[str] = field(default_factory=set)
    failed: dict[str, Summary] = field(default_factory=dict)
    duplicates: dict[str, list[Stored]] = field(default_factory=dict)
    overlaps: list[tuple[str, str, str]] = field(default_factory=list)  # file, worker a, worker b
    invalid_names: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    per_worker: dict[str, RunningStats] = field(default_factory=dict)
    expected: int | None = None
    redone: int = 0  # files whose standing done record is not their first attempt
    last_done_at: datetime | None = None  # the newest standing done record's finished_at

    def violations(self) -> list[str]:
        found = [
            f"duplicate done records: {name} ({len(rs)})" for name, rs in self.duplicates.items()
        ]
        found += [f"overlapping work on {f} by {a} and {b}" for f, a, b in self.overlaps]
        found += [f"record for an invalid name: {name!r}" for name in self.invalid_names]
        found += [f"not done nor failed: {name}" for name in self.unfinished]
        if self.expected is not None and len(self.done) != self.expected:
            found.append(f"expected {self.expected} done files, found {len(self.done)}")
        return found

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "done": len(self.done),
            "failed": len(self.failed),
            "duplicates": len(self.duplicates),
            "overlaps": len(self.overlaps),
            "invalid_names": len(self.invalid_names),
            "unfinished": len(self.unfinished),
            "workers": {w: s.fields() for w, s in sorted(self.per_worker.items())},
            "violations": self.violations(),
        }


def _interval(record: Stored) -> tuple[datetime, datetime] | None:
    if record.started_at is None or record.finished_at is None:
        return None
    try:
        return (
            datetime.fromisoformat(record.started_at),
            datetime.fromisoformat(record.finished_at),
        )
    except ValueError:
        return None


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def audit(
    records: Summaries,
    present: Iterable[str] = (),
    expected: int | None = None,
    full: Records | None = None,
) -> Audit:
    """Audit the records' summaries (see `audit_blocks`)."""
    if callable(records):
        given = records
        return audit_blocks(lambda: blocks_of(given()), present, expected, full)
    return _audit(blocks_of(records), present, expected, full, None)[0]


def audit_blocks(
    blocks: Callable[[], Iterable[SummaryBlock]],
    present: Iterable[str] = (),
    expected: int | None = None,
    full: Records | None = None,
) -> Audit:
    """Audit the records, streamed in blocks (`blocks` gives them anew for a second pass). A
    second pass over `full` (whole records, a callable giving them anew or a list) collects
    the done records of the rare files done more than once, for their overlaps, instead of
    keeping every record.

    The names are checked all at once after the pass (one regex pass over a million names,
    not a call each); only if one is not a data-file name are the records read again, with
    those names known."""
    first, others = _audit(blocks(), present, expected, full, _UNCHECKED)
    bad = invalid_names([*first.done, *others])
    if not bad:
        return first
    return _audit(blocks(), present, expected, full, frozenset(bad))[0]


_UNCHECKED: frozenset[str] = frozenset()


def _audit(
    blocks: Iterable[SummaryBlock],
    present: Iterable[str],
    expected: int | None,
    full: Records | None,
    invalid: frozenset[str] | None,
    fast: bool = True,
) -> tuple[Audit, set[str]]:
    """One pass. `invalid`: the names known not to be data-file names (None: ask of each
    name; `_UNCHECKED`: take every name). With the audit, the names of the records that
    are not done (unchecked only; the done ones are the audit's), for the caller to check.
    `fast`: a block of done records of files not seen before is folded as a whole (the
    common case, and the same result as record by record)."""
    again = full if callable(full) else (lambda: full or ())
    result = Audit(expected=expected)
    fold = _Fold(result, invalid)
    for block in blocks:
        result.records += len(block.files)
        if not (fast and invalid is _UNCHECKED and fold.whole(block)):
            fold.each(block)
    if fold.last_done is not None:
        result.last_done_at = _moment(fold.last_done)
    if fold.doubled:
        doubled = fold.doubled
        for stored in again():
            if stored.status == DONE and stored.file in doubled:
                result.duplicates.setdefault(stored.file, []).append(stored)
        _overlaps(result)
    result.unfinished = [n for n in oldest_first(present) if n not in result.done]
    result.unfinished = [n for n in result.unfinished if n not in result.failed]
    return result, fold.others


class _Fold:
    """The audit's state between blocks, and the two ways a block is folded into it."""

    def __init__(self, result: Audit, invalid: frozenset[str] | None) -> None:
        self.result = result
        self.invalid = invalid
        self.doubled: set[str] = set()
        self.last_done: str | None = None
        self.others: set[str] = set()  # unchecked: names of records that are not done

    def _stats(self, worker: str) -> RunningStats:
        per_worker = self.result.per_worker
        stats = per_worker.get(worker)  # not setdefault: no object per record
        if stats is None:
            stats = per_worker[worker] = RunningStats()
        return stats

    def whole(self, block: SummaryBlock) -> bool:
        """Fold a block of done records of files not seen before, all at once (C loops
        over its columns); False, and nothing folded, for any other block."""
        result, files = self.result, block.files
        count = len(files)
        if block.statuses.count(DONE) != count:
            return False
        names = set(files)
        if len(names) != count or not names.isdisjoint(result.done):
            return False
        result.done.update(names)
        if result.failed:
            for name in files:
                result.failed.pop(name, None)
        result.redone += sum(1 for attempt in block.attempts if attempt is not None and attempt > 1)
        newest = max(filter(None, block.finished), default=None)
        if newest is not None and (self.last_done is None or newest > self.last_done):
            self.last_done = newest
        workers, minutes = block.workers, block.minutes
        if workers.count(workers[0]) == count and None not in minutes:
            self._stats(str(workers[0])).add_many(list(map(float, minutes)))  # type: ignore[arg-type]
        else:
            for worker, value in zip(workers, minutes, strict=True):
                if value is not None:
                    self._stats(str(worker)).add(float(value))
        return True

    def each(self, block: SummaryBlock) -> None:
        """Fold a block record by record."""
        result, invalid = self.result, self.invalid
        unchecked = invalid is _UNCHECKED
        for record in block.summaries():
            name, status = record.file, record.status
            if unchecked:
                if status != DONE:
                    self.others.add(name)
            elif name in invalid if invalid is not None else not is_data_name(name):
                result.invalid_names.append(name)
                continue
            if status == DONE:
                if name in result.done:
                    self.doubled.add(name)
                else:
                    result.done.add(name)
                    result.failed.pop(name, None)
                    if (record.attempt or 1) > 1:
                        result.redone += 1
                    finished = record.finished_at
                    if finished is not None and (
                        self.last_done is None or finished > self.last_done
                    ):
                        self.last_done = finished
                if record.minutes is not None:
                    self._stats(str(record.worker)).add(float(record.minutes))
            elif status == FAILED and name not in result.done:
                result.failed[name] = record
            elif status == RETRY:
                result.failed.pop(name, None)
            elif status == REDO:
                # An operator reopened a done file (its content changed): the next done
                # record is its own, not a duplicate of the one before.
                result.done.discard(name)
                result.failed.pop(name, None)


def _overlaps(result: Audit) -> None:
    for name, done in result.duplicates.items():
        for i, first in enumerate(done):
            for second in done[i + 1 :]:
                a, b = _interval(first), _interval(second)
                if a and b and (a == b or (a[0] < b[1] and b[0] < a[1])):
                    result.overlaps.append((name, str(first.worker), str(second.worker)))
