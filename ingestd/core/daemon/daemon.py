"""The daemon's lifecycle: wait for the source, start, run the services, shut down.

One process runs a small set of named tasks: `tick` (rescans and settle checks, pause flag,
observer health, idle exit: the one place that waits for "event, timer or stop"), `claim-N`
(take the oldest ready files and process one through `Processor`), `heartbeat`, `reassert`,
under systemd `watchdog`, and with `--publish-in-order` `publish`. Signal handlers only set
the stop event; shutdown happens in `run`, bounded by `--drain-timeout`. If a task dies, the
daemon stops loudly instead of limping on. It knows no backend: the composition root builds
the source, the ledger and the handler and hands them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any

from ingestd import __version__
from ingestd.contracts.errors import StartupError
from ingestd.contracts.handler import Handler
from ingestd.contracts.ledger import Hold, Ledger
from ingestd.contracts.source import Source
from ingestd.core.daemon import waiting
from ingestd.core.daemon.claiming import Claiming
from ingestd.core.daemon.heartbeats import Heartbeats
from ingestd.core.daemon.publishing import Publishing
from ingestd.core.daemon.shared import Shared
from ingestd.core.daemon.telemetry import Telemetry
from ingestd.core.daemon.ticking import Ticking
from ingestd.core.discovery import Discovery
from ingestd.core.processor import Processor
from ingestd.core.publishing.publisher import Publisher
from ingestd.core.threads import HandlerThreads
from ingestd.runtime import logs
from ingestd.runtime.http import Pages
from ingestd.runtime.logs import Log
from ingestd.runtime.probes import Probes
from ingestd.runtime.settings import Settings
from ingestd.runtime.systemd import Notifier, watchdog_interval

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
        options: Any = None,
        pages: Pages | None = None,
    ) -> None:
        self.threads = HandlerThreads(settings.concurrency)
        processor = Processor(
            settings, ledger, source, handler, log, threads=self.threads, options=options
        )
        self.shared = Shared(
            settings, source, ledger, log, processor,
            Discovery(settings, ledger, source, processor, log),
            notifier or Notifier(), Probes(settings.heartbeat_interval), self.request_stop,
        )  # fmt: skip
        self.checks = checks or []  # start-up checks besides the ledger's (a handler's)
        # Set when handler threads outlive the drain: the caller must end the process at once
        # (os._exit), so the threads die and the kernel releases their claims.
        self.exit_now = False
        self.telemetry = Telemetry(self.shared, pages)
        self.publishing = (
            None
            if publisher is None
            else Publishing(self.shared, publisher, self.telemetry.metrics)
        )
        self.claiming = Claiming(self.shared, self._wake_publishing)
        self.ticking = Ticking(self.shared, self.claiming, self._after_scan)
        self.heartbeats = Heartbeats(
            self.shared,
            lambda: self.telemetry.refresh(self.ticking.scan_seconds),
            lambda: (
                ({}, None)
                if self.publishing is None
                else (self.publishing.published, self.publishing.error)
            ),
        )

    # What callers and tests reach through the daemon.
    @property
    def processor(self) -> Processor:
        return self.shared.processor

    @property
    def ledger(self) -> Ledger:
        return self.shared.ledger

    def _wake_publishing(self, finished: list[str]) -> None:
        if self.publishing is not None:
            self.publishing.publisher.note_finished(finished)
            self.publishing.wake.set()

    def _after_scan(self) -> None:
        if self.publishing is not None:
            self.publishing.after_scan()

    # ---- entry point ----

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.request_stop, signum)
        logs.on_output_closed(
            lambda: loop.call_soon_threadsafe(self.request_stop, None, "log output closed")
        )
        try:
            self.telemetry.serve()
            return await self._run()
        finally:
            self.telemetry.close()
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            logs.on_output_closed(None)
            self.threads.shutdown()
            self.shared.notifier.close()
            self.shared.ledger.close()

    def request_stop(self, signum: int | None = None, reason: str | None = None) -> None:
        """Begin a graceful stop; a second signal ends the process at once."""
        shared = self.shared
        name = signal.Signals(signum).name if signum else None
        if shared.stop_event.is_set():
            if signum is not None:
                # The operator insists. Exiting is safe at any instant: the kernel drops our
                # locks, and the files in hand are taken over with this attempt counted.
                in_hand = sorted(shared.processor.in_hand)
                shared.log.warning("forced_exit", signal=name, in_hand=in_hand)
                logs.flush()
                os._exit(128 + signum)
            return
        if signum == signal.SIGINT:
            shared.exit_code = 128 + signum  # 130, as shells expect after Ctrl-C
        shared.log.info(
            "stop_requested",
            signal=name,
            reason=reason,
            drain_timeout=shared.settings.drain_timeout,
            hint="send it again to exit at once" if signum is not None else None,
        )
        shared.stop_event.set()
        shared.discovery.wake.set()

    async def _run(self) -> int:
        shared = self.shared
        s = shared.settings
        shared.log.info("worker_started", version=__version__, source=shared.source.description,
                        ledger=shared.ledger.description, concurrency=s.concurrency,
                        seconds_in_min=s.seconds_in_min, handler=s.handler,
                        pid=os.getpid())  # fmt: skip
        if not await waiting.wait_for_source(shared):
            shared.log.info("shutdown", reason="stopped while waiting for the directory")
            return shared.exit_code
        # Events start the moment the directory is there: before the ledger is prepared and
        # before the first scan (which syncs the ledger), so no file can land unseen, and the
        # first files' close events are seen (else they wait a settle period).
        watcher = shared.source.watch(asyncio.get_running_loop(), shared.discovery.on_event,
                                      shared.log)  # fmt: skip
        self.ticking.watcher = watcher
        if watcher is not None:
            watcher.start()
        try:
            if not await waiting.prepare_ledger(shared):
                shared.log.info("shutdown", reason="stopped while waiting for the ledger")
                return shared.exit_code
            await self._start()
            await self._serve()
        finally:
            if watcher is not None:
                watcher.stop()
        return shared.exit_code

    async def _start(self) -> None:
        """The checks, the first scan, READY."""
        shared = self.shared
        s = shared.settings
        for check in self.checks:
            await asyncio.to_thread(check)
        if (other := await self.heartbeats.check_id_at_start()) is not None:
            # Two live workers under one id (an id set in a config file copied to two hosts,
            # or given twice on one): their heartbeats overwrite each other and `verify`
            # mixes up their totals. The PostgreSQL ledger refuses it in `prepare` already
            # (a lock on the id); this is every ledger's check.
            raise StartupError(
                f"worker_id_in_use: a live worker has the id {s.worker_id!r} (host "
                f"{other.host}, pid {other.pid}): give each worker its own --worker-id"
            )
        await self.claiming.check_pause()
        await self.ticking.rescan()
        shared.notifier.notify("READY=1", f"STATUS={shared.status_line()}")
        shared.log.info(
            "ready", pending=shared.discovery.pending, known=shared.ledger.finished_count()
        )

    # ---- the running daemon ----

    async def _serve(self) -> None:
        shared = self.shared
        # One claim task more than there are slots: it claims the next file while another
        # task appends its finished file's record.
        claimers = [
            asyncio.create_task(self.claiming.loop(), name=f"claim-{i}")
            for i in range(shared.settings.concurrency + 1)
        ]
        side = [
            asyncio.create_task(self.ticking.loop(), name="tick"),
            asyncio.create_task(self.heartbeats.loop(), name="heartbeat"),
            asyncio.create_task(self.heartbeats.reassert_loop(), name="reassert"),
        ]
        if self.publishing is not None:
            side.append(asyncio.create_task(self.publishing.loop(), name="publish"))
        interval = watchdog_interval()
        if interval is not None and shared.notifier.enabled:
            watchdog = self.telemetry.systemd_watchdog(interval)
            side.append(asyncio.create_task(watchdog, name="watchdog"))
        stop: asyncio.Task[Any] = asyncio.create_task(shared.stop_event.wait(), name="stop")
        done, _ = await asyncio.wait([stop, *claimers, *side], return_when="FIRST_COMPLETED")
        for task in done:
            if task is not stop and not task.cancelled() and task.exception() is not None:
                shared.log.error("task_crashed", task=task.get_name(), exc_info=task.exception())
                shared.exit_code = 1
        shared.stop_event.set()
        await self._shutdown(claimers, side, stop)

    async def _shutdown(
        self,
        claimers: list[asyncio.Task[None]],
        side: list[asyncio.Task[None]],
        stop: asyncio.Task[Any],
    ) -> None:
        shared = self.shared
        shared.notifier.notify("STOPPING=1")
        await self._drain(claimers)
        abandoned = sorted(shared.processor.in_hand)
        checks = shared.discovery.cancel_checks()
        for task in [*claimers, *side, *checks, stop]:
            task.cancel()
        await asyncio.gather(*claimers, *side, *checks, stop, return_exceptions=True)
        stranded = await self._keep_stranded()
        if self.publishing is not None:
            # What this worker finished last is not left for a peer; bounded, because a
            # peer's pass may hang on a dead NFS server, and then the next scan of a live
            # peer publishes it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.publishing.run_pass(), shared.settings.drain_timeout)
        if shared.exit_code != 2:  # else the heartbeat under our id is the other worker's
            with contextlib.suppress(OSError):
                await asyncio.to_thread(shared.ledger.remove_heartbeat, shared.settings.worker_id)
        with contextlib.suppress(OSError):
            await self.telemetry.refresh(self.ticking.scan_seconds)  # for a scrape after exit
        self._final_log(abandoned, stranded)

    async def _drain(self, claimers: list[asyncio.Task[None]]) -> None:
        """Let the files in hand finish, up to --drain-timeout; idle claim tasks just end."""
        busy = self.claiming.busy
        in_flight = [t for t in claimers if t in busy]
        for task in claimers:
            if task not in busy:
                task.cancel()
        if in_flight:
            timeout = self.shared.settings.drain_timeout
            in_hand = sorted(self.shared.processor.in_hand)
            self.shared.log.info("draining", files=in_hand, timeout=timeout)
            await asyncio.wait(in_flight, timeout=timeout)

    async def _keep_stranded(self) -> dict[str, Hold]:
        """Files whose handlers still run in threads that cannot be stopped. Giving them back
        now would let a peer start them while they still run here; so their claims stay held
        (with the previous owner record put back: no attempt spent) and the process ends at
        once, taking the threads with it."""
        stranded = self.shared.processor.stranded
        if stranded:
            for claim in stranded.values():
                await asyncio.to_thread(_quietly_restore, claim)
            self.shared.log.warning(
                "handler_still_running",
                files=sorted(stranded),
                action="exiting at once: the handler threads end with the process and the "
                "kernel releases their claims",
            )
            self.exit_now = True
        return stranded

    def _final_log(self, abandoned: list[str], stranded: dict[str, Hold]) -> None:
        shared = self.shared
        processor = shared.processor
        if processor.recording.stats.count % 5:
            # The periodic line already said it when the count is a multiple of five.
            shared.log.info("stats", **processor.recording.stats.fields())
        shared.log.info(
            "shutdown",
            files_processed=processor.recording.stats.count,
            failed=processor.recording.failed,
            taken_over=processor.redone,
            released_unfinished=[n for n in abandoned if n not in stranded],
            still_running=sorted(stranded),
            exit_code=shared.exit_code,
        )


def _quietly_restore(hold: Hold) -> None:
    with contextlib.suppress(OSError):
        hold.restore()
