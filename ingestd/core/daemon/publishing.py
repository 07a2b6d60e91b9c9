"""`--publish-in-order` in the daemon: a pass after each file this worker finishes and after
each scan that saw something new; wake-ups during a pass make one more pass, not one each."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ingestd.contracts.naming import key_of
from ingestd.core.backoff import Streak
from ingestd.core.daemon.shared import Shared
from ingestd.core.publishing.plan import Action
from ingestd.core.publishing.publisher import PassReport, Publisher

if TYPE_CHECKING:
    from ingestd.runtime.metrics import WorkerMetrics


class Publishing:
    def __init__(self, shared: Shared, publisher: Publisher, metrics: WorkerMetrics | None) -> None:
        self.shared = shared
        self.publisher = publisher
        self.metrics = metrics
        self.wake = asyncio.Event()
        self.published: dict[str, str] = {}  # the watermark after this worker's last pass
        self.error: str | None = None  # why the last pass failed; heartbeats carry it
        self._outage = Streak(base=0.0)
        # What the last good pass saw (finished, failed, pending): a scan that changed none
        # of it cannot let anything be published, and need not list the source again.
        self._view: tuple[int, int, int] | None = None

    def view(self) -> tuple[int, int, int]:
        ledger = self.shared.ledger
        return ledger.finished_count(), ledger.failed_count(), self.shared.discovery.pending

    def after_scan(self) -> None:
        """A pass at each scan too, when the scan saw something new: a peer may have died
        between its commit and its pass."""
        if self.view() != self._view:
            self.wake.set()

    async def loop(self) -> None:
        while not self.shared.stop_event.is_set():
            await self.wake.wait()
            self.wake.clear()
            await self.run_pass()

    async def run_pass(self) -> None:
        log = self.shared.log
        view = self.view()
        try:
            report = await asyncio.to_thread(self.publisher.run)
        except (OSError, ValueError) as exc:
            self._view = None  # the next scan tries again
            if self._outage.fail(time.monotonic()):  # once per outage, not once per pass
                log.error("publish_failed", error=str(exc), retry="at the next scan")
            self.error = str(exc)
            return
        if self._outage.succeed():
            log.info("publish_recovered")
        self.error = None
        self._log_steps(report)
        self.published = report.marks.published
        self._view = None if report.again else view
        if self.metrics is not None:
            moved = sum(1 for step in report.steps if step.action in (Action.PUBLISH, Action.LATE))
            self.metrics.publishing(moved, report.marks.published)
        if report.moved:
            log.debug("watermark", published=report.marks.published)
        if report.again:
            self.wake.set()

    def _log_steps(self, report: PassReport) -> None:
        log = self.shared.log
        for step in report.steps:
            if step.action is Action.PUBLISH:
                log.info("file_published", file=step.name, outputs=step.outputs)
            elif step.action is Action.LATE:
                watermark = report.marks.published.get(key_of(step.name))
                log.warning("published_late", file=step.name, outputs=step.outputs,
                            watermark=watermark)  # fmt: skip
            elif step.action is Action.SKIP:
                log.warning("publish_skipped", file=step.name, reason="failed")
            else:
                log.debug("staging_discarded", file=step.name)
