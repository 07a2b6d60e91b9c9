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

from .keys import KeyOrder
from .ledger import DONE, FAILED, Ledger
from .logs import Log
from .naming import is_data_name, key_of, printable
from .ready import ReadyQueue, Settling
from .settings import Settings
from .source import KEEP, TEMP_FILE, Changed, Content, ScanResult, Source
from .worker import Result, Worker, utc_now

MAX_BACKOFF = 300.0


class Discovery:
    def __init__(
        self, settings: Settings, ledger: Ledger, source: Source, worker: Worker, log: Log
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.source = source
        self.worker = worker  # its in_hand: files this process is trying or working on
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
        self._scan_failing = False
        self.scan_error: str | None = None  # why the last scan failed, for the probes
        self._checks: set[asyncio.Task[None]] = set()
        self._recorded: dict[str, Content] = {}
        self._dispose_failing: set[str] = set()
        self.keys: KeyOrder | None = None
        if settings.one_per_key:
            self.keys = KeyOrder(block_on_failure=settings.on_key_failure == "block")
            keys = self.keys
            worker.gate = lambda name: keys.blocked_by(name, ledger.is_finished, ledger.is_done)
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
        if self.ledger.is_finished(name) or name in self.worker.in_hand:
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
        if recorded is None or recorded.get("sha256") in (None, sha256):
            return
        processed = Content(recorded.get("version"), recorded.get("sha256"))
        news = Changed(name, version, sha256)
        self.worker.report_changed(name, self.log.bind(file=name), processed, news)

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
        if name not in self.worker.in_hand and self.ready.put(name):
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
        if name in self.ready or name in self.worker.in_hand or self.backing_off(name, now):
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

        disposing = any(d.kind != KEEP for d in self.worker.disposals.values())
        keyed = self.keys is not None

        def sync_then_scan() -> tuple[
            ScanResult,
            list[str],
            tuple[list[tuple[str, str, str]], list[tuple[str, Content, Changed]]],
            int | None,
            set[str],
            tuple[list[str], list[str]],
        ]:
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
            for name in list(self.worker.changed_files):
                # Gone since, or reopened by an operator (`retry`): nothing to report.
                if not self.ledger.is_finished(name) or self.source.version(name) is None:
                    self.worker.changed_files.pop(name, None)
            disposed, changed = self._dispose_leftovers(finished)
            # --one-per-key: the finished files still present, and the failed ones: from the
            # ledger, present or not (one moved away by --on-failed still holds its key).
            blocking = keyed and self.settings.on_key_failure == "block"
            failed = self.ledger.failed_names() if blocking else []
            present = (finished, failed) if keyed else ([], [])
            return result, leftovers, (disposed, changed), clock, closed, present

        try:
            scanned = await asyncio.to_thread(sync_then_scan)  # one thread hop
            result, leftovers, (disposed, changed), clock, closed, (finished, failed) = scanned
        except OSError as exc:
            if not self._scan_failing:
                self.log.error("scan_failed", error=str(exc), data_dir=self.source.description)
            self._scan_failing = True
            self.scan_error = str(exc)
            return False
        self.scan_error = None
        for name, action, error in disposed:
            if not error:
                # Its record was made, but its worker died before the move or delete.
                self.log.info("file_disposed", file=name, action=action, via="scan")
                self._dispose_failing.discard(name)
            elif name not in self._dispose_failing:  # once per file, not once per scan
                self._dispose_failing.add(name)
                self.log.warning("dispose_failed", file=name, action=action, error=error)
        for name, processed, news in changed:
            self.worker.report_changed(name, self.log.bind(file=name), processed, news)
        recovered = self._scan_failing
        if recovered:
            self.log.info("scan_recovered")
            self._scan_failing = False
        now = time.monotonic()
        self.settling.keep_only(result.candidates)
        if self.keys is not None:
            unfinished = [*result.candidates, *self.worker.in_hand]
            for name in self.keys.rescanned(unfinished, failed, finished):
                self._release(name)
        for name, signature in result.candidates.items():
            self.offer(name, signature, now, clock, name in closed)
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
        if leftovers and (removed := await self.worker.remove_leftovers(leftovers)):
            self.log.info("leftover_locks_removed", files=removed)
        return recovered

    def _closed(self, result: ScanResult) -> set[str]:
        """Files still settling that no one has open for writing (a read lease says so).
        Blocking: asked only of files neither queued, in hand nor settled, so a backlog
        costs nothing."""
        return {
            name
            for name, signature in result.candidates.items()
            if name not in self.ready
            and name not in self.worker.in_hand
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
            disposal = self.worker.disposals[DONE if self.ledger.is_done(name) else FAILED]
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
            record = self.ledger.last_record(name) or {}
            self._recorded[name] = Content(record.get("version"), record.get("sha256"))
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
