"""The audit `verify` runs: duplicates, overlaps, invalid names, unfinished files, and per-worker
stats recomputed."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ingestd.commands.audit import Audit, _audit, audit_blocks
from ingestd.commands.audit import audit as audit_summaries
from ingestd.contracts.ledger import Stored, Summary, blocks_of
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


_NAMES = [A, B, C, "2018_06_28_00_45.txt", "2021_02_29_00_00.txt", "bogus.txt"]  # two invalid
_RECORDS = st.lists(
    st.fixed_dictionaries({
        "file": st.sampled_from(_NAMES),
        "status": st.sampled_from(["done", "done", "done", "failed", "retry", "redo"]),
        "worker": st.sampled_from(["a", "b"]),
        "minutes": st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
        "attempt": st.integers(0, 3),
        "started_at": st.just(T0),
        "finished_at": st.sampled_from([T0, T1]),
    }),
    max_size=40,
)  # fmt: skip


def _seen(result: Audit) -> tuple[Any, ...]:
    stats = {w: (s.count, s.total, s.sum_of_squares) for w, s in result.per_worker.items()}
    return (result.summary(), sorted(result.done), sorted(result.failed), result.redone,
            result.last_done_at, sorted(result.invalid_names), result.unfinished,
            stats)  # fmt: skip


@given(_RECORDS, st.integers(1, 7))
def test_blocks_folded_whole_read_as_record_by_record(
    records: list[dict[str, Any]], size: int
) -> None:
    """The fast ways (a block of new done files folded at once, names checked after the
    pass and the records read again when one is invalid) find what a record-by-record pass
    does, asking each name as it goes."""
    stored = [s for s in map(Stored.from_dict, records) if s is not None]
    summaries = [Summary.of(s) for s in stored]
    present = [A, "2018_06_28_01_00.txt"]
    one_by_one = audit_summaries(summaries, present, full=stored)  # each name asked
    blocks = audit_blocks(lambda: blocks_of(summaries, size), present, full=stored)
    assert _seen(blocks) == _seen(one_by_one)
    slow, _ = _audit(blocks_of(summaries, size), present, None, stored, None, fast=False)
    assert _seen(slow) == _seen(one_by_one)
