"""What every ledger promises (ingestd/ledger.py says it), one suite run against each of them.

A backend here is a factory of ledgers sharing one store (each ledger is one worker's view),
an inspector of that store, a way to take a claim away from its holder without it knowing
(an expired lease), and a peer elsewhere that holds a file and then dies: a real process
killed with SIGKILL where the backend can be shared by processes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from ingestd.contracts.ledger import (
    ALREADY_FINISHED,
    BUSY,
    Busy,
    Heartbeat,
    Inspector,
    Ledger,
    Owner,
    Record,
    RetryRequest,
    Summary,
)
from ingestd.core.processor import Processor
from ingestd.core.recording import Result
from ingestd.handlers import Job, Outcome
from ingestd.ledgers.file import FileInspector, FileLedger
from ingestd.ledgers.grouping import GroupCommit
from ingestd.ledgers.memory import MemoryInspector, MemoryLedger, MemoryStore
from ingestd.runtime.settings import Settings
from ingestd.sources.memory import MemorySource

A, B, C = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "2018_06_28_00_30.txt"


class Peer:
    """A worker elsewhere holding one file; `kill` makes it die without a word."""

    def __init__(self, kill: Callable[[], None]) -> None:
        self.kill = kill


@dataclass
class Backend:
    name: str
    make: Callable[[], Ledger]
    inspector: Callable[[], Inspector]
    steal: Callable[[str], None]  # the holder loses its claim and does not know it
    peer_holding: Callable[[str, str], Peer]  # (file, worker id) -> a live holder elsewhere
    # The claim is gone as if never made (a database crash lost it); None: as `steal`.
    vanish: Callable[[str], None] | None = None
    # A ledger's group commit, where it has one: holding its writer makes commits queue.
    writer: Callable[[Ledger], GroupCommit[Any]] | None = None


PEER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ingestd.contracts.ledger import Owner
    from ingestd.ledgers.file import FileLedger
    ledger = FileLedger(Path(sys.argv[1]))
    hold = ledger.try_claim(sys.argv[2])
    hold.begin(Owner(sys.argv[3], "elsewhere", 1, ""))
    print("held", flush=True)
    time.sleep(60)
    """
)


def file_backend(tmp_path: Path) -> Iterator[Backend]:
    state = tmp_path / "state"
    FileLedger(state).prepare()
    ledgers: list[FileLedger] = []
    peers: list[subprocess.Popen[str]] = []

    def make() -> Ledger:
        ledgers.append(FileLedger(state))
        return ledgers[-1]

    def steal(name: str) -> None:
        (state / "locks" / f"{name}.lock").unlink()  # the path now names no one's lock

    def peer_holding(name: str, worker: str) -> Peer:
        popen = subprocess.Popen(
            [sys.executable, "-c", PEER, str(state), name, worker],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        peers.append(popen)
        assert popen.stdout is not None and popen.stdout.readline().strip() == "held"

        def kill() -> None:
            popen.send_signal(signal.SIGKILL)
            popen.wait(timeout=10)
            popen.stdout.close()  # type: ignore[union-attr]

        return Peer(kill)

    def writer(ledger: Ledger) -> GroupCommit[Any]:
        assert isinstance(ledger, FileLedger)
        return ledger.manifest._group

    yield Backend("file", make, lambda: FileInspector(state), steal, peer_holding, None, writer)
    for popen in peers:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
        if popen.stdout is not None:
            popen.stdout.close()
    for ledger in ledgers:
        ledger.close()


def memory_backend(tmp_path: Path) -> Iterator[Backend]:
    store = MemoryStore()

    def peer_holding(name: str, worker: str) -> Peer:
        ledger = MemoryLedger(store)
        ledger.try_claim(name).begin(Owner(worker, "elsewhere", 1, ""))
        return Peer(ledger.crash)

    yield Backend(
        "memory", lambda: MemoryLedger(store), lambda: MemoryInspector(store), store.lose,
        peer_holding,
    )  # fmt: skip


PG_PEER = textwrap.dedent(
    """
    import sys, time
    from ingestd.contracts.ledger import Owner
    from ingestd.ledgers.postgres import PostgresLedger
    ledger = PostgresLedger(sys.argv[1], "ingestd", sys.argv[3], source="contract")
    ledger.prepare()
    ledger.try_claim(sys.argv[2]).begin(Owner(sys.argv[3], "elsewhere", 1, ""))
    print("held", flush=True)
    time.sleep(60)
    """
)


def postgres_backend(tmp_path: Path, url: str) -> Iterator[Backend]:
    from ingestd.ledgers.postgres import RESTART_GRACE, PostgresInspector, PostgresLedger

    ledgers: list[PostgresLedger] = []
    peers: list[subprocess.Popen[str]] = []
    ids = iter(range(1000))

    def make() -> Ledger:
        ledgers.append(PostgresLedger(url, "ingestd", f"worker-{next(ids)}", source="contract"))
        ledgers[-1].prepare()
        return ledgers[-1]

    inspector = PostgresInspector(url, "ingestd", source="contract")

    def steal(name: str) -> None:
        # A peer took it over after our lease ran out: the token moved on.
        inspector._run("UPDATE ingestd.claims SET token = token + 1, holder = NULL "
                       "WHERE file = %s", (name,))  # fmt: skip

    def peer_holding(name: str, worker: str) -> Peer:
        popen = subprocess.Popen(
            [sys.executable, "-c", PG_PEER, url, name, worker], stdout=subprocess.PIPE, text=True
        )
        peers.append(popen)
        assert popen.stdout is not None and popen.stdout.readline().strip() == "held"

        def kill() -> None:
            popen.send_signal(signal.SIGKILL)
            popen.wait(timeout=10)
            popen.stdout.close()  # type: ignore[union-attr]
            # A server that has just started gives holders a grace to take their locks again.
            while inspector._run(
                "SELECT now() - pg_postmaster_start_time() < make_interval(secs => %s)",
                (RESTART_GRACE + 1,),
            )[0][0]:
                time.sleep(0.2)
            # The server notices the dead session at its next read of the socket.
            for _ in range(100):
                alive = inspector._run(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'ingestd-ledger' AND pid IN (SELECT pid FROM pg_locks WHERE locktype = "
                    "'advisory' AND objid = hashtext(%s)::oid)",
                    (f"contract {worker}",),
                )
                if alive[0][0] == 0:
                    return
                time.sleep(0.05)

        return Peer(kill)

    def vanish(name: str) -> None:
        inspector._run("DELETE FROM ingestd.claims WHERE file = %s", (name,))

    def writer(ledger: Ledger) -> GroupCommit[Any]:
        assert isinstance(ledger, PostgresLedger)
        return ledger._group

    yield Backend("postgresql", make, lambda: inspector, steal, peer_holding, vanish, writer)
    for popen in peers:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
        if popen.stdout is not None:
            popen.stdout.close()
    for ledger in [*ledgers, inspector._ledger]:
        ledger.close()


BACKENDS = {"file": file_backend, "memory": memory_backend, "postgresql": postgres_backend}


@pytest.fixture(
    params=[
        pytest.param("postgresql", marks=[pytest.mark.server, pytest.mark.postgres]),
        "file",
        "memory",
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "postgresql":
        yield from postgres_backend(tmp_path, request.getfixturevalue("pg").url)
    else:
        yield from BACKENDS[request.param](tmp_path)


def owner(worker: str) -> Owner:
    return Owner(worker=worker, host="h", pid=1, claimed_at="2018-06-28T00:00:00+00:00")


def record(name: str, worker: str, attempt: int = 1, status: str = "done") -> Record:
    return Record(
        file=name, status=status, worker=worker, host="h", pid=1, attempt=attempt,
        seen_at="s", started_at="s", finished_at="f", minutes=1.0,
        error="why" if status == "failed" else None,
    )  # fmt: skip


def test_one_holder_at_a_time_and_free_again_after_finish(backend: Backend) -> None:
    a, b = backend.make(), backend.make()
    hold = a.try_claim(A)
    for ledger in (a, b):  # other tasks of this worker, and other workers
        with pytest.raises(Busy):
            ledger.try_claim(A)
    b.try_claim(B).finish()  # other files are free
    hold.finish()
    b.try_claim(A).finish()


def test_claim_first_passes_over_held_files_in_order(backend: Backend) -> None:
    a, b = backend.make(), backend.make()
    held = a.try_claim(A)
    passed, hold = b.claim_first([A, B, C])
    assert passed == [(A, BUSY)]  # C is not tried: B was won first
    assert hold is not None and hold.name == B
    assert b.claim_first([A, B]) == ([(A, BUSY), (B, BUSY)], None)  # held by a, and by b
    hold.finish()
    held.finish()


def test_claim_first_after_a_peer_finished_the_file(backend: Backend) -> None:
    """A file a peer finished since this worker last looked is never worked on twice: passed
    over, or held with the view already saying it is finished (the claim protocol then lets
    it go). Either way the view is current as of the claim."""
    a, b = backend.make(), backend.make()
    b.sync()
    hold = a.try_claim(A)
    hold.begin(owner("a"))
    assert a.commit(hold, record(A, "a"))
    passed, won = b.claim_first([A, B])
    assert won is not None
    if won.name == A:
        assert passed == []
        if not won.fresh:
            b.sync()
        won.finish()
    else:
        assert passed == [(A, ALREADY_FINISHED)] and won.name == B
        won.finish()
    assert b.is_done(A)


def test_the_owner_an_attempt_begins_with_is_what_the_next_holder_reads(backend: Backend) -> None:
    """Whether `begin` writes it or the claim already did (the PostgreSQL ledger writes its
    own worker's owner while claiming), the owner and its attempt are the same."""
    a, b = backend.make(), backend.make()
    me = Owner(worker=getattr(a, "worker", "a"), host=socket.gethostname(), pid=os.getpid(),
               claimed_at="2018-06-28T00:00:00+00:00")  # fmt: skip
    hold = a.try_claim(A)
    assert hold.begin(me) == 1
    held, now = backend.inspector().claim(A)
    assert held and now is not None
    assert (now.worker, now.host, now.pid, now.attempt) == (me.worker, me.host, me.pid, 1)
    hold.release("RuntimeError: boom")  # a crash: the attempt stays spent
    again = b.try_claim(A)
    previous = again.previous_owner
    assert previous is not None and (previous.worker, previous.attempt) == (me.worker, 1)
    assert previous.error == "RuntimeError: boom"
    assert again.begin(owner("b")) == 2
    again.finish()


def test_a_live_peer_excludes_and_a_dead_ones_file_is_taken_over(backend: Backend) -> None:
    peer = backend.peer_holding(A, "doomed")
    ledger = backend.make()
    with pytest.raises(Busy):
        ledger.try_claim(A)
    peer.kill()
    hold = ledger.try_claim(A)
    assert hold.previous_owner is not None and hold.previous_owner.worker == "doomed"
    assert hold.begin(owner("heir")) == 2  # the dead worker's attempt counts
    hold.finish()


def test_giving_back_without_spending_keeps_the_count(backend: Backend) -> None:
    backend.peer_holding(A, "doomed").kill()  # attempt 1 spent by a death
    a, b = backend.make(), backend.make()
    hold = a.try_claim(A)
    assert hold.begin(owner("a")) == 2
    hold.abandon()  # shutdown: not this attempt's fault
    again = b.try_claim(A)
    assert again.previous_owner is not None and again.previous_owner.worker == "doomed"
    assert again.begin(owner("b")) == 2
    again.abandon()
    fresh = a.try_claim(B)
    assert fresh.begin(owner("a")) == 1
    fresh.abandon()
    assert b.try_claim(B).begin(owner("b")) == 1  # never begun: attempts start at 1


def test_a_crashed_attempt_counts_and_keeps_its_error(backend: Backend) -> None:
    a, b = backend.make(), backend.make()
    hold = a.try_claim(A)
    hold.begin(owner("a"))
    hold.release("ValueError: row 7")
    again = b.try_claim(A)
    assert again.previous_owner is not None
    assert (again.previous_owner.worker, again.previous_owner.error) == ("a", "ValueError: row 7")
    assert again.begin(owner("b")) == 2
    again.finish()


class Sink:
    """A handler's uncommitted work on some other database: what a ledger does with it."""

    database = "elsewhere@0"
    connection = None

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.committed = False
        self.closed = 0

    def commit(self) -> None:
        if self.fail:
            raise OSError("the sink is down")
        self.committed = True

    def close(self) -> None:
        self.closed += 1


def test_a_commit_is_fenced_when_a_peer_recorded_the_file_first(backend: Backend) -> None:
    a, b = backend.make(), backend.make()
    lost = a.try_claim(A)
    lost.begin(owner("a"))
    backend.steal(A)  # a's claim is gone (an expired lease); a does not know
    taker = b.try_claim(A)
    taker.begin(owner("b"))
    assert b.commit(taker, record(A, "b", 2)) is True
    late = Sink()  # the fenced-out worker's own uncommitted work: rolled back, not committed
    assert a.commit(lost, record(A, "a"), transaction=late) is False  # nothing written
    assert not late.committed and late.closed
    done = [r for r in backend.inspector().records() if r.file == A]
    assert [(r.worker, r.status) for r in done] == [("b", "done")]


def queued_commits(
    backend: Backend, ledger: Ledger, commits: list[Callable[[], bool]]
) -> list[Any]:
    """Run `commits` in threads at once: where the ledger groups commits, all of them queue
    behind a commit in progress, in this order. What each returned or raised, in order."""
    outcomes: list[Any] = [None] * len(commits)

    def run(i: int) -> None:
        try:
            outcomes[i] = commits[i]()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(commits))]
    if backend.writer is None:
        for thread in threads:
            thread.start()
    else:
        group = backend.writer(ledger)
        with group.holding():
            for i, thread in enumerate(threads):
                thread.start()
                while group.queued < i + 1:
                    time.sleep(0.001)  # until it has queued: the order is fixed
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_commits_that_queue_together_are_each_fenced_on_their_own(backend: Backend) -> None:
    a, b = backend.make(), backend.make()
    D = "2018_06_28_00_45.txt"
    holds = {}
    for name in (A, B, C, D):
        holds[name] = a.try_claim(name)
        holds[name].begin(owner("a"))
    backend.steal(B)  # a peer takes B over and records it first
    taker = b.try_claim(B)
    taker.begin(owner("b"))
    assert b.commit(taker, record(B, "b", 2))
    sink, down = Sink(), Sink(fail=True)
    order: list[str] = []

    def commit(name: str, transaction: Sink | None = None) -> Callable[[], bool]:
        return lambda: a.commit(holds[name], record(name, "a"), lambda: order.append(name),
                                transaction)  # fmt: skip

    outcomes = queued_commits(backend, a, [commit(A), commit(B), commit(C, sink), commit(D, down)])
    assert outcomes[:3] == [True, False, True]
    assert isinstance(outcomes[3], OSError)  # its own transaction failed: only its record
    assert sink.committed and sink.closed and down.closed
    records = [(r.file, r.worker) for r in backend.inspector().records()]
    assert records == [(B, "b"), (A, "a"), (C, "a")]
    if backend.writer is not None:
        assert order == [A, C]  # as the records went in: the worker's stats follow them
    assert sorted(order) == [A, C]
    a.sync()
    assert not a.is_finished(D)
    again = a.try_claim(D)  # given back without spending an attempt
    assert again.begin(owner("a")) == 1


def test_a_claim_lost_without_a_trace_and_taken_again_stays_the_takers(backend: Backend) -> None:
    """A claim the ledger lost altogether (a database crash before it reached the disk) and
    a peer then took: the first holder's give-back (after its commit failed, say) leaves the
    peer's claim alone, and only one done record is ever written. A claim's token must never
    repeat the lost one's."""
    a, b, c = backend.make(), backend.make(), backend.make()
    lost = a.try_claim(A)
    lost.begin(owner("a"))
    (backend.vanish or backend.steal)(A)
    taker = b.try_claim(A)
    taker.begin(owner("b"))
    lost.abandon()
    with pytest.raises(Busy):
        c.try_claim(A)  # still b's
    assert b.commit(taker, record(A, "b")) is True
    assert a.commit(lost, record(A, "a")) is False
    done = [(r.worker, r.status) for r in backend.inspector().records() if r.file == A]
    assert done == [("b", "done")]


def test_finished_means_done_or_failed_and_retry_reopens_only_failed(backend: Backend) -> None:
    a, b = backend.make(), backend.make()
    for name, status in ((A, "done"), (B, "failed")):
        hold = a.try_claim(name)
        hold.begin(owner("a"))
        assert a.commit(hold, record(name, "a", status=status))
    b.sync()
    assert b.is_finished(A) and b.is_finished(B) and not b.is_finished(C)
    assert b.is_done(A) and not b.is_done(B)
    assert b.failed_count() == 1  # for the fleet's metrics
    assert b.failed_names() == [B]
    inspector = backend.inspector()
    assert {n: r.error for n, r in inspector.failed_records().items()} == {B: "why"}
    for name in (A, B):
        inspector.retry(RetryRequest(file=name, worker="op", requested_at="t", previous_error=None))
    b.sync()
    assert b.is_finished(A)  # done is final
    assert not b.is_finished(B)  # failed, then retried: eligible again
    assert b.failed_count() == 0 and b.failed_names() == []
    assert inspector.statuses()[B] == "retry"
    assert inspector.failed_records() == {}


def test_a_redo_reopens_a_done_file_for_one_more_done_record(backend: Backend) -> None:
    """An operator's `retry` of a done file whose content changed: one more done record
    may be written (and the fence holds again after it)."""
    a, b = backend.make(), backend.make()
    hold = a.try_claim(A)
    hold.begin(owner("a"))
    assert a.commit(hold, record(A, "a"))
    inspector = backend.inspector()
    inspector.retry(RetryRequest(file=A, worker="op", requested_at="t", previous_error=None,
                                 status="redo", previous_sha256="old"))  # fmt: skip
    b.sync()
    assert not b.is_finished(A) and inspector.statuses()[A] == "redo"
    hold = b.try_claim(A)
    hold.begin(owner("b"))
    assert b.commit(hold, record(A, "b"))  # the new content's done record
    a.sync()
    assert a.is_done(A)
    late = a.try_claim(A)  # a peer that missed the redo cannot add a third
    late.begin(owner("a"))
    assert a.commit(late, record(A, "a")) is False
    done = [r.worker for r in inspector.records() if r.file == A and r.status == "done"]
    assert done == ["a", "b"]


def test_summaries_are_the_records_audit_fields(backend: Backend) -> None:
    """`Inspector.summaries` (what `verify` reads of a million records) says what `records`
    says of the fields an audit needs, in the same order."""
    a = backend.make()
    for name, status, attempt in ((A, "done", 1), (B, "failed", 2), (C, "done", 1)):
        hold = a.try_claim(name)
        hold.begin(owner("a"))
        assert a.commit(hold, record(name, "a", attempt=attempt, status=status))
    inspector = backend.inspector()
    whole = [Summary.of(r) for r in inspector.records()]
    assert list(inspector.summaries()) == whole
    assert [s for block in inspector.summary_blocks() for s in block.summaries()] == whole
    assert [r.file for r in whole] == [A, B, C]


def test_records_of_each_worker_come_back_in_commit_order(backend: Backend) -> None:
    a, b = backend.make(), backend.make()
    names = [f"2018_06_28_{h:02d}_00.txt" for h in range(10)]
    for i, name in enumerate(names):
        ledger, worker = (a, "a") if i % 3 else (b, "b")
        hold = ledger.try_claim(name)
        hold.begin(owner(worker))
        ledger.commit(hold, record(name, worker))
    records = list(backend.inspector().records())
    for worker in ("a", "b"):
        mine = [r.file for r in records if r.worker == worker]
        assert mine == [n for i, n in enumerate(names) if (i % 3 != 0) == (worker == "a")]


def test_work_inside_a_commit_stands_or_falls_with_the_record(backend: Backend) -> None:
    ledger = backend.make()
    sink = Sink()
    hold = ledger.try_claim(A)
    hold.begin(owner("a"))
    assert ledger.commit(hold, record(A, "a"), transaction=sink)
    assert sink.committed and sink.closed

    down = Sink(fail=True)
    hold = ledger.try_claim(B)
    hold.begin(owner("a"))
    with pytest.raises(OSError):
        ledger.commit(hold, record(B, "a"), transaction=down)
    assert down.closed
    ledger.sync()
    assert not ledger.is_finished(B)
    again = ledger.try_claim(B)  # given back, and without spending the attempt
    assert again.begin(owner("a")) == 1
    again.finish()


def test_pause_resume_and_heartbeats(backend: Backend) -> None:
    ledger, inspector = backend.make(), backend.inspector()
    assert not ledger.paused()
    assert inspector.set_paused(True) is True
    assert inspector.set_paused(True) is False  # idempotent
    assert ledger.paused() and inspector.paused()
    assert inspector.set_paused(False) is True and not ledger.paused()
    ledger.write_heartbeat(Heartbeat(worker="w1", host="h", pid=1, interval=5.0))
    beat = ledger.read_heartbeat("w1")
    assert beat is not None and beat.host == "h" and not beat.lost
    assert [b.worker for b in inspector.workers()] == ["w1"]
    assert [b.worker for b in ledger.workers()] == ["w1"]
    assert inspector.prune_workers(0.0) == []  # alive: never pruned
    ledger.remove_heartbeat("w1")
    assert ledger.read_heartbeat("w1") is None


async def test_a_file_that_keeps_crashing_becomes_poison(backend: Backend, tmp_path: Path) -> None:
    settings = Settings(source=str(tmp_path), source_id=str(tmp_path),
                        state_dir=tmp_path / "state", worker_id="w",
                        host="h", max_attempts=2, seconds_in_min=0)  # fmt: skip
    source = MemorySource({A: b"1"})

    async def crash(job: Job) -> Outcome:
        raise RuntimeError("boom")

    worker = Processor(settings, backend.make(), source, crash, structlog.get_logger())
    results = [await worker.process(A) for _ in range(3)]
    assert results == [Result.RETRY, Result.RETRY, Result.FAILED]
    (last,) = [r for r in backend.inspector().records() if r.file == A]
    assert last.status == "failed" and last.attempt == 3
    assert last.error.startswith("poison: 2 attempts") and "RuntimeError: boom" in last.error
    await asyncio.sleep(0)


def test_the_inspector_sees_one_files_claim_and_its_last_owner(backend: Backend) -> None:
    ledger, inspector = backend.make(), backend.inspector()
    assert inspector.claim(A) == (False, None)  # never claimed
    hold = ledger.try_claim(A)
    hold.begin(owner("a"))
    held, now = inspector.claim(A)
    assert held and now is not None and (now.worker, now.attempt) == ("a", 1)
    hold.release("RuntimeError: boom")  # a crash: the owner record stays, with why
    held, last = inspector.claim(A)
    assert not held and last is not None and last.error == "RuntimeError: boom"
    again = ledger.try_claim(A)
    again.begin(owner("a"))
    assert ledger.commit(again, record(A, "a"))
    assert inspector.claim(A) == (False, None)  # finished: nothing left


@pytest.mark.server
@pytest.mark.postgres
def test_postgresql_commits_that_queue_together_share_one_transaction(
    tmp_path: Path, pg: Any
) -> None:
    from ingestd.ledgers.postgres import PostgresInspector

    backends = postgres_backend(tmp_path, pg.url)
    backend = next(backends)
    try:
        ledger = backend.make()
        names = [A, B, C]
        holds = [ledger.try_claim(name) for name in names]
        for hold in holds:
            hold.begin(owner("a"))
        commits = [functools.partial(ledger.commit, h, record(h.name, "a")) for h in holds]
        assert queued_commits(backend, ledger, commits) == [True, True, True]
        inspector = backend.inspector()
        assert isinstance(inspector, PostgresInspector)
        rows = inspector._run(
            "SELECT file, xmin::text FROM ingestd.records WHERE source = 'contract' ORDER BY seq"
        )
        assert [file for file, _ in rows] == names
        assert len({xmin for _, xmin in rows}) == 1  # one transaction, one flush
    finally:
        next(backends, None)


def finishes_meanwhile(action: Callable[[], object], release: Callable[[], None]) -> bool:
    """Whether `action`, run in a thread, returns while what it must not wait for is still
    held; `release` lets that go either way."""
    thread = threading.Thread(target=action)
    thread.start()
    thread.join(timeout=30)
    finished = not thread.is_alive()
    release()
    thread.join(timeout=30)
    return finished


@pytest.mark.server
@pytest.mark.postgres
def test_postgresql_a_claim_never_waits_for_a_group_of_commits(tmp_path: Path, pg: Any) -> None:
    """A group of commits deletes several claim rows in one transaction, and may wait for a
    row someone else has locked (a peer's claim looking at it, a heartbeat) while holding the
    others. A claim that waited for one of those deleted rows could close a cycle: it must
    pass over such a file as busy instead."""
    import psycopg

    from ingestd.ledgers.postgres import PostgresInspector

    backends = postgres_backend(tmp_path, pg.url)
    backend = next(backends)
    try:
        a, b = backend.make(), backend.make()
        holds = [a.try_claim(name) for name in (A, B)]
        for hold in holds:
            hold.begin(owner("a"))
        with psycopg.connect(pg.url) as blocker:
            # B's claim row locked elsewhere: the group deletes A's row, then waits for B's.
            blocker.execute("SELECT 1 FROM ingestd.claims WHERE file = %s FOR UPDATE", (B,))
            outcomes: list[Any] = []
            commits = [functools.partial(a.commit, h, record(h.name, "a")) for h in holds]
            committing = threading.Thread(
                target=lambda: outcomes.extend(queued_commits(backend, a, commits))
            )
            committing.start()
            inspector = backend.inspector()
            assert isinstance(inspector, PostgresInspector)
            while not inspector._run(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%%commit_record%%'"
            ):
                time.sleep(0.01)  # until the group waits for B's row, A's deleted
            claimed: list[Any] = []
            finished_while_blocked = finishes_meanwhile(
                lambda: claimed.append(b.claim_first([A])), blocker.rollback
            )
            committing.join(timeout=30)
        assert finished_while_blocked  # it did not wait for the group
        passed, hold = claimed[0]
        assert hold is None and passed == [(A, BUSY)]
        assert outcomes == [True, True]
    finally:
        next(backends, None)


@pytest.mark.server
@pytest.mark.postgres
def test_postgresql_a_heartbeat_renews_what_it_can_without_waiting(tmp_path: Path, pg: Any) -> None:
    """A claim row locked elsewhere (a commit deleting it, a peer's claim looking at it) is
    left to the next beat: waiting for it while holding the others' locks could close a
    cycle with a group of commits."""
    import psycopg

    from ingestd.ledgers.postgres import PostgresInspector, PostgresLedger

    backends = postgres_backend(tmp_path, pg.url)
    backend = next(backends)
    try:
        ledger = backend.make()
        assert isinstance(ledger, PostgresLedger)
        for name in (A, B):
            ledger.try_claim(name).begin(owner("a"))
        inspector = backend.inspector()
        assert isinstance(inspector, PostgresInspector)
        leases = "SELECT file, lease_until FROM ingestd.claims ORDER BY file"
        before = dict(inspector._run(leases))
        with psycopg.connect(pg.url) as blocker:
            blocker.execute("SELECT 1 FROM ingestd.claims WHERE file = %s FOR UPDATE", (B,))
            beat = Heartbeat(worker=ledger.worker, host="h", pid=1, interval=5.0)
            finished_while_blocked = finishes_meanwhile(
                lambda: ledger.write_heartbeat(beat), blocker.rollback
            )
        assert finished_while_blocked
        after = dict(inspector._run(leases))
        assert after[A] > before[A] and after[B] == before[B]
    finally:
        next(backends, None)
