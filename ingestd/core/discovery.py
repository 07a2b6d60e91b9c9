"""What is ready to claim: the source's events, rescans, settling, retry backoff.

`Discovery` turns what the source's events and the periodic scan show into the oldest-first
queue the claim tasks take from. It never waits on the source or the ledger on the event loop:
scans and signatures run in a thread. A file is offered once it has settled (closed after
writing, moved into place, or unchanged for `--settle`; at once from a source whose files
appear whole), is not finished, not in this process's hands, and not backing off after a
failed attempt.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ingestd.contracts.ledger import DONE, FAILED, Ledger
from ingestd.contracts.naming import is_data_name, key_of, printable
from ingestd.contracts.source import KEEP, TEMP_FILE, Changed, Content, ScanResult, Source
from ingestd.core.backoff import Streak
from ingestd.core.keys import KeyOrder
from ingestd.core.processor import Processor
from ingestd.core.ready import ReadyQueue, Settling
from ingestd.core.recording import Result, utc_now
from ingestd.runtime.logs import Log
from ingestd.runtime.settings import Settings

MAX_BACKOFF = 300.0


@dataclass
class _Scan:
    """One scan's findings, gathered in one thread hop."""

    result: ScanResult
    leftovers: list[str]  # claim state killed workers left for finished files
    disposed: list[tuple[str, str, str]]  # (name, action, error or "")
    changed: list[tuple[str, Content, Changed]]  # finished files that hold other content now
    clock: int | None  # the source's clock before the listing
    closed: set[str]  # settling files no one has open for writing
    finished: list[str]  # --one-per-key: finished files still present
    failed: list[str]  # --on-key-failure block: failed files, present or not


class Discovery:
    def __init__(
        self, settings: Settings, ledger: Ledger, source: Source, processor: Processor, log: Log
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.source = source
        self.processor = processor  # its in_hand: files this process is trying or working on
        self.log = log
        self.ready = ReadyQueue()
        # Files from a source that writes them whole need no settling.
        self.settling = Settling(0.0 if source.atomic else settings.settle)
        self.pending = 0  # data files present, not finished, not of a blocked key (last scan)
        self.blocked_pending = 0  # ... and those of a blocked key (--on-key-failure block)
        self.wake = asyncio.Event()  # set when an event asks for a settle check
        self.seen_at: dict[str, str] = {}
        self.retry_at: dict[str, tuple[float, int]] = {}  # name -> (monotonic, failures)
        self._to_check: set[str] = set()
        self._ignored: set[str] = set()
        self._scan_outage = Streak(base=0.0)
        self.scan_error: str | None = None  # why the last scan failed, for the probes
        self._checks: set[asyncio.Task[None]] = set()
        self._recorded: dict[str, Content] = {}
        self._dispose_failing: set[str] = set()
        self.keys: KeyOrder | None = None
        if settings.one_per_key:
            self.keys = KeyOrder(block_on_failure=settings.on_key_failure == "block")
            keys = self.keys
            processor.gate = lambda name: keys.blocked_by(name, ledger.is_finished, ledger.is_done)
        self._late_reported: set[str] = set()

    def busy(self) -> bool:
        """Anything queued, settling or present and unfinished (for --exit-when-idle)."""
        return bool(len(self.ready) or len(self.settling) or self.pending)

    def cancel_checks(self) -> list[asyncio.Task[None]]:
        checks = list(self._checks)
        for task in checks:
            task.cancel()
        return checks

    def after(self, name: str, result: Result) -> None:
        """What a claim attempt's result means for finding the file again."""
        if result is Result.STALLED:
            # Not this file's trouble: it is next in line once the worker's wait is over.
            self.ready.put(name)
        elif result is Result.RETRY:
            failures = self.retry_at.get(name, (0.0, 0))[1] + 1
            delay = min(self.settings.rescan_interval * 2 ** (failures - 1), MAX_BACKOFF)
            self.retry_at[name] = (time.monotonic() + delay, failures)
        elif result is Result.HELD:
            if self.keys is not None:
                self.keys.hold(name)  # released when the earlier file of its key finishes
        elif result is not Result.BUSY:
            self.retry_at.pop(name, None)
            self.seen_at.pop(name, None)
            self.settling.forget(name)
            if self.keys is not None:
                for released in self.keys.finished(name, failed=result is Result.FAILED):
                    self._release(released)

    def on_event(self, kind: str, name: str) -> None:
        """Runs on the loop, handed over from the observer thread."""
        if self.ledger.is_done(name) and kind == "written":
            self._check_later(name)
            return
        if self.ledger.is_finished(name) or name in self.processor.in_hand:
            return
        self.seen_at.setdefault(name, utc_now())
        if kind == "written" and not self.backing_off(name, time.monotonic()):
            self.settling.forget(name)
            if self._in_turn(name) and self.ready.put(name):
                self.log.debug("file_ready", file=name, via="event")
        else:
            self._to_check.add(name)
            self.wake.set()

    def _check_later(self, name: str) -> None:
        task = asyncio.create_task(self._check_changed(name), name=f"changed:{name}")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _check_changed(self, name: str) -> None:
        """A done file was written again: report it if its content differs from the record."""
        try:
            recorded = await asyncio.to_thread(self.ledger.last_record, name)
            version = await asyncio.to_thread(self.source.version, name)
            _, sha256 = await asyncio.to_thread(self.source.digest, name)
        except OSError:
            return  # gone again, or unreadable: nothing to compare
        if recorded is None or recorded.sha256 in (None, sha256):
            return
        processed = Content(recorded.version, recorded.sha256)
        news = Changed(name, version, sha256)
        self.processor.recording.report_changed(name, self.log.bind(file=name), processed, news)

    def _in_turn(self, name: str) -> bool:
        """--one-per-key: whether `name` may be queued now (else it is held back)."""
        if self.keys is None:
            return True
        if not self.keys.eligible(name):
            self.keys.hold(name)
            return False
        if (newest := self.keys.late(name)) is not None and name not in self._late_reported:
            self._late_reported.add(name)  # processed all the same, once
            self.log.warning("late_file", file=name, newest_finished=newest)
        return True

    def _release(self, name: str) -> None:
        """A held-back file whose turn has come: queued at once (it had settled)."""
        if name not in self.processor.in_hand and self.ready.put(name):
            self.log.debug("file_ready", file=name, via="key")

    def backing_off(self, name: str, now: float) -> bool:
        entry = self.retry_at.get(name)
        return entry is not None and entry[0] > now

    def offer(
        self,
        name: str,
        signature: tuple[int, int] | None,
        now: float,
        clock: int | None = None,
        closed: bool = False,
    ) -> None:
        """One look at a file: queue it once it has settled. `clock`: the source's own time
        (ns) at this look, which dates the file's mtime (the signature's second half);
        `closed`: no one has it open for writing, as good as a close event."""
        if signature is None:
            self.settling.forget(name)
            return
        if name in self.ready or name in self.processor.in_hand or self.backing_off(name, now):
            return
        self.seen_at.setdefault(name, utc_now())
        age = None if clock is None else (clock - signature[1]) / 1e9
        if closed:
            age = self.settling.settle
        if self.settling.observe(name, signature, now, age) and self._in_turn(name):
            self.ready.put(name)
            self.log.debug("file_ready", file=name, via="scan")

    async def rescan(self) -> bool:
        """One full scan; True when it worked again after failing (the directory is back)."""
        try:
            scan = await asyncio.to_thread(self._sync_then_scan)  # one thread hop
        except OSError as exc:
            if self._scan_outage.fail(time.monotonic()):  # once per outage
                self.log.error("scan_failed", error=str(exc), source=self.source.description)
            self.scan_error = str(exc)
            return False
        self.scan_error = None
        self._report_disposals(scan)
        recovered = self._scan_outage.succeed()
        if recovered:
            self.log.info("scan_recovered")
        self._take(scan)
        if scan.leftovers and (removed := await self.processor.remove_leftovers(scan.leftovers)):
            self.log.info("leftover_locks_removed", files=removed)
        return recovered

    def _sync_then_scan(self) -> _Scan:
        """The ledger's news, then the source's listing, and what follows from both.
        Blocking: runs in a thread."""
        recording = self.processor.recording
        disposing = any(d.kind != KEEP for d in recording.disposals.values())
        keyed = self.keys is not None
        self.ledger.sync()
        finished: list[str] = []

        def skip(name: str) -> bool:
            if self.ledger.is_finished(name):
                if disposing or keyed:
                    finished.append(name)
                return True
            return False

        # The clock before the scan: no mtime the scan sees is dated older than it is.
        clock = self.source.clock() if self.settling.settle > 0 else None
        result = self.source.scan(skip)
        closed = self._closed(result) if self.settling.settle > 0 else set()
        leftovers = self.ledger.leftovers()
        for name in list(recording.changed_files):
            # Gone since, or reopened by an operator (`retry`): nothing to report.
            if not self.ledger.is_finished(name) or self.source.version(name) is None:
                recording.changed_files.pop(name, None)
        disposed, changed = self._dispose_leftovers(finished)
        # --one-per-key: the finished files still present, and the failed ones: from the
        # ledger, present or not (one moved away by --on-failed still holds its key).
        blocking = keyed and self.settings.on_key_failure == "block"
        failed = self.ledger.failed_names() if blocking else []
        if not keyed:
            finished = []
        return _Scan(result, leftovers, disposed, changed, clock, closed, finished, failed)

    def _report_disposals(self, scan: _Scan) -> None:
        for name, action, error in scan.disposed:
            if not error:
                # Its record was made, but its worker died before the move or delete.
                self.log.info("file_disposed", file=name, action=action, via="scan")
                self._dispose_failing.discard(name)
            elif name not in self._dispose_failing:  # once per file, not once per scan
                self._dispose_failing.add(name)
                self.log.warning("dispose_failed", file=name, action=action, error=error)
        for name, processed, news in scan.changed:
            log = self.log.bind(file=name)
            self.processor.recording.report_changed(name, log, processed, news)

    def _take(self, scan: _Scan) -> None:
        """What the scan found: offered, ignored (said once), counted."""
        result = scan.result
        now = time.monotonic()
        self.settling.keep_only(result.candidates)
        if self.keys is not None:
            unfinished = [*result.candidates, *self.processor.in_hand]
            for name in self.keys.rescanned(unfinished, scan.failed, scan.finished):
                self._release(name)
        for name, signature in result.candidates.items():
            self.offer(name, signature, now, scan.clock, name in scan.closed)
        for name, why in result.ignored.items():
            if why == TEMP_FILE:
                # A writer's temp file, renamed into place a moment later: not worth a line.
                self.log.debug("entry_ignored", entry=printable(name), reason=why)
            elif name not in self._ignored:
                self._ignored.add(name)
                self.log.info("entry_ignored", entry=printable(name), reason=why)
        self._ignored.intersection_update(result.ignored)  # bounded by what is there now
        for name in result.changed:
            if self.ledger.is_done(name):
                self._check_later(name)
        # A file of a blocked key waits for a person, not for this worker: it does not keep
        # --exit-when-idle from exiting.
        blocked = self.keys.blocked() if self.keys is not None else {}
        self.blocked_pending = sum(1 for n in result.candidates if key_of(n) in blocked)
        self.pending = len(result.candidates) - self.blocked_pending

    def _closed(self, result: ScanResult) -> set[str]:
        """Files still settling that no one has open for writing (a read lease says so).
        Blocking: asked only of files neither queued, in hand nor settled, so a backlog
        costs nothing."""
        return {
            name
            for name, signature in result.candidates.items()
            if name not in self.ready
            and name not in self.processor.in_hand
            and not self.settling.is_settled(name, signature)
            and self.source.is_closed(name)
        }

    def _dispose_leftovers(
        self, finished: list[str]
    ) -> tuple[list[tuple[str, str, str]], list[tuple[str, Content, Changed]]]:
        """Finish `--on-done`/`--on-failed` for recorded files still in the source: (name,
        action, error or ""); and the ones kept because the source holds other content now
        (a re-delivery). Blocking."""
        done: list[tuple[str, str, str]] = []
        changed: list[tuple[str, Content, Changed]] = []
        for name in finished:
            if not is_data_name(name):
                continue
            disposal = self.processor.recording.disposals[
                DONE if self.ledger.is_done(name) else FAILED
            ]
            if disposal.kind == KEEP:
                continue
            try:
                processed = self._processed(name)
                self.source.dispose(name, disposal, processed)
            except FileNotFoundError:
                self._recorded.pop(name, None)
                continue  # a peer was quicker
            except Changed as exc:
                changed.append((name, processed, exc))
                continue
            except OSError as exc:
                done.append((name, str(disposal), str(exc)))  # tried again next scan
                continue
            self._recorded.pop(name, None)  # gone from the source: not asked again
            done.append((name, str(disposal), ""))
        return done, changed

    def _processed(self, name: str) -> Content:
        """The content a finished file's record names (a record never changes: cached)."""
        if name not in self._recorded:
            record = self.ledger.last_record(name)
            found = (None, None) if record is None else (record.version, record.sha256)
            self._recorded[name] = Content(*found)
        return self._recorded[name]

    async def check_settling(self) -> None:
        names = set(self._to_check)
        self._to_check.clear()
        deadline = self.settling.next_deadline()
        now = time.monotonic()
        if deadline is not None and deadline <= now:
            names.update(self.settling.names())
        if not names:
            return
        # One thread hop for all of them, then offer them together: a claim task woken by the
        # first offer must not run before older files are queued beside it.
        signatures = await asyncio.to_thread(
            lambda: {name: self.source.signature(name) for name in names}
        )
        now = time.monotonic()
        for name, signature in sorted(signatures.items()):
            self.offer(name, signature, now)
