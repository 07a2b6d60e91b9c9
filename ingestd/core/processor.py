"""Process one file: claim it, check it is still to do, run the handler, record, release.

The order is the protocol (docs/concepts/claim-protocol.md), the same whatever the ledger and the
source:
in-process exclusion first (POSIX locks on NFS never conflict inside one process), then the
ledger's claim, then a fresh look at what is finished, then the owner record with the attempt
number, then the handler, then the fenced, durable commit, and only then the release. Every
ledger and source call blocks (on NFS each one is a network round trip), so it runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestd.contracts.errors import BadInput, RetryLater
from ingestd.contracts.handler import HEAD_BYTES, Handler, Job, Outcome
from ingestd.contracts.ledger import (
    ALREADY_FINISHED,
    BUSY,
    Hold,
    Ledger,
    Owner,
    Unusable,
)
from ingestd.contracts.naming import parse_name
from ingestd.contracts.source import Source
from ingestd.core.publishing.publisher import staging_dir
from ingestd.core.recording import Recording, Result, utc_now
from ingestd.core.threads import HandlerThreads
from ingestd.runtime.logs import Log
from ingestd.runtime.settings import Settings

if TYPE_CHECKING:
    pass

# A handler's OSError with one of these is the environment's fault (an output dir read-only,
# forbidden or full), not the file's: like RetryLater, it spends no attempt.
ENVIRONMENT_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


@dataclass
class Processor:
    settings: Settings
    ledger: Ledger
    source: Source
    handler: Handler
    log: Log
    # Names this process is trying to claim or working on: excluded from its other tasks.
    in_hand: dict[str, float] = field(default_factory=dict)  # name -> monotonic start
    # Of those, the files claimed and being processed (what heartbeats and metrics report).
    working: dict[str, float] = field(default_factory=dict)
    # Leftover claims being checked for removal: excluded like files in hand, but not work,
    # so heartbeats and the shutdown report leave them out.
    sweeping: set[str] = field(default_factory=set)
    redone: int = 0  # files taken over from a peer that died on them
    pid: int = field(default_factory=os.getpid)
    threads: HandlerThreads | None = None
    # Files whose handler thread was still running when its task was cancelled (shutdown):
    # their claims are kept, because a thread cannot be stopped; the process must end for
    # the kernel to release them.
    stranded: dict[str, Hold] = field(default_factory=dict)
    # --one-per-key: given a file just claimed, an earlier file of its key still to finish.
    gate: Callable[[str], str | None] | None = None
    # The claims of the files being processed, and their handlers' tasks: a claim that can no
    # longer be proven ours (`Hold.reassert`) has its handler cancelled.
    holds: dict[str, Hold] = field(default_factory=dict)
    handler_tasks: dict[str, asyncio.Future[Outcome]] = field(default_factory=dict)
    claims_lost: set[str] = field(default_factory=set)
    options: Any = None  # the handler's own (`Job.options`)

    def __post_init__(self) -> None:
        # The record, the stats, the disposal: what becomes of each file processed.
        self.recording = Recording(self.settings, self.ledger, self.source, self.log, self.pid)

    async def process(self, name: str, seen_at: str | None = None) -> Result:
        """Claim and process one file; what became of it."""
        results = await self.process_first([name], {name: seen_at} if seen_at else {})
        return results[name]

    async def process_first(
        self,
        names: list[str],
        seen_at: Mapping[str, str],
        give_back: Callable[[str], object] = lambda _: None,
        handled: Callable[[], object] = lambda: None,
    ) -> dict[str, Result]:
        """Claim the first of `names` (oldest first) that can be claimed, and process it.

        Returns what became of every name tried. Names after the one won are not tried:
        they are handed to `give_back` as soon as the claim is made. Trying several in one
        thread hop matters when workers drain a backlog: they race for the same oldest file,
        and each loss would otherwise cost a round trip to a thread. `handled` is called as
        soon as the handler is through, before the record is written: the caller may start
        on the next file while this one's record is made durable.
        """
        # Step 1: tasks of one process exclude each other in memory (on NFS, POSIX locks
        # never conflict inside one process).
        results = {name: Result.BUSY for name in names if self._held(name)}
        ours = [name for name in names if not self._held(name)]
        now = time.monotonic()
        self.in_hand.update(dict.fromkeys(ours, now))
        try:
            # Steps 2-5 in one thread hop: on a drain of ready files, hops are the cost.
            # (Cancelled in the middle, at shutdown, a claim won in that thread is released
            # by the kernel when the process exits a moment later.)
            tried, won = await asyncio.to_thread(self._acquire_first, ours)
        except BaseException:
            for name in ours:
                del self.in_hand[name]
            raise
        kept = won[0].name if won is not None else None
        decided = {name for name, _, _ in tried}
        for name in ours:
            if name != kept:
                del self.in_hand[name]
                if name not in decided:
                    give_back(name)
        for name, result, why in tried:
            results[name] = result
            if why == BUSY and self.recording.metrics is not None:
                self.recording.metrics.conflict()
            self._log_outcome(self.log.bind(file=name), why)
        if won is not None:
            hold, head = won
            self.working[hold.name] = time.monotonic()
            self.holds[hold.name] = hold
            try:
                results[hold.name] = await self._run(hold, head, seen_at.get(hold.name), handled)
            finally:
                del self.in_hand[hold.name]
                del self.working[hold.name]
                self.recording.versions.pop(hold.name, None)
                self.holds.pop(hold.name, None)
                self.claims_lost.discard(hold.name)
        return results

    async def remove_leftovers(self, names: list[str]) -> list[str]:
        """Remove claim state killed workers left behind for finished files; the names removed.

        Each name is excluded in this process first, so no task of ours claims it meanwhile;
        the ledger claims it like a file, so a live holder is never disturbed.
        """
        ours = [name for name in names if not self._held(name)]
        self.sweeping.update(ours)
        try:
            return await asyncio.to_thread(self.ledger.sweep, ours)
        finally:
            self.sweeping.difference_update(ours)

    def _held(self, name: str) -> bool:
        """Step 1: in this process's hands already (POSIX locks never conflict inside one)."""
        return name in self.in_hand or name in self.sweeping

    def _log_outcome(self, log: Log, why: str) -> None:
        if why == BUSY:
            log.debug("peer_busy")
        elif why.startswith("unreadable"):
            log.warning("file_unreadable", error=why.partition(": ")[2], retry=True)
        elif why == ALREADY_FINISHED:
            log.debug("already_finished")
        elif why.startswith("waiting_for_key: "):
            log.debug("waiting_for_key", earlier=why.removeprefix("waiting_for_key: "))
        elif why.startswith("error: "):
            # The ledger failed (locks dir full or read-only, disk full while writing the
            # owner record, NFS trouble): not the file's fault, so no attempt is spent; the
            # claim, if won, was given back, and the worker waits before it claims again.
            self.recording.stalled(log, "claim_failed", why.removeprefix("error: "))
        elif why.startswith("unusable: "):
            log.error("lock_path_unusable", error=why.removeprefix("unusable: "), retry=True)
        else:
            log.info("file_skipped", reason=why)

    async def _run(
        self, hold: Hold, head: bytes, seen_at: str | None, handled: Callable[[], object]
    ) -> Result:
        log = self.log.bind(file=hold.name)
        try:
            return await self._claimed(hold, head, seen_at or utc_now(), log, handled)
        except OSError as exc:
            log.error("file_io_error", error=str(exc), retry=True)
            await asyncio.to_thread(_quietly, hold.abandon)
            return Result.RETRY
        except BaseException:
            # Shutdown (cancel) or an unexpected error: give the file back without spending
            # an attempt; the claim goes back to how the last holder left it. Unless its
            # handler is still running in a thread: then the claim stays held (see stranded).
            if hold.name not in self.stranded:
                await asyncio.shield(asyncio.to_thread(_quietly, hold.abandon))
            raise

    def _acquire_first(
        self, names: list[str]
    ) -> tuple[list[tuple[str, Result, str]], tuple[Hold, bytes] | None]:
        """Try `names` in order until one is claimed. Blocking: runs in a thread."""
        tried: list[tuple[str, Result, str]] = []
        rest = names
        while rest:
            try:
                passed, hold = self.ledger.claim_first(rest)
            except Unusable as exc:
                tried.append((rest[0], Result.RETRY, f"unusable: {exc}"))
                rest = rest[1:]
                continue
            except OSError as exc:
                tried.append((rest[0], Result.STALLED, f"error: {exc}"))
                break  # the ledger is in trouble: do not hammer it with the rest
            for name, why in passed:
                tried.append((name, Result.BUSY if why == BUSY else Result.SKIPPED, why))
            rest = rest[len(passed) :]
            if hold is None:
                continue  # all busy (rest is empty), or the pass ended at a name to try alone
            rest = rest[1:]
            try:
                checked = self._checked(hold)
            except OSError as exc:
                tried.append((hold.name, Result.STALLED, f"error: {exc}"))
                break
            if isinstance(checked[0], Result):
                tried.append((hold.name, checked[0], str(checked[1])))
            else:
                return tried, (checked[0], bytes(checked[1]))
        return tried, None

    def _checked(self, hold: Hold) -> tuple[Hold, bytes] | tuple[Result, str]:
        """A claim just won: fresh look at what is finished, file check, owner record."""
        name = hold.name
        try:
            if not hold.fresh:
                self.ledger.sync()
            if self.ledger.is_finished(name):
                hold.finish()
                return Result.SKIPPED, ALREADY_FINISHED
            if self.gate is not None and (earlier := self.gate(name)) is not None:
                hold.abandon()  # no attempt spent: its turn comes
                return Result.HELD, f"waiting_for_key: {earlier}"
            start = _read_start(self.source, name)
            if isinstance(start, str) and start.startswith("unreadable"):
                hold.abandon()
                return Result.RETRY, start
            if isinstance(start, str):
                hold.finish()
                return Result.SKIPPED, start
            head, self.recording.versions[name] = start
            hold.begin(self._owner())
        except BaseException:
            _quietly(hold.abandon)
            raise
        return hold, head

    async def _claimed(
        self, hold: Hold, head: bytes, seen_at: str, log: Log, handled: Callable[[], object]
    ) -> Result:
        previous = hold.previous_owner
        log = log.bind(attempt=hold.attempt)
        self._log_claimed(hold, log)
        started_at = utc_now()
        if hold.attempt > self.settings.max_attempts:
            last = previous.error if previous else None
            error = f"poison: {hold.attempt - 1} attempts ended without a result; " + (
                f"last error: {last}" if last else "their workers died while processing it"
            )
            return await self.recording.fail(hold, seen_at, started_at, error, log)
        try:
            outcome = await self._handle(self._job(hold.name, head, log))
        except asyncio.CancelledError:
            if hold.name not in self.claims_lost or _cancelling():
                if self.threads is not None and self.threads.running(hold.name):
                    self.stranded[hold.name] = hold
                raise
            # Our claim went with a removed state dir and a peer holds the file now: stop.
            running = self.threads is not None and self.threads.running(hold.name)
            log.error("claim_lost", reason="the lock file left its path and a peer holds it",
                      handler_thread_still_running=running)  # fmt: skip
            await asyncio.to_thread(_quietly, hold.abandon)
            return Result.BUSY
        except Exception as exc:
            handled()
            return await self._handler_failed(hold, exc, seen_at, started_at, log)
        handled()
        try:
            return await self.recording.done(hold, outcome, seen_at, started_at, log, head)
        finally:
            if (transaction := outcome.transaction) is not None:
                # Never handed to the ledger (which closes it itself): roll it back.
                await asyncio.shield(asyncio.to_thread(_quietly, transaction.close))

    def _log_claimed(self, hold: Hold, log: Log) -> None:
        previous = hold.previous_owner
        if hold.lost:
            log.debug("claim_lost", restarts=hold.lost, reason="claim replaced under us")
        if previous and self._is_me(previous):
            log.info("file_claimed", retry=True)  # our own earlier attempt crashed
        elif previous:
            self.redone += 1
            log.info("file_claimed", taken_over_from=previous.worker)
        else:
            log.info("file_claimed")

    def _job(self, name: str, head: bytes, log: Log) -> Job:
        return Job(
            name,
            parse_name(name) or datetime.min,
            self.options,
            log,
            head,
            self.source,
            self.threads,
            outputs=self._outputs(name),
            worker=self.settings.worker_id,
            source_id=self.settings.source_id,
        )

    async def _handler_failed(
        self, hold: Hold, exc: Exception, seen_at: str, started_at: str, log: Log
    ) -> Result:
        """BadInput fails the file; the environment's fault (RetryLater, an output dir
        read-only or full) spends no attempt and stalls the worker; anything else is a
        crash of this attempt."""
        if isinstance(exc, BadInput):
            return await self.recording.fail(hold, seen_at, started_at, f"bad input: {exc}", log)
        if isinstance(exc, RetryLater) or (
            isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS
        ):
            await asyncio.to_thread(_quietly, hold.abandon)
            self.recording.stalled(log, "handler_retry_later", _describe(exc))
            return Result.STALLED
        return await self._crashed(hold, exc, log)

    def _outputs(self, name: str) -> Path | None:
        """Where the file's outputs go: the output dir, or its staging dir there."""
        out = self.settings.output_dir
        if out is None or not self.settings.publish_in_order:
            return out
        return staging_dir(out, name)

    async def _handle(self, job: Job) -> Outcome:
        """The handler, as a task of its own: `lose` can cancel it alone."""
        task = asyncio.ensure_future(self.handler(job))
        self.handler_tasks[job.name] = task
        try:
            return await task
        finally:
            self.handler_tasks.pop(job.name, None)

    def lose(self, name: str) -> None:
        """`name`'s claim is no longer ours: cancel its handler (it is given back)."""
        task = self.handler_tasks.get(name)
        if task is not None and not task.done():
            self.claims_lost.add(name)
            task.cancel()

    async def _crashed(self, hold: Hold, exc: BaseException, log: Log) -> Result:
        """A crash of this attempt: the owner record stays (with the error), the attempt counts."""
        log.exception("handler_error", error=_describe(exc))
        await asyncio.to_thread(hold.release, _describe(exc))
        return Result.RETRY

    def _is_me(self, owner: Owner) -> bool:
        """An owner record of this very process: our own earlier attempt, not a peer's."""
        s = self.settings
        return (owner.worker, owner.host, owner.pid) == (s.worker_id, s.host, self.pid)

    def _owner(self) -> Owner:
        s = self.settings
        return Owner(worker=s.worker_id, host=s.host, pid=self.pid, claimed_at=utc_now())


def _read_start(source: Source, name: str) -> tuple[bytes, str | None] | str:
    """The first HEAD_BYTES + 1 bytes of a claimed file and its version (content that
    changes after it is seen as changed), or why it cannot be processed.

    Opening it here proves it readable before an attempt is spent; what is read on the way
    is handed to the handler (all the simulation needs), saving it a second open.
    """
    try:
        return source.read_start(name, HEAD_BYTES)
    except FileNotFoundError:
        return "vanished"
    except PermissionError as exc:
        # This file's own permissions. (A source that refuses us altogether raises another
        # OSError: the worker stalls, as for a ledger outage, instead of trying every file.)
        return f"unreadable: {exc}"
    except BadInput:
        return "not a regular file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a symlink since the scan
            return "not a regular file"
        raise


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled (a shutdown), not a task it awaits."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def reassert_all(holds: list[tuple[str, Hold]]) -> tuple[list[str], list[str]]:
    """(the names whose claims can no longer be proven ours, the names whose claims were
    taken again). Blocking: run in a thread."""
    lost, again = [], []
    for name, hold in holds:
        before = hold.lost
        try:
            if not hold.reassert():
                lost.append(name)
            elif hold.lost != before:
                again.append(name)
        except OSError:
            continue  # cannot tell now (the filesystem is in trouble): look again soon
    return lost, again


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _quietly(action: Callable[[], None]) -> None:
    # Best effort on the way out: if it fails, the kernel still drops the lock at exit.
    with contextlib.suppress(OSError):
        action()
