"""`ingestd health DIR`: the liveness (and, with `--ready`, readiness) probe.

Live: the worker's heartbeat is fresh by the ledger's clock (younger than three of its own
intervals). The heartbeat is written by a task on the worker's event loop, so a fresh one also
says the loop is making progress: a blocked loop stops writing it. Without `--worker`, every
worker on this host is judged, except a lost one that was replaced: a live worker on the same
host started after its last heartbeat (a crash and a restart under systemd, where each run has
its own default HOST:PID id). A lost worker nothing replaced is this host's verdict.

Ready, besides: the source can be read, the state dir can be written (or the PostgreSQL ledger
answers) and the fleet is not paused. Exit 0 and one line saying so, or exit 1 and one line
saying why; usable as a container HEALTHCHECK or an exec probe as it is.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from datetime import datetime

from ingestd.contracts.errors import StartupError
from ingestd.contracts.ledger import STALE_AFTER_BEATS, Heartbeat, Inspector
from ingestd.contracts.source import Source


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    line: str


def replaced(lost: Heartbeat, beats: list[Heartbeat], now: float | None = None) -> bool:
    """Whether a live worker on `lost`'s host started after `lost`'s last heartbeat. Pure."""
    now = time.time() if now is None else now
    last_beat = now - lost.age_seconds
    for beat in beats:
        if beat.lost or beat.host != lost.host or beat.worker == lost.worker:
            continue
        try:
            started = datetime.fromisoformat(beat.started_at).timestamp()
        except ValueError:
            continue
        if started >= last_beat - 1.0:  # a second of slack for the two clocks' readings
            return True
    return False


def live(beats: list[Heartbeat], worker: str | None, host: str | None = None) -> Verdict:
    """Whether `worker` (default: every worker on this host, less the replaced) has a fresh
    heartbeat. Pure."""
    host = host or socket.gethostname()
    chosen = [b for b in beats if b.worker == worker] if worker else [
        b for b in beats if b.host == host and not (b.lost and replaced(b, beats))
    ]  # fmt: skip
    if not chosen:
        who = f"worker {worker}" if worker else f"no worker on {host}"
        return Verdict(False, f"{who}: no heartbeat" if worker else f"{who} has a heartbeat")
    for beat in chosen:
        if beat.lost:
            return Verdict(False, f"{beat.worker}: heartbeat {beat.age_seconds:.0f} s old, "
                           f"stale after {STALE_AFTER_BEATS * beat.interval:g} s")  # fmt: skip
    ages = ", ".join(f"{b.worker} {b.age_seconds:.1f} s" for b in chosen)
    return Verdict(True, f"live: heartbeat {ages} old")


def ready(source: Source, inspector: Inspector, writable: Exception | None) -> Verdict:
    """The readiness checks beyond liveness; `writable` is what probing the state dir raised."""
    try:
        if not source.exists():
            return Verdict(False, f"source {source.description} cannot be read")
    except StartupError as exc:
        return Verdict(False, str(exc))
    if writable is not None:
        return Verdict(False, f"state cannot be written: {writable}")
    if inspector.paused():
        return Verdict(False, "paused (ingestd resume DIR)")
    return Verdict(True, "ready")
