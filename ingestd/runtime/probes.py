"""A running worker's own liveness and readiness, for the HTTP probes on `--metrics-listen`.

The same verdicts as `ingestd health [--ready]`, judged from inside: live while heartbeats
are written on time (a task on the event loop writes them, so a blocked loop or a ledger that
no longer takes them stops them); ready besides when the last scan could read the source and
the fleet is not paused. Updated by the daemon, read by the server's threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ingestd.contracts.ledger import STALE_AFTER_BEATS
from ingestd.runtime.health import Verdict


@dataclass
class Probes:
    interval: float  # the heartbeat interval
    started: float = 0.0  # monotonic: before the first beat, a worker starting is live
    last_beat: float | None = None  # monotonic time of the last heartbeat written
    beat_error: str | None = None
    source_error: str | None = None  # why the last scan failed
    scanned: bool = False  # a scan has completed
    paused: bool = False

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    def live(self, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        stale = STALE_AFTER_BEATS * self.interval
        since = now - (self.last_beat if self.last_beat is not None else self.started)
        if since > stale:
            why = f": {self.beat_error}" if self.beat_error else ""
            return Verdict(False, f"no heartbeat written for {since:.0f} s{why}")
        return Verdict(True, f"live: heartbeat {since:.1f} s old")

    def ready(self, now: float | None = None) -> Verdict:
        verdict = self.live(now)
        if not verdict.healthy:
            return verdict
        if self.source_error is not None:
            return Verdict(False, f"source cannot be read: {self.source_error}")
        if not self.scanned:
            return Verdict(False, "starting: no scan yet")
        if self.paused:
            return Verdict(False, "paused (ingestd resume DIR)")
        return Verdict(True, "ready")
