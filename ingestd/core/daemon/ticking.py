"""The one wait point for background work: an event, the settle or rescan timer, or a stop.

Each rescan also checks the pause flag and the event observer, and ends an idle worker
(`--exit-when-idle`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ingestd.contracts.source import Watch
from ingestd.core.daemon.claiming import Claiming
from ingestd.core.daemon.shared import Shared


class Ticking:
    def __init__(self, shared: Shared, claiming: Claiming, on_scanned: Callable[[], None]):
        self.shared = shared
        self.claiming = claiming
        self._on_scanned = on_scanned  # after each scan (publishing looks at what changed)
        self.watcher: Watch | None = None
        self.scan_seconds: float | None = None  # how long the last scan took

    async def loop(self) -> None:
        shared = self.shared
        discovery = shared.discovery
        interval = shared.settings.rescan_interval
        next_scan = time.monotonic() + interval
        while not shared.stop_event.is_set():
            deadline = discovery.settling.next_deadline()
            wake_at = next_scan if deadline is None else min(next_scan, deadline)
            discovery.wake.clear()
            await shared.wait(wake_at - time.monotonic(), discovery.wake)
            if shared.stop_event.is_set():
                return
            await discovery.check_settling()
            if time.monotonic() >= next_scan:
                # +-10%: a fleet started together must not scan (list a bucket) in lockstep.
                next_scan = time.monotonic() + interval * random.uniform(0.9, 1.1)
                await self._scan_tick()

    async def _scan_tick(self) -> None:
        if self.watcher is not None:
            self.watcher.ensure_alive()
        await self.claiming.check_pause()
        if await self.rescan() and self.watcher is not None:
            # The directory came back, perhaps as a new mount: watch what is there now.
            self.watcher.restart()
        self.check_idle()

    async def rescan(self) -> bool:
        """One scan; True when the source came back after failing."""
        started = time.monotonic()
        recovered = await self.shared.discovery.rescan()
        self.scan_seconds = time.monotonic() - started
        self.shared.probes.scanned = True
        self.shared.probes.source_error = self.shared.discovery.scan_error
        self._on_scanned()
        return recovered

    def check_idle(self) -> None:
        shared = self.shared
        discovery = shared.discovery
        now = time.monotonic()
        if shared.processor.in_hand or discovery.busy():
            self.claiming.active_at = now
            return
        limit = shared.settings.exit_when_idle
        idle = now - self.claiming.active_at
        if limit is not None and idle >= limit and not shared.stop_event.is_set():
            shared.log.info(
                "idle_exit",
                idle_seconds=round(idle, 3),
                # Their later files wait for a person, not for us.
                blocked_keys=discovery.keys.blocked() if discovery.keys is not None else {},
                left_waiting=discovery.blocked_pending,
            )
            shared.request_stop(None, None)
