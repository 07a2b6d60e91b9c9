"""What becomes of a processed file: its record, committed fenced (step 6 of the claim
protocol); the stats, which follow the ledger's order; the disposal (`--on-done`,
`--on-failed`), only once the record is durable; a source that holds other content since,
reported; and the stall after a ledger or environment failure."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ingestd.contracts.handler import HEAD_BYTES, Outcome
from ingestd.contracts.ledger import DONE, FAILED, Hold, Ledger, Record, Transaction
from ingestd.contracts.source import KEEP, Changed, Content, Disposal, Source
from ingestd.core.backoff import Streak
from ingestd.runtime.logs import Log
from ingestd.runtime.settings import Settings
from ingestd.runtime.stats import RunningStats

if TYPE_CHECKING:
    from ingestd.runtime.metrics import WorkerMetrics


class Result(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    BUSY = "busy"  # a peer (or another task of ours) holds it
    SKIPPED = "skipped"  # already finished, vanished, or not a regular file
    RETRY = "retry"  # try this file again later: unreadable, handler crash, unusable lock path
    HELD = "held"  # an earlier file of its key is not finished (--one-per-key): given back
    # Not this file's trouble: the ledger or the handler's environment failed. The whole
    # worker waits (`Processor.stall`) before it claims again, so a full disk costs one handler
    # run per backoff, not one per file.
    STALLED = "stalled"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass
class Recording:
    settings: Settings
    ledger: Ledger
    source: Source
    log: Log
    pid: int = field(default_factory=os.getpid)
    stats: RunningStats = field(default_factory=RunningStats)
    failed: int = 0  # files this worker recorded failed
    metrics: WorkerMetrics | None = None  # fed as files finish, when metrics are on
    # The source's version of each claimed file, taken before its content was read: the
    # record names it, and a disposal happens only while the source still holds it.
    versions: dict[str, str | None] = field(default_factory=dict)
    # Finished files whose source now holds other content (kept, reported): name -> what
    # it holds now. Heartbeats carry it, so `status` shows it and exits 1.
    changed_files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Consecutive ledger or environment failures: how long to wait before claiming again.
        self.stall = Streak(base=self.settings.rescan_interval)
        self.disposals = disposals(self.settings)

    def stalled(self, log: Log, event: str, error: str) -> None:
        """Wait before claiming again; say so once per streak, not once per file."""
        if self.stall.fail(time.monotonic()):
            log.error(event, error=error, retry=True, streak="started")
        else:
            log.debug(event, error=error, retry=True, failures=self.stall.failures)

    def recovered(self) -> None:
        """A record was written: whatever stalled the worker works again."""
        if self.stall.succeed():
            self.log.info("stall_ended")

    async def done(
        self,
        hold: Hold,
        outcome: Outcome,
        seen_at: str,
        started_at: str,
        log: Log,
        head: bytes,
    ) -> Result:
        if outcome.size is None or outcome.sha256 is None:
            if len(head) <= HEAD_BYTES:
                # The head is the whole file, and exactly what the handler was given: no
                # second read (a second GET, for a bucket).
                outcome.size, outcome.sha256 = len(head), hashlib.sha256(head).hexdigest()
            else:
                outcome.size, outcome.sha256 = await asyncio.to_thread(
                    self.source.digest, hold.name
                )
        record = self.record(
            hold,
            DONE,
            seen_at,
            started_at,
            minutes=outcome.minutes,
            size=outcome.size,
            sha256=outcome.sha256,
            outputs=tuple(outcome.outputs),
            records=outcome.records,
        )
        report: dict[str, float | int] = {}

        def count() -> None:
            # Runs inside the commit, so this worker's stats follow the ledger's order
            # exactly (what `ingestd verify` recomputes), even with several claim tasks.
            self.stats.add(outcome.minutes)
            report.update(self.stats.fields(), due=self.stats.due())

        transaction, outcome.transaction = outcome.transaction, None  # the ledger's now
        # A kept file is looked at again once recorded (has its content changed since?), in
        # the commit's own thread hop: on a drain of small files, hops are the cost.
        look = self.disposals[DONE].kind == KEEP and record.version is not None
        refused, now = await self.commit(hold, record, log, count, transaction, look)
        if refused is not None:
            return refused
        due = report.pop("due")
        log.info("file_done", minutes=outcome.minutes, files_processed=report["files_processed"])
        if due:
            log.unbind("file", "attempt").info("stats", **report)
        await self.dispose(hold.name, DONE, log, Content(record.version, record.sha256), now)
        return Result.DONE

    async def fail(self, hold: Hold, seen_at: str, started_at: str, error: str, log: Log) -> Result:
        record = self.record(hold, FAILED, seen_at, started_at, error=error)
        refused, _ = await self.commit(hold, record, log)
        if refused is not None:
            return refused
        self.failed += 1
        log.error("file_failed", error=error)
        await self.dispose(hold.name, FAILED, log, Content(record.version, None), None)
        return Result.FAILED

    async def dispose(
        self, name: str, status: str, log: Log, processed: Content, now: str | None
    ) -> None:
        """`--on-done`/`--on-failed`, once the record is durable (never before), and only
        while the source still holds the content processed: else it is reported. A kept
        file whose version `now` (read once recorded) is not the one processed is reported."""
        disposal = self.disposals[status]
        if disposal.kind == KEEP:
            if now is not None and now != processed.version:
                self.report_changed(name, log, processed, Changed(name, now, None))
            return
        try:
            await asyncio.to_thread(self.source.dispose, name, disposal, processed)
        except FileNotFoundError:
            return  # a peer's scan was quicker
        except Changed as changed:
            self.report_changed(name, log, processed, changed)
            return
        except OSError as exc:
            log.warning("dispose_failed", action=str(disposal), error=str(exc),
                        retry="at the next scan")  # fmt: skip
            return
        log.info("file_disposed", action=str(disposal))

    async def commit(
        self,
        hold: Hold,
        record: Record,
        log: Log,
        on_written: Callable[[], None] | None = None,
        transaction: Transaction | None = None,
        look: bool = False,
    ) -> tuple[Result | None, str | None]:
        """Step 6: record durably, then release. None when written, else what became of it;
        with `look`, the source's version of the file once it is recorded (same thread hop)."""

        def commit() -> tuple[bool, str | None]:
            written = self.ledger.commit(hold, record, on_written, transaction)
            # The ledger works: a stall ends here, not after the version read below, which
            # waits on the source (and the source may be what stalled the claims meanwhile).
            self.recovered()
            now = _quietly_version(self.source, hold.name) if written and look else None
            return written, now

        try:
            written, now = await asyncio.to_thread(commit)
        except OSError as exc:
            # Disk full, read-only, NFS trouble: the file is not finished. It was given back
            # without spending an attempt; the worker waits before it claims again.
            self.stalled(log, "commit_failed", str(exc))
            return Result.STALLED, None
        if not written:
            if self.metrics is not None:
                self.metrics.duplicate()
            log.warning("duplicate_suppressed", reason="a peer recorded this file done first")
            return Result.SKIPPED, None
        if self.metrics is not None:
            self.metrics.finished(record)
        return None, now

    def report_changed(self, name: str, log: Log, processed: Content, news: Changed) -> None:
        """A finished file whose source now holds other content: kept where it is, reported
        once per content."""
        now = news.sha256 or news.version or "?"
        if self.changed_files.get(name) == now:
            return
        self.changed_files[name] = now
        log.warning(
            "file_changed_after_done",
            recorded_sha256=processed.sha256,
            recorded_version=processed.version,
            version=news.version,
            sha256=news.sha256,
            kept=True,
        )

    def record(
        self,
        hold: Hold,
        status: str,
        seen_at: str,
        started_at: str,
        **outcome: object,
    ) -> Record:
        s = self.settings
        return Record(
            version=self.versions.get(hold.name),
            file=hold.name,
            status=status,
            worker=s.worker_id,
            host=s.host,
            pid=self.pid,
            attempt=hold.attempt,
            seen_at=seen_at,
            started_at=started_at,
            finished_at=utc_now(),
            **outcome,  # type: ignore[arg-type]
        )


def disposals(settings: Settings) -> dict[str, Disposal]:
    """What becomes of a finished file, by its status."""
    return {DONE: Disposal.parse(settings.on_done), FAILED: Disposal.parse(settings.on_failed)}


def _quietly_version(source: Source, name: str) -> str | None:
    try:
        return source.version(name)
    except OSError:
        return None
