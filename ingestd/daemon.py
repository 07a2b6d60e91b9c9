"""The daemon's lifecycle: wait for the source, start, find work, claim it, shut down.

One process runs a small set of named tasks: `tick` (rescans and settle checks through
`Discovery`, pause flag, observer health, idle exit: the one place that waits for "event,
timer or stop"), `claim-N` (take the oldest ready files and process one through `Worker`),
`heartbeat`, under systemd `watchdog`, and with `--publish-in-order` `publish` (passes that
move finished files' outputs into the output dir in order).
Signal handlers only set the stop event; shutdown happens in `run`, bounded by
`--drain-timeout`. If a task dies, the daemon stops loudly instead of limping on. It knows no
backend: `compose.py` builds the source, the ledger and the handler and hands them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import __version__, logs
from .discovery import Discovery
from .errors import StartupError
from .handlers import Handler, HandlerThreads
from .ledger import PRUNE_AFTER, REASSERT_EVERY, Heartbeat, Hold, Ledger
from .logs import Log
from .naming import key_of
from .outputs import Publisher
from .probes import Probes
from .publish import Action
from .settings import Settings
from .source import Source, Watch
from .systemd import Notifier, watchdog_interval
from .worker import Result, Worker, reassert_all, utc_now

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from .metrics import WorkerMetrics

__all__ = ["Daemon", "StartupError"]

WAIT_FOR_DIR_LOG_EVERY = 30.0
CLAIM_BATCH = 8


class _Slot:
    """One hold on the semaphore of files in work, released exactly once."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore: asyncio.Semaphore | None = semaphore

    def release(self) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# How often a running worker removes heartbeats of workers lost for longer than PRUNE_AFTER.
PRUNE_EVERY = 60.0


class Daemon:
    def __init__(
        self,
        settings: Settings,
        source: Source,
        ledger: Ledger,
        handler: Handler,
        log: Log,
        notifier: Notifier | None = None,
        checks: list[Callable[[], None]] | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.source = source
        self.ledger = ledger
        self.log = log
        self.notifier = notifier or Notifier()
        self.checks = checks or []  # start-up checks besides the ledger's (a handler's)
        self.threads = HandlerThreads(settings.concurrency)
        self.worker = Worker(settings, ledger, source, handler, log, threads=self.threads)
        self.discovery = Discovery(settings, ledger, source, self.worker, log)
        self.stop_event = asyncio.Event()
        self.exit_code = 0
        # Set when handler threads outlive the drain: the caller must end the process at once
        # (os._exit), so the threads die and the kernel releases their claims.
        self.exit_now = False
        self.paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._busy_tasks: set[asyncio.Task[None]] = set()
        self._idle_since = time.monotonic()
        self._watcher: Watch | None = None
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._started_at = utc_now()
        # This process, among any that share its worker id: heartbeats carry it, so two
        # processes under one id are seen whenever it happens, not only at start-up.
        self._instance = secrets.token_hex(8)
        self._id_clash_reported = False
        self.metrics: WorkerMetrics | None = None
        if settings.metrics_textfile is not None or settings.metrics_listen is not None:
            from .metrics import WorkerMetrics

            self.metrics = self.worker.metrics = WorkerMetrics()
        self._metrics_server: WSGIServer | None = None
        self.probes = Probes(settings.heartbeat_interval)
        self._metrics_failing = False
        self._scan_seconds: float | None = None
        self._publish_wake = asyncio.Event()
        self._published: dict[str, str] = {}  # the watermark after this worker's last pass
        # Why the last pass failed (None: it worked); heartbeats carry it to `status`.
        self._publish_error: str | None = None
        # What the last good pass saw (finished, failed, pending): a scan that changed none
        # of it cannot let anything be published, and need not list the source again.
        self._publish_view: tuple[int, int, int] | None = None

    # ---- entry point ----

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.request_stop, signum)
        logs.on_output_closed(
            lambda: loop.call_soon_threadsafe(self.request_stop, None, "log output closed")
        )
        try:
            self._serve_metrics()
            return await self._run()
        finally:
            if self._metrics_server is not None:
                self._metrics_server.shutdown()
                self._metrics_server.server_close()
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            logs.on_output_closed(None)
            self.threads.shutdown()
            self.notifier.close()
            self.ledger.close()

    def _serve_metrics(self) -> None:
        listen = self.settings.metrics_listen
        if self.metrics is None or listen is None:
            return
        from .metrics import serve

        try:
            self._metrics_server = serve(self.metrics, *listen, probes=self.probes)
        except OSError as exc:  # the port is taken, the address is not ours: say so, exit 2
            raise StartupError(f"--metrics-listen {listen[0]}:{listen[1]}: {exc}") from None
        self.log.info("metrics_listening", host=listen[0], port=listen[1])

    def request_stop(self, signum: int | None = None, reason: str | None = None) -> None:
        """Begin a graceful stop; a second signal ends the process at once."""
        name = signal.Signals(signum).name if signum else None
        if self.stop_event.is_set():
            if signum is not None:
                # The operator insists. Exiting is safe at any instant: the kernel drops our
                # locks, and the files in hand are taken over with this attempt counted.
                self.log.warning("forced_exit", signal=name, in_hand=sorted(self.worker.in_hand))
                logs.flush()
                os._exit(128 + signum)
            return
        if signum == signal.SIGINT:
            self.exit_code = 128 + signum  # 130, as shells expect after Ctrl-C
        self.log.info(
            "stop_requested",
            signal=name,
            reason=reason,
            drain_timeout=self.settings.drain_timeout,
            hint="send it again to exit at once" if signum is not None else None,
        )
        self.stop_event.set()
        self.discovery.wake.set()

    async def _run(self) -> int:
        s = self.settings
        self.log.info(
            "worker_started",
            version=__version__,
            data_dir=self.source.description,
            state_dir=self.ledger.description,
            concurrency=s.concurrency,
            seconds_in_min=s.seconds_in_min,
            handler=s.handler,
            pid=os.getpid(),
        )
        if not await self._wait_for_directory():
            self.log.info("shutdown", reason="stopped while waiting for the directory")
            return self.exit_code
        # Events start the moment the directory is there: before the ledger is prepared and
        # before the first scan (which syncs the ledger), so no file can land unseen, and the
        # first files' close events are seen (else they wait a settle period).
        self._watcher = self.source.watch(
            asyncio.get_running_loop(), self.discovery.on_event, self.log
        )
        if self._watcher is not None:
            self._watcher.start()
        try:
            if not await self._prepare_ledger():
                self.log.info("shutdown", reason="stopped while waiting for the ledger")
                return self.exit_code
            for check in self.checks:
                await asyncio.to_thread(check)
            other = await asyncio.to_thread(self.ledger.read_heartbeat, s.worker_id)
            if other is not None and _another_live_worker(other, s.host, self._instance):
                # Two live workers under one id (an id set in a config file copied to two
                # hosts, or given twice on one): their heartbeats overwrite each other and
                # `verify` mixes up their totals. The PostgreSQL ledger refuses it in
                # `prepare` already (a lock on the id); this is every ledger's check.
                raise StartupError(
                    f"worker_id_in_use: a live worker has the id {s.worker_id!r} (host "
                    f"{other.host}, pid {other.pid}): give each worker its own --worker-id"
                )
            await self._check_pause()
            await self._rescan()
            self.notifier.notify("READY=1", f"STATUS={self._status_line()}")
            self.log.info(
                "ready", pending=self.discovery.pending, known=self.ledger.finished_count()
            )
            await self._serve()
        finally:
            if self._watcher is not None:
                self._watcher.stop()
        return self.exit_code

    async def _prepare_ledger(self) -> bool:
        """Prepare the ledger; a database that is not up yet is waited for, never a restart loop."""
        last_log = -WAIT_FOR_DIR_LOG_EVERY
        while True:
            try:
                await asyncio.to_thread(self.ledger.prepare)
                return True
            except StartupError:
                raise
            except OSError as exc:
                now = time.monotonic()
                if now - last_log >= WAIT_FOR_DIR_LOG_EVERY:
                    self.log.warning(
                        "waiting_for_ledger", ledger=self.ledger.description, error=str(exc)
                    )
                    last_log = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), self.settings.rescan_interval)
            if self.stop_event.is_set():
                return False

    async def _wait_for_directory(self) -> bool:
        """Wait for DIR to exist, never creating it: it may be an NFS mount still to come.

        Its nearest existing parent is watched, so a local mkdir is noticed at once; the poll
        every rescan interval stays for what sends no event (another host's mkdir on NFS).
        """
        last_log = -WAIT_FOR_DIR_LOG_EVERY
        started = time.monotonic()
        limit = self.settings.exit_when_idle
        wake = asyncio.Event()
        appear: Watch | None = None
        tried = False
        try:
            while not await asyncio.to_thread(self.source.exists):
                if not tried:
                    tried = True
                    appear = self.source.watch_appearance(asyncio.get_running_loop(), wake.set)
                    if appear is not None and appear.start():
                        continue  # look again now the watch is on: no mkdir falls between
                    appear = None
                elif appear is not None:
                    appear.restart()  # a parent appeared: follow the path one level deeper
                    if await asyncio.to_thread(self.source.exists):
                        break  # made while the watch moved
                now = time.monotonic()
                if limit is not None and now - started >= limit:
                    # Nothing to do for that long: a batch run whose directory never came.
                    self.log.info(
                        "idle_exit", idle_seconds=round(now - started, 3), waited_for_dir=True
                    )
                    return False
                if now - last_log >= WAIT_FOR_DIR_LOG_EVERY:
                    self.log.warning("waiting_for_directory", data_dir=self.source.description)
                    last_log = now
                timeout = self.settings.rescan_interval
                if limit is not None:
                    timeout = min(timeout, max(limit - (now - started), 0.0))
                await self._wait_for(wake, timeout)
                wake.clear()
                if self.stop_event.is_set():
                    return False
        finally:
            if appear is not None:
                appear.stop()
        return True

    async def _wait_for(self, event: asyncio.Event, timeout: float) -> None:
        """Until `event`, a stop request or `timeout`, whichever comes first."""
        waiters = [asyncio.ensure_future(event.wait()),
                   asyncio.ensure_future(self.stop_event.wait())]  # fmt: skip
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    # ---- the running daemon ----

    async def _serve(self) -> None:
        s = self.settings
        # One claim task more than there are slots: it claims the next file while another
        # task appends its finished file's record.
        claimers = [
            asyncio.create_task(self._claim_loop(), name=f"claim-{i}")
            for i in range(s.concurrency + 1)
        ]
        side = [
            asyncio.create_task(self._tick_loop(), name="tick"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._reassert_loop(), name="reassert"),
        ]
        if self.publisher is not None:
            side.append(asyncio.create_task(self._publish_loop(), name="publish"))
        interval = watchdog_interval()
        if interval is not None and self.notifier.enabled:
            side.append(asyncio.create_task(self._systemd_watchdog(interval), name="watchdog"))
        stop: asyncio.Task[Any] = asyncio.create_task(self.stop_event.wait(), name="stop")
        done, _ = await asyncio.wait([stop, *claimers, *side], return_when="FIRST_COMPLETED")
        for task in done:
            if task is not stop and not task.cancelled() and task.exception() is not None:
                self.log.error("task_crashed", task=task.get_name(), exc_info=task.exception())
                self.exit_code = 1
        self.stop_event.set()
        await self._shutdown(claimers, side, stop)

    async def _shutdown(
        self,
        claimers: list[asyncio.Task[None]],
        side: list[asyncio.Task[None]],
        stop: asyncio.Task[Any],
    ) -> None:
        self.notifier.notify("STOPPING=1")
        in_flight = [t for t in claimers if t in self._busy_tasks]
        for task in claimers:
            if task not in self._busy_tasks:
                task.cancel()
        if in_flight:
            self.log.info(
                "draining", files=sorted(self.worker.in_hand), timeout=self.settings.drain_timeout
            )
            await asyncio.wait(in_flight, timeout=self.settings.drain_timeout)
        abandoned = sorted(self.worker.in_hand)
        checks = self.discovery.cancel_checks()
        for task in [*claimers, *side, *checks, stop]:
            task.cancel()
        await asyncio.gather(*claimers, *side, *checks, stop, return_exceptions=True)
        stranded = self.worker.stranded
        if stranded:
            # Their handlers run in threads that cannot be stopped. Giving the files back now
            # would let a peer start them while they still run here; so the claims stay held
            # (with the previous owner record put back: no attempt spent) and the process
            # ends at once, taking the threads with it.
            for claim in stranded.values():
                await asyncio.to_thread(_quietly_restore, claim)
            self.log.warning(
                "handler_still_running",
                files=sorted(stranded),
                action="exiting at once: the handler threads end with the process and the "
                "kernel releases their claims",
            )
            self.exit_now = True
        if self.publisher is not None:
            # What this worker finished last is not left for a peer; bounded, because a
            # peer's pass may hang on a dead NFS server, and then the next scan of a live
            # peer publishes it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._publish(), self.settings.drain_timeout)
        if self.exit_code != 2:  # else the heartbeat under our id is the other worker's
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.ledger.remove_heartbeat, self.settings.worker_id)
        with contextlib.suppress(OSError):
            await self._refresh_metrics()  # the final counts, for a scrape after the exit
        if self.worker.stats.count % 5:
            # The periodic line already said it when the count is a multiple of five.
            self.log.info("stats", **self.worker.stats.fields())
        self.log.info(
            "shutdown",
            files_processed=self.worker.stats.count,
            failed=self.worker.failed,
            taken_over=self.worker.redone,
            released_unfinished=[n for n in abandoned if n not in stranded],
            still_running=sorted(stranded),
            exit_code=self.exit_code,
        )

    async def _claim_loop(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self.stop_event.is_set():
            await self._resumed.wait()
            # A slot is a file being worked on. It is handed back when the handler is
            # through, so the next file is claimed while this one's record is being fsynced.
            await self._slots.acquire()
            slot = _Slot(self._slots)
            try:
                name = await self.discovery.ready.get()
                if self.stop_event.is_set():
                    return
                if self.paused:
                    self.discovery.ready.put(name)
                    continue
                # After a bookkeeping or environment failure the whole worker waits: a full
                # disk must cost one handler run per backoff, not one per file in the queue.
                if (delay := self.worker.stall.delay(time.monotonic())) > 0:
                    self.discovery.ready.put(name)
                    slot.release()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop_event.wait(), delay)
                    continue
                # The oldest few, tried in order in one go: when peers race for the same
                # oldest file, the loser takes the next one without another round trip.
                batch = [name, *self.discovery.ready.pop_many(CLAIM_BATCH - 1)]
                self._busy_tasks.add(me)
                try:
                    results = await self.worker.process_first(
                        batch, self.discovery.seen_at, self.discovery.ready.put, slot.release
                    )
                finally:
                    self._busy_tasks.discard(me)
            finally:
                slot.release()
            for tried, result in results.items():
                self.discovery.after(tried, result)
            self._idle_since = time.monotonic()
            if Result.DONE in results.values() or Result.FAILED in results.values():
                self.notifier.notify(f"STATUS={self._status_line()}")
                self._publish_wake.set()

    async def _check_pause(self) -> None:
        try:
            paused = await asyncio.to_thread(self.ledger.paused)
        except OSError:
            return  # the ledger is unreachable: keep what we knew (the rescan says why)
        if paused == self.paused:
            return
        self.paused = self.probes.paused = paused
        if paused:
            self._resumed.clear()
            self.log.info("paused", in_hand=sorted(self.worker.in_hand))
        else:
            self._resumed.set()
            self.log.info("resumed")
        self.notifier.notify(f"STATUS={self._status_line()}")

    async def _tick_loop(self) -> None:
        """The one wait point for background work: an event, the settle or rescan timer, or stop."""
        interval = self.settings.rescan_interval
        next_scan = time.monotonic() + interval
        while not self.stop_event.is_set():
            deadline = self.discovery.settling.next_deadline()
            wake_at = next_scan if deadline is None else min(next_scan, deadline)
            self.discovery.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.discovery.wake.wait(), max(wake_at - time.monotonic(), 0.0)
                )
            if self.stop_event.is_set():
                return
            await self.discovery.check_settling()
            if time.monotonic() >= next_scan:
                # +-10%: a fleet started together must not scan (list a bucket) in lockstep.
                next_scan = time.monotonic() + interval * random.uniform(0.9, 1.1)
                if self._watcher is not None:
                    self._watcher.ensure_alive()
                await self._check_pause()
                if await self._rescan() and self._watcher is not None:
                    # The directory came back, perhaps as a new mount: watch what is there now.
                    self._watcher.restart()
                self._check_idle()

    async def _rescan(self) -> bool:
        started = time.monotonic()
        recovered = await self.discovery.rescan()
        self._scan_seconds = time.monotonic() - started
        self.probes.scanned = True
        self.probes.source_error = self.discovery.scan_error
        # A pass at each scan too, when the scan saw something new: a peer may have died
        # between its commit and its pass.
        if self._view() != self._publish_view:
            self._publish_wake.set()
        return recovered

    def _view(self) -> tuple[int, int, int]:
        ledger = self.ledger
        return ledger.finished_count(), ledger.failed_count(), self.discovery.pending

    async def _publish_loop(self) -> None:
        """--publish-in-order: a pass after each file this worker finishes and each scan;
        wake-ups during a pass make one more pass, not one each."""
        while not self.stop_event.is_set():
            await self._publish_wake.wait()
            self._publish_wake.clear()
            await self._publish()

    async def _publish(self) -> None:
        assert self.publisher is not None
        view = self._view()
        try:
            report = await asyncio.to_thread(self.publisher.run)
        except (OSError, ValueError) as exc:
            self._publish_view = None  # the next scan tries again
            if self._publish_error is None:  # once per outage, not once per pass
                self.log.error("publish_failed", error=str(exc), retry="at the next scan")
            self._publish_error = str(exc)
            return
        if self._publish_error is not None:
            self.log.info("publish_recovered")
            self._publish_error = None
        for step in report.steps:
            if step.action is Action.PUBLISH:
                self.log.info("file_published", file=step.name, outputs=step.outputs)
            elif step.action is Action.LATE:
                watermark = report.marks.published.get(key_of(step.name))
                self.log.warning("published_late", file=step.name, outputs=step.outputs,
                                 watermark=watermark)  # fmt: skip
            elif step.action is Action.SKIP:
                self.log.warning("publish_skipped", file=step.name, reason="failed")
            else:
                self.log.debug("staging_discarded", file=step.name)
        self._published = report.marks.published
        self._publish_view = None if report.again else view
        if self.metrics is not None:
            moved = sum(1 for step in report.steps if step.action in (Action.PUBLISH, Action.LATE))
            self.metrics.publishing(moved, report.marks.published)
        if report.moved:
            self.log.debug("watermark", published=report.marks.published)
        if report.again:
            self._publish_wake.set()

    def _check_idle(self) -> None:
        busy = bool(self.worker.in_hand) or self.discovery.busy()
        now = time.monotonic()
        if busy:
            self._idle_since = now
            return
        limit = self.settings.exit_when_idle
        if limit is not None and now - self._idle_since >= limit and not self.stop_event.is_set():
            blocked = self.discovery.keys.blocked() if self.discovery.keys is not None else {}
            self.log.info(
                "idle_exit",
                idle_seconds=round(now - self._idle_since, 3),
                blocked_keys=blocked,  # their later files wait for a person, not for us
                left_waiting=self.discovery.blocked_pending,
            )
            self.request_stop()

    async def _heartbeat_loop(self) -> None:
        s = self.settings
        failing = False
        next_prune = time.monotonic()
        while True:
            try:
                if await self._id_taken():
                    return
                await asyncio.to_thread(self.ledger.write_heartbeat, self._beat())
            except OSError as exc:
                self.probes.beat_error = str(exc)
                if not failing:  # once per streak
                    self.log.warning("heartbeat_failed", error=str(exc))
                failing = True
            else:
                self.probes.last_beat, self.probes.beat_error = time.monotonic(), None
                if failing:
                    self.log.info("heartbeat_recovered")
                failing = False
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY
                pruned: list[str] = []
                with contextlib.suppress(OSError):
                    pruned = await asyncio.to_thread(self.ledger.prune_workers, PRUNE_AFTER)
                if pruned:
                    self.log.info("lost_workers_pruned", workers=pruned)
            await self._refresh_metrics()
            await asyncio.sleep(s.heartbeat_interval)

    async def _reassert_loop(self) -> None:
        """Check every held claim is still ours, often: a removed state dir takes the lock
        files with it, and each holder must put its own back before a peer may claim."""
        while True:
            await asyncio.sleep(REASSERT_EVERY)
            holds = list(self.worker.holds.items())
            if not holds:
                continue
            lost, again = await asyncio.to_thread(reassert_all, holds)
            for name in again:
                why = "its lock file left its path (the state dir removed?)"
                self.log.warning("claim_reasserted", file=name, reason=why)
            for name in lost:
                self.worker.lose(name)

    async def _id_taken(self) -> bool:
        """Whether another live process writes heartbeats under our id; the one that started
        later stops (exit 2), the other says so once and goes on."""
        s = self.settings
        other = await asyncio.to_thread(self.ledger.read_heartbeat, s.worker_id)
        if other is None or not other.instance:
            return False  # nobody, or a heartbeat from before instance ids
        if not _another_live_worker(other, s.host, self._instance):
            return False
        newer = (self._started_at, self._instance) > (other.started_at, other.instance)
        if newer or not self._id_clash_reported:
            self.log.error(
                "worker_id_in_use",
                other_host=other.host,
                other_pid=other.pid,
                action="stopping: started later" if newer else "going on: started first",
                hint="give each worker its own --worker-id",
            )
            self._id_clash_reported = True
        if newer:
            self.exit_code = 2
            self.request_stop(reason="worker_id_in_use")
        return newer

    async def _refresh_metrics(self) -> None:
        """Set the gauges, then rewrite the textfile (with each heartbeat, and at the end)."""
        if self.metrics is None:
            return
        from .metrics import Gauges, timestamp, write_textfile

        def fleet() -> tuple[int | None, int]:
            try:
                self.ledger.sync()  # the fleet's records, not only as of our last scan
                alive: int | None = sum(1 for b in self.ledger.workers() if not b.lost)
            except OSError:
                alive = None  # unknown this time: the gauge keeps its last value
            return alive, self.ledger.failed_count()

        alive, failed = await asyncio.to_thread(fleet)
        in_hand = self.worker.working
        waiting = [seen for name, seen in self.discovery.seen_at.items() if name not in in_hand]
        self.metrics.update(
            Gauges(
                in_progress=len(in_hand),
                pending=max(self.discovery.pending - len(in_hand), 0),
                paused=self.paused,
                oldest_pending=timestamp(min(waiting)) if waiting else None,
                ledger_files=self.ledger.finished_count(),
                scan_seconds=self._scan_seconds,
                workers_alive=alive,
                failed=failed,
            )
        )
        path = self.settings.metrics_textfile
        if path is None:
            return
        try:
            await asyncio.to_thread(write_textfile, path, self.metrics.exposition())
        except OSError as exc:
            if not self._metrics_failing:  # once per streak
                self.log.warning("metrics_write_failed", path=str(path), error=str(exc))
            self._metrics_failing = True
        else:
            if self._metrics_failing:
                self.log.info("metrics_write_recovered", path=str(path))
            self._metrics_failing = False

    def _beat(self) -> Heartbeat:
        s = self.settings
        now = time.monotonic()
        state = "draining" if self.stop_event.is_set() else ("paused" if self.paused else "running")
        fields = self.worker.stats.fields()
        return Heartbeat(
            worker=s.worker_id,
            host=s.host,
            pid=os.getpid(),
            version=__version__,
            started_at=self._started_at,
            state=state,
            interval=s.heartbeat_interval,
            in_hand={name: round(now - t, 3) for name, t in self.worker.working.items()},
            files_processed=int(fields["files_processed"]),
            total_time=float(fields["total_time"]),
            sum_of_squares=float(fields["sum_of_squares"]),
            blocked_keys=self.discovery.keys.blocked() if self.discovery.keys else {},
            published=dict(self._published),
            changed=dict(self.worker.changed_files),
            instance=self._instance,
            publish_error=self._publish_error,
        )

    async def _systemd_watchdog(self, interval: float) -> None:
        # Sent from the event loop on purpose: a loop that blocks stops the pings, and
        # systemd kills and restarts the worker.
        while True:
            self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _status_line(self) -> str:
        state = "paused" if self.paused else "running"
        return (
            f"{state}: {self.worker.stats.count} done, {len(self.worker.working)} in hand, "
            f"{self.discovery.pending} pending"
        )


def _another_live_worker(beat: Heartbeat, host: str, instance: str) -> bool:
    """A fresh heartbeat under our id that is not ours: another host, or a live PID here."""
    if beat.lost or (beat.instance and beat.instance == instance):
        return False
    if beat.host != host:
        return True
    pid = beat.pid
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # our own last run, killed a moment ago
    except PermissionError:
        return True
    return True


def _quietly_restore(hold: Hold) -> None:
    with contextlib.suppress(OSError):
        hold.restore()
