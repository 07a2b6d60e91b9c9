"""What the daemon tells the outside: Prometheus metrics (HTTP and a textfile, with the health
probes on the same port) and systemd's watchdog pings."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ingestd.contracts.errors import StartupError
from ingestd.core.backoff import Streak
from ingestd.core.daemon.shared import Shared
from ingestd.runtime.http import Pages

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from ingestd.runtime.metrics import WorkerMetrics


class Telemetry:
    def __init__(self, shared: Shared, pages: Pages | None = None) -> None:
        self.shared = shared
        self.pages = pages  # --console: served on the metrics port
        self.metrics: WorkerMetrics | None = None
        settings = shared.settings
        if settings.metrics_textfile is not None or settings.metrics_listen is not None:
            from ingestd.runtime.metrics import WorkerMetrics

            self.metrics = shared.processor.recording.metrics = WorkerMetrics()
        self._server: WSGIServer | None = None
        self._write_outage = Streak(base=0.0)

    def serve(self) -> None:
        """Start the HTTP endpoint (`--metrics-listen`); StartupError if it cannot listen."""
        listen = self.shared.settings.metrics_listen
        if self.metrics is None or listen is None:
            return
        from ingestd.runtime.metrics import serve

        try:
            self._server = serve(self.metrics, *listen, self.shared.probes, self.pages)
        except OSError as exc:  # the port is taken, the address is not ours: say so, exit 2
            raise StartupError(f"--metrics-listen {listen[0]}:{listen[1]}: {exc}") from None
        if self.pages is not None:
            self.pages.start()
        self.shared.log.info("metrics_listening", host=listen[0], port=listen[1],
                             console=self.pages is not None)  # fmt: skip

    def close(self) -> None:
        if self.pages is not None:
            self.pages.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    async def refresh(self, scan_seconds: float | None) -> None:
        """Set the gauges, then rewrite the textfile (with each heartbeat, and at the end)."""
        if self.metrics is None:
            return
        from ingestd.runtime.metrics import Gauges, timestamp

        shared = self.shared
        alive, failed = await asyncio.to_thread(self._fleet)
        in_hand = shared.processor.working
        waiting = [t for name, t in shared.discovery.seen_at.items() if name not in in_hand]
        self.metrics.update(
            Gauges(
                in_progress=len(in_hand),
                pending=max(shared.discovery.pending - len(in_hand), 0),
                paused=shared.paused,
                oldest_pending=timestamp(min(waiting)) if waiting else None,
                ledger_files=shared.ledger.finished_count(),
                scan_seconds=scan_seconds,
                workers_alive=alive,
                failed=failed,
            )
        )
        await self._write_textfile()

    def _fleet(self) -> tuple[int | None, int]:
        ledger = self.shared.ledger
        try:
            ledger.sync()  # the fleet's records, not only as of our last scan
            alive: int | None = sum(1 for b in ledger.workers() if not b.lost)
        except OSError:
            alive = None  # unknown this time: the gauge keeps its last value
        return alive, ledger.failed_count()

    async def _write_textfile(self) -> None:
        from ingestd.runtime.metrics import write_textfile

        path = self.shared.settings.metrics_textfile
        if path is None or self.metrics is None:
            return
        log = self.shared.log
        try:
            await asyncio.to_thread(write_textfile, path, self.metrics.exposition())
        except OSError as exc:
            if self._write_outage.fail(time.monotonic()):  # once per streak
                log.warning("metrics_write_failed", path=str(path), error=str(exc))
        else:
            if self._write_outage.succeed():
                log.info("metrics_write_recovered", path=str(path))

    async def systemd_watchdog(self, interval: float) -> None:
        # Sent from the event loop on purpose: a loop that blocks stops the pings, and
        # systemd kills and restarts the worker.
        while True:
            self.shared.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(interval)
