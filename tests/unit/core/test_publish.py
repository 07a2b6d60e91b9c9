"""--publish-in-order: the plan (pure), and a pass on a real directory, one killed half-way."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from builders import n

from ingestd.contracts.ledger import DONE, FAILED, Record
from ingestd.core.publishing.plan import Action, Marks, Step, plan
from ingestd.core.publishing.publisher import STAGING, Publisher, staging_dir
from ingestd.ledgers.file.marks import WATERMARK, FileMarks, read_marks
from ingestd.ledgers.memory import MemoryLedger
from ingestd.sources.memory import MemorySource

A0, A1, A2, A3 = (n("a", 15 * i) for i in range(4))

B0, B1 = n("b", 0), n("b", 15)


def statuses(done: set[str] = frozenset(), failed: set[str] = frozenset()) -> Any:  # type: ignore[assignment]
    return lambda name: DONE if name in done else FAILED if name in failed else None


def test_a_key_publishes_up_to_its_first_unfinished_file_and_skips_failed_ones() -> None:
    staged = {A0, A1, A3, B1}
    decided = plan(
        Marks(), staged, [A0, A1, A2, A3, B0, B1], staged, statuses({A0, A3, B1}, {A1, B0})
    )
    assert decided.steps == [
        Step(Action.PUBLISH, A0),
        Step(Action.DISCARD, A1),  # a failed attempt's outputs are never published
        Step(Action.SKIP, A1),
        # A2 is not finished: A3 waits, though it is done
        Step(Action.SKIP, B0),
        Step(Action.PUBLISH, B1),
    ]
    assert decided.marks.published == {"a": A1, "b": B1}
    assert decided.marks.skipped == {"a": [A1], "b": [B0]}
    assert not decided.again


def test_the_plan_goes_on_from_the_watermark_and_never_back() -> None:
    marks = Marks(published={"a": A1})
    decided = plan(marks, {A2, A3}, [A2, A3], {A2, A3}, statuses({A2, A3}))
    assert decided.steps == [Step(Action.PUBLISH, A2), Step(Action.PUBLISH, A3)]
    assert decided.marks.published == {"a": A3}
    assert marks.published == {"a": A1}  # the caller's marks are not changed
    nothing = plan(decided.marks, set(), [A0, A1], set(), statuses({A0, A1}))
    assert nothing.steps == [] and nothing.marks == decided.marks


def test_a_file_staged_during_the_pass_waits_for_the_next_one() -> None:
    # A1 was staged after the pass listed the staging area: an earlier file of its key may
    # have arrived after the source was listed, so this pass must not publish past it.
    decided = plan(Marks(), {A0}, [A0], {A0, A1}, statuses({A0, A1}))
    assert decided.steps == [Step(Action.PUBLISH, A0)]
    assert decided.marks.published == {"a": A0}
    assert decided.again
    assert plan(decided.marks, {A1}, [], {A1}, statuses({A0, A1})).steps == [
        Step(Action.PUBLISH, A1)
    ]


def test_a_late_file_is_published_out_of_order_and_a_stale_staging_is_discarded() -> None:
    marks = Marks(published={"a": A2}, skipped={"a": [A1]})
    decided = plan(marks, {A0, A1}, [A0, A1], {A0, A1}, statuses({A0, A1}))
    assert decided.steps == [Step(Action.LATE, A0), Step(Action.LATE, A1)]
    assert decided.marks.skipped == {"a": []}  # A1 failed once; retried and done now
    stale = plan(marks, {A0}, [], {A0}, statuses(failed={A0}))
    assert stale.steps == [Step(Action.DISCARD, A0)]
    assert stale.marks.skipped == {"a": [A1, A0]}


def test_the_watermark_file_round_trips_and_a_foreign_one_is_refused() -> None:
    marks = Marks(published={"": "2018_06_28_10_00.txt", "a": A1}, skipped={"a": [A0]})
    assert Marks.parse(marks.to_json("now")) == marks
    for bad in (b"{", b"[]", b'{"version": 9}', b'{"version": 1, "keys": {"a": {"published": 3}}}'):
        with pytest.raises(ValueError):
            Marks.parse(bad)


def test_the_source_lists_regular_data_files_only(tmp_path: Path) -> None:
    from ingestd.sources.local import LocalSource

    (tmp_path / A0).write_text("1")
    (tmp_path / A1).mkdir()  # never finishes: it must not hold its key's publishing
    (tmp_path / A2).symlink_to(tmp_path / A0)
    (tmp_path / "notes.txt").write_text("")
    assert LocalSource(tmp_path).names() == {A0}


def test_a_pass_gives_up_on_a_lock_a_stopped_peer_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    from ingestd.ledgers.file import marks as outputs

    out = tmp_path / "out"
    publisher = Publisher(out, MemorySource({A0: b""}), MemoryLedger(), FileMarks(out))
    publisher.prepare()
    monkeypatch.setattr(outputs, "LOCK_TIMEOUT", 0.1)
    with open(out / STAGING / ".lock", "w") as peer:
        fcntl.flock(peer, fcntl.LOCK_EX)  # a peer stopped in the middle of its pass
        with pytest.raises(TimeoutError, match="held by a peer"):
            publisher.run()
    assert publisher.run().steps == []  # and goes on once it is free


def test_metrics_count_publications_and_show_each_keys_watermark() -> None:
    from datetime import UTC, datetime

    from prometheus_client.parser import text_string_to_metric_families

    from ingestd.runtime.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    metrics.publishing(2, {"a": A1, "": "2018_06_28_10_00.txt"})
    metrics.publishing(1, {"a": A2, "": "2018_06_28_10_00.txt"})
    samples = {
        (s.name, s.labels.get("key")): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }
    assert samples[("ingestd_published_files_total", None)] == 3
    watermark = "ingestd_publish_watermark_timestamp_seconds"
    assert samples[(watermark, "a")] == datetime(2018, 6, 28, 0, 30, tzinfo=UTC).timestamp()
    assert samples[(watermark, "")] == datetime(2018, 6, 28, 10, 0, tzinfo=UTC).timestamp()


def finish(ledger: MemoryLedger, name: str, status: str = DONE) -> None:
    """Record `name` the way a worker does: claim, then commit."""
    record = Record(
        file=name, status=status, worker="w", host="h", pid=1, attempt=1,
        seen_at="s", started_at="s", finished_at="f",
    )  # fmt: skip
    ledger.commit(ledger.try_claim(name), record)


def stage(out: Path, name: str, text: str = "x") -> Path:
    path = staging_dir(out, name) / name.replace(".txt", ".out")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_pass_moves_staged_outputs_in_order_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    source, ledger = MemorySource({name: b"" for name in (A0, A1, A2, B0)}), MemoryLedger()
    publisher = Publisher(out, source, ledger, FileMarks(out))
    publisher.prepare()
    for name in (A0, A2, B0):
        stage(out, name)
    (staging_dir(out, A0) / ".a_2018_06_28_00_00.out.1234.tmp").write_text("")  # a dead writer's
    (out / STAGING / f".{WATERMARK}.5678.tmp").write_text("")  # a pass killed while writing
    finish(ledger, A0)
    finish(ledger, A2)
    finish(ledger, B0, FAILED)
    report = publisher.run()
    assert [(s.action, s.name) for s in report.steps] == [
        (Action.PUBLISH, A0), (Action.DISCARD, B0), (Action.SKIP, B0),
    ]  # fmt: skip
    assert sorted(os.listdir(out)) == [STAGING, WATERMARK, A0.replace(".txt", ".out")]
    assert read_marks(out) == Marks(published={"a": A0, "b": B0}, skipped={"b": [B0]})
    assert sorted(os.listdir(out / STAGING)) == [".lock", A2]  # waits for A1
    assert publisher.run().steps == [] and not publisher.run().moved
    finish(ledger, A1)  # no outputs of its own: the key moves past it
    report = publisher.run()
    assert [(s.action, s.name) for s in report.steps] == [(Action.PUBLISH, A2)]
    assert read_marks(out).published == {"a": A2, "b": B0}


def test_a_pass_killed_half_way_is_finished_by_the_next(tmp_path: Path) -> None:
    out = tmp_path / "out"
    source, ledger = MemorySource({A0: b"", A1: b""}), MemoryLedger()
    publisher = Publisher(out, source, ledger, FileMarks(out))
    publisher.prepare()
    first = stage(out, A0, "one")
    second = first.with_name("second.out")
    second.write_text("two")
    stage(out, A1)
    finish(ledger, A0)
    finish(ledger, A1)
    os.replace(first, out / first.name)  # what a pass killed after its first rename did
    report = publisher.run()
    assert [s.name for s in report.steps] == [A0, A1]
    assert (out / first.name).read_text() == "one" and (out / "second.out").read_text() == "two"
    assert read_marks(out).published == {"a": A1}


def test_files_this_worker_finished_and_moved_away_are_still_passed(tmp_path: Path) -> None:
    """--on-done/--on-failed take a finished file out of the source at once; the watermark
    must still reach it, and past a failed one, listed as skipped."""
    out = tmp_path / "out"
    source, ledger = MemorySource({A0: b"", A1: b"", A2: b""}), MemoryLedger()
    publisher = Publisher(out, source, ledger, FileMarks(out))
    publisher.prepare()
    finish(ledger, A0)
    finish(ledger, A1, FAILED)
    finish(ledger, A2)
    for name in (A0, A1, A2):
        source.remove(name)  # disposed of before any pass listed the source
    assert publisher.run().marks == Marks()  # unknown to this worker: nothing to pass
    publisher.note_finished([A0, A1, A2])
    assert publisher.run().marks == Marks(published={"a": A2}, skipped={"a": [A1]})
