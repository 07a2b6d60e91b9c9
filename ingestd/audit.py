"""Pure: audit a manifest's records against the files present (`ingestd verify`).

Violations: a file with more than one `done` record; a file done by two workers whose
processing intervals overlap; a record for a name that is not a valid data-file name; a data
file present in DIR that is neither done nor failed. Per-worker totals are recomputed exactly
as the stats log computes them (same order, same running moments).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .ledger import DONE, FAILED, RETRY
from .naming import is_data_name, oldest_first
from .stats import RunningStats


@dataclass
class Audit:
    records: int = 0
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    overlaps: list[tuple[str, str, str]] = field(default_factory=list)  # file, worker a, worker b
    invalid_names: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    per_worker: dict[str, RunningStats] = field(default_factory=dict)
    expected: int | None = None

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


def _interval(record: dict[str, Any]) -> tuple[datetime, datetime] | None:
    try:
        return (
            datetime.fromisoformat(record["started_at"]),
            datetime.fromisoformat(record["finished_at"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def audit(
    records: Iterable[dict[str, Any]], present: Iterable[str] = (), expected: int | None = None
) -> Audit:
    result = Audit(expected=expected)
    done_by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        result.records += 1
        name, status = record["file"], record["status"]
        if not is_data_name(name):
            result.invalid_names.append(name)
            continue
        if status == DONE:
            done_by[name].append(record)
            result.done.setdefault(name, record)
            result.failed.pop(name, None)
            minutes = record.get("minutes")
            if isinstance(minutes, int | float):
                worker = str(record.get("worker"))
                result.per_worker.setdefault(worker, RunningStats()).add(float(minutes))
        elif status == FAILED and name not in result.done:
            result.failed[name] = record
        elif status == RETRY:
            result.failed.pop(name, None)
    for name, done in done_by.items():
        if len(done) > 1:
            result.duplicates[name] = done
            for i, first in enumerate(done):
                for second in done[i + 1 :]:
                    a, b = _interval(first), _interval(second)
                    if a and b and (a == b or (a[0] < b[1] and b[0] < a[1])):
                        result.overlaps.append((name, first["worker"], second["worker"]))
    finished = result.done.keys() | result.failed.keys()
    result.unfinished = [n for n in oldest_first(present) if n not in finished]
    return result
