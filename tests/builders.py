"""Small builders that a module's in-process tests and its process tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ingestd.contracts.ledger import Owner

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def owner(worker: str) -> Owner:
    return Owner(worker=worker, host="h", pid=1, claimed_at="")


def samples(text: str) -> dict[str, float]:
    """Every sample as `name{label=value}` -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def n(key: str, minute: int) -> str:
    """The name of `key`'s file at `minute` past midnight on the appendix day."""
    return f"{key}_2018_06_28_{minute // 60:02d}_{minute % 60:02d}.txt"


def rec(name: str, worker: str, seen: float, start: float, end: float, **extra: Any) -> dict:
    """A done record seen, started and finished that many seconds after T0."""

    def at(s: float) -> str:
        return (T0 + timedelta(seconds=s)).isoformat()

    times = {"seen_at": at(seen), "started_at": at(start), "finished_at": at(end)}
    return {"file": name, "status": "done", "worker": worker, "attempt": 1, **times, **extra}


def day(files: int, workers: int = 2) -> list[dict]:
    out = []
    for i in range(files):
        seen = i * 0.15
        out.append(rec(f"2018_06_28_{i // 4:02d}_{i % 4 * 15:02d}.txt", f"w{i % workers}",
                       seen, seen + 0.01, seen + 0.01 + 0.12 + (i % 7) * 0.03))  # fmt: skip
    return out
