"""Records read back typed: what a ledger stored, with a field of the wrong type read as
missing, and only what is set written out again."""

from __future__ import annotations

from ingestd.contracts.ledger import Record, Stored, Summary, standing_failed

A = "2018_06_28_00_00.txt"


def test_a_record_comes_back_as_it_was_written() -> None:
    record = Record(file=A, status="done", worker="w", host="h", pid=7, attempt=2,
                    seen_at="s", started_at="b", finished_at="e", minutes=1.5, size=3,
                    sha256="ab", outputs=("out/x",), records=4, version="v")  # fmt: skip
    stored = Stored.from_dict(record.to_dict())
    assert stored is not None
    assert (stored.file, stored.attempt, stored.outputs, stored.minutes) == (A, 2, ("out/x",), 1.5)
    assert stored.to_dict() == {k: v for k, v in record.to_dict().items() if v is not None}
    assert Summary.of(stored) == Summary(A, "done", "w", 2, 1.5, "e")


def test_a_hand_edited_field_is_read_as_missing_and_no_file_is_no_record() -> None:
    stored = Stored.from_dict({"file": A, "status": "done", "attempt": "2", "minutes": True,
                               "outputs": [1], "pid": 3, "extra": "x"})  # fmt: skip
    assert stored == Stored(A, "done", pid=3)
    assert Stored.from_dict({"status": "done"}) is None
    assert Stored.from_dict({"file": A, "status": None}) is None
    assert Stored.from_dict({"file": A, "status": "done", "minutes": 2}).minutes == 2.0  # type: ignore[union-attr]


def test_the_standing_failure_is_the_last_unless_done_came_first() -> None:
    failed = Stored(A, "failed", error="one")
    again = Stored(A, "failed", error="two")
    assert standing_failed([failed, again]) == {A: again}
    assert standing_failed([failed, Stored(A, "retry")]) == {}
    assert standing_failed([Stored(A, "done"), failed]) == {}  # done is final
    assert standing_failed([Stored(A, "done"), Stored(A, "redo"), failed]) == {A: failed}
