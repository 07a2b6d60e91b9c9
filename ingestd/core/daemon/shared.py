"""What the daemon's services share: the backends, file processing, discovery, the stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from ingestd.contracts.ledger import Ledger
from ingestd.contracts.source import Source
from ingestd.core.discovery import Discovery
from ingestd.core.processor import Processor
from ingestd.runtime.logs import Log
from ingestd.runtime.probes import Probes
from ingestd.runtime.settings import Settings
from ingestd.runtime.systemd import Notifier


@dataclass
class Shared:
    settings: Settings
    source: Source
    ledger: Ledger
    log: Log
    processor: Processor
    discovery: Discovery
    notifier: Notifier
    probes: Probes
    # Begin a graceful stop: (signal number, reason); the daemon's `request_stop`.
    request_stop: Callable[[int | None, str | None], None]
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    paused: bool = False
    exit_code: int = 0

    def status_line(self) -> str:
        """What systemd shows as the unit's status."""
        state = "paused" if self.paused else "running"
        return (
            f"{state}: {self.processor.recording.stats.count} done, "
            f"{len(self.processor.working)} in hand, {self.discovery.pending} pending"
        )

    async def wait(self, timeout: float, event: asyncio.Event | None = None) -> None:
        """Until `event` (if any), a stop request, or `timeout`, whichever comes first."""
        waiters = [asyncio.ensure_future(self.stop_event.wait())]
        if event is not None:
            waiters.append(asyncio.ensure_future(event.wait()))
        try:
            await asyncio.wait(waiters, timeout=max(timeout, 0.0),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            for waiter in waiters:
                waiter.cancel()
