"""Process one file: claim it, check it is still to do, run the handler, record, release.

The order is the protocol (SPEC section 4): in-process exclusion first (POSIX locks on NFS
never conflict inside one process), then the flock claim, then a fresh look at the manifest,
then the owner record with the attempt number, then the handler, then the fenced, fsynced
manifest append, and only then the release. Every blocking filesystem call runs in a thread:
on NFS each one is a network round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import claim as claims
from .handlers import BadInput, Handler, Job, Outcome, file_digest
from .manifest import DONE, FAILED, Manifest
from .naming import parse_name
from .settings import Settings
from .stats import RunningStats


class Result(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    BUSY = "busy"  # a peer (or another task of ours) holds it
    SKIPPED = "skipped"  # already finished, vanished, or not a regular file
    RETRY = "retry"  # try again later: unreadable, handler crash, manifest write error


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Worker:
    settings: Settings
    manifest: Manifest
    handler: Handler
    log: Any
    stats: RunningStats = field(default_factory=RunningStats)
    in_hand: dict[str, float] = field(default_factory=dict)  # name -> monotonic start
    failed: int = 0
    redone: int = 0
    pid: int = field(default_factory=os.getpid)

    async def process(self, name: str, seen_at: str | None = None) -> Result:
        # Step 1: tasks of one process exclude each other in memory.
        if name in self.in_hand:
            return Result.BUSY
        self.in_hand[name] = time.monotonic()
        try:
            return await self._process(name, seen_at or utc_now())
        finally:
            del self.in_hand[name]

    async def _process(self, name: str, seen_at: str) -> Result:
        log = self.log.bind(file=name)
        try:
            # Steps 2-5 in one thread hop: on a drain of ready files, hops are the cost.
            acquired = await asyncio.to_thread(self._acquire, name)
        except OSError as exc:
            # Bookkeeping I/O failed (locks dir full or read-only, disk full while writing the
            # owner record, NFS trouble): not the file's fault, so no attempt is spent; the
            # claim, if won, was given back, and the file is retried after a backoff.
            log.error("claim_failed", error=str(exc), retry=True)
            return Result.RETRY
        if not isinstance(acquired, claims.Claim):
            result, why = acquired
            if why == "busy":
                log.debug("peer_busy")
            elif why == "unreadable":
                log.warning("file_unreadable", retry=True)
            elif why == "already_finished":
                log.debug("already_finished")
            else:
                log.info("file_skipped", reason=why)
            return result
        try:
            return await self._claimed(acquired, seen_at, log)
        except OSError as exc:
            log.error("file_io_error", error=str(exc), retry=True)
            await asyncio.to_thread(_quietly, acquired.abandon)
            return Result.RETRY
        except BaseException:
            # Shutdown (cancel) or an unexpected error: give the file back without spending
            # an attempt; the lock file goes back to how the last holder left it.
            await asyncio.shield(asyncio.to_thread(_quietly, acquired.abandon))
            raise

    def _acquire(self, name: str) -> claims.Claim | tuple[Result, str]:
        """Claim, inode check, manifest refresh, file check, owner record. Blocking."""
        try:
            claim = claims.try_claim(self.settings.locks_dir, name)
        except claims.Busy:
            return Result.BUSY, "busy"
        try:
            self.manifest.refresh()
            if self.manifest.is_finished(name):
                claim.finish()
                return Result.SKIPPED, "already_finished"
            problem = _unusable(self.settings.data_dir / name)
            if problem == "unreadable":
                claim.abandon()
                return Result.RETRY, problem
            if problem is not None:
                claim.finish()
                return Result.SKIPPED, problem
            claim.begin(self._owner())
        except BaseException:
            _quietly(claim.abandon)
            raise
        return claim

    async def _claimed(self, claim: claims.Claim, seen_at: str, log: Any) -> Result:
        name = claim.name
        path = self.settings.data_dir / name
        attempt = claim.attempt
        previous = claim.previous_owner
        log = log.bind(attempt=attempt)
        if previous:
            self.redone += 1
            log.info("file_claimed", taken_over_from=previous.get("worker"))
        else:
            log.info("file_claimed")
        started_at = utc_now()
        if attempt > self.settings.max_attempts:
            error = f"poison: {attempt - 1} attempts ended without a result"
            return await self._fail(claim, seen_at, started_at, error, log)

        job = Job(path, name, parse_name(name) or datetime.min, self.settings, log)
        try:
            outcome = await self.handler(job)
        except BadInput as exc:
            return await self._fail(claim, seen_at, started_at, f"bad input: {exc}", log)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A crash of this attempt: the owner record stays, so the attempt counts.
            log.exception("handler_error")
            await asyncio.to_thread(claim.release)
            return Result.RETRY
        return await self._done(claim, outcome, seen_at, started_at, log)

    async def _done(
        self, claim: claims.Claim, outcome: Outcome, seen_at: str, started_at: str, log: Any
    ) -> Result:
        if outcome.size is None or outcome.sha256 is None:
            outcome.size, outcome.sha256 = await asyncio.to_thread(
                file_digest, self.settings.data_dir / claim.name
            )
        record = self._record(claim, DONE, seen_at, started_at)
        record.update(minutes=outcome.minutes, size=outcome.size, sha256=outcome.sha256)
        if outcome.outputs:
            record["outputs"] = outcome.outputs
        if outcome.records is not None:
            record["records"] = outcome.records
        report: dict[str, float | int] = {}

        def count() -> None:
            # Runs under the manifest lock, so this worker's stats follow its manifest order
            # exactly (what `ingestd verify` recomputes), even with several claim tasks.
            self.stats.add(outcome.minutes)
            report.update(self.stats.fields(), due=self.stats.due())

        if (refused := await self._commit(claim, record, log, count)) is not None:
            return refused
        due = report.pop("due")
        log.info("file_done", minutes=outcome.minutes, files_processed=report["files_processed"])
        if due:
            log.unbind("file", "attempt").info("stats", **report)
        return Result.DONE

    async def _fail(
        self, claim: claims.Claim, seen_at: str, started_at: str, error: str, log: Any
    ) -> Result:
        record = self._record(claim, FAILED, seen_at, started_at)
        record["error"] = error
        if (refused := await self._commit(claim, record, log)) is not None:
            return refused
        self.failed += 1
        log.error("file_failed", error=error)
        return Result.FAILED

    async def _commit(
        self,
        claim: claims.Claim,
        record: dict[str, Any],
        log: Any,
        on_written: Callable[[], None] | None = None,
    ) -> Result | None:
        """Append the record, then release. None when written; else what became of the file."""
        try:
            written = await asyncio.to_thread(self._commit_and_release, claim, record, on_written)
        except OSError as exc:
            # Disk full, read-only, NFS trouble: the file is not finished. It was given back
            # without spending an attempt and is retried after a backoff.
            log.error("commit_failed", error=str(exc), retry=True)
            return Result.RETRY
        if not written:
            log.warning("duplicate_suppressed", reason="a peer recorded this file done first")
            return Result.SKIPPED
        return None

    def _commit_and_release(
        self, claim: claims.Claim, record: dict[str, Any], on_written: Callable[[], None] | None
    ) -> bool:
        """Step 6: append + fsync, then unlink and release (one thread hop). Blocking."""
        try:
            written = self.manifest.commit(record, on_written)
        except OSError:
            _quietly(claim.abandon)
            raise
        claim.finish()
        return written

    def _owner(self) -> dict[str, Any]:
        return {
            "worker": self.settings.worker_id,
            "host": self.settings.host,
            "pid": self.pid,
            "claimed_at": utc_now(),
        }

    def _record(
        self, claim: claims.Claim, status: str, seen_at: str, started_at: str
    ) -> dict[str, Any]:
        return {
            "file": claim.name,
            "status": status,
            "worker": self.settings.worker_id,
            "host": self.settings.host,
            "pid": self.pid,
            "attempt": claim.attempt,
            "minutes": None,
            "size": None,
            "sha256": None,
            "seen_at": seen_at,
            "started_at": started_at,
            "finished_at": utc_now(),
        }


def _unusable(path: os.PathLike[str]) -> str | None:
    """Why a claimed data file cannot be processed now, or None if it can."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "vanished"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except PermissionError:
        return "unreadable"
    except FileNotFoundError:
        return "vanished"
    os.close(fd)
    return None


def _quietly(action: Callable[[], None]) -> None:
    # Best effort on the way out: if it fails, the kernel still drops the lock at exit.
    with contextlib.suppress(OSError):
        action()
