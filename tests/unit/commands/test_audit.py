"""The audit `verify` runs: duplicates, overlaps, invalid names, unfinished files, and per-worker
stats recomputed."""

from typing import Any

from ingestd.commands.audit import Audit
from ingestd.commands.audit import audit as audit_summaries
from ingestd.contracts.ledger import Stored, Summary
from ingestd.runtime.stats import RunningStats

T0, T1 = "2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00"


def rec(
    name: str, status: str = "done", worker: str = "a", minutes: float = 1.0, start: str = T0,
    end: str = T1,
) -> dict[str, Any]:  # fmt: skip
    return {"file": name, "status": status, "worker": worker, "minutes": minutes,
            "started_at": start, "finished_at": end}  # fmt: skip


def audit(records: list[dict[str, Any]], **kw: Any) -> Audit:
    """The audit of these records as a ledger reads them back: summaries, then whole ones."""
    stored = [s for s in map(Stored.from_dict, records) if s is not None]
    return audit_summaries([Summary.of(s) for s in stored], full=stored, **kw)


A, B, C = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "2018_06_28_00_30.txt"


def test_clean_manifest_has_no_violations() -> None:
    result = audit([rec(A), rec(B, worker="b"), rec(C, "failed")], present=[A, B, C], expected=2)
    assert result.violations() == []
    assert set(result.per_worker) == {"a", "b"}


def test_duplicates_and_overlaps_are_caught() -> None:
    result = audit(
        [
            rec(A, worker="a"),
            rec(A, worker="b", start="2026-01-01T00:00:30+00:00", end="2026-01-01T00:02:00+00:00"),
            rec(B, worker="a"),
            rec(B, worker="b", start="2026-01-01T00:05:00+00:00", end="2026-01-01T00:06:00+00:00"),
        ]
    )
    assert set(result.duplicates) == {A, B}
    assert result.overlaps == [(A, "a", "b")]
    assert len(result.violations()) == 3


def test_unfinished_invalid_and_expected_count() -> None:
    result = audit([rec(A), rec("bogus.txt")], present=[A, B, "notes.md"], expected=5)
    violations = result.violations()
    assert "not done nor failed: " + B in violations
    assert any("invalid name" in v for v in violations)
    assert any("expected 5" in v for v in violations)


def test_per_worker_stats_match_the_running_stats() -> None:
    minutes = [5, 6, 7, 8, 9]
    names = [f"2018_06_28_01_{i:02d}.txt" for i in range(5)]
    result = audit([rec(n, minutes=m) for n, m in zip(names, minutes, strict=True)])
    expected = RunningStats()
    for m in minutes:
        expected.add(m)
    assert result.per_worker["a"].fields() == expected.fields()
    assert result.per_worker["a"].sum_of_squares == 30


def test_retry_reopens_a_failed_file() -> None:
    result = audit([rec(A, "failed"), rec(A, "retry")], present=[A])
    assert A not in result.failed
    assert result.unfinished == [A]


def test_a_done_record_after_an_operators_redo_is_no_duplicate() -> None:
    redo = {"file": A, "status": "redo", "worker": "op"}
    result = audit([rec(A), redo, rec(A, worker="b")], present=[A], expected=1)
    assert result.violations() == [] and result.duplicates == {}
    reopened = audit([rec(A), redo], present=[A])
    assert reopened.unfinished == [A]  # reopened, not yet done again
