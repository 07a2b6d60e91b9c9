"""Heartbeats: this worker's beat in the ledger (what `status`, `health` and peers read),
pruning of long-lost workers, one worker id used by two live processes, and the claims this
worker holds checked often enough that a removed state dir costs nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable

from ingestd import __version__
from ingestd.contracts.ledger import PRUNE_AFTER, REASSERT_EVERY, Heartbeat
from ingestd.core.backoff import Streak
from ingestd.core.daemon.shared import Shared
from ingestd.core.processor import reassert_all
from ingestd.core.recording import utc_now

PRUNE_EVERY = 60.0  # how often lost workers' heartbeats older than PRUNE_AFTER are removed


class Heartbeats:
    def __init__(
        self,
        shared: Shared,
        refresh_metrics: Callable[[], Awaitable[None]],
        publishing_state: Callable[[], tuple[dict[str, str], str | None]],
    ) -> None:
        self.shared = shared
        self._refresh_metrics = refresh_metrics  # an awaitable, with each beat
        self._publishing_state = publishing_state  # (watermark, error) for the beat
        self.started_at = utc_now()
        # This process, among any that share its worker id: heartbeats carry it, so two
        # processes under one id are seen whenever it happens, not only at start-up.
        self.instance = secrets.token_hex(8)
        self._outage = Streak(base=0.0)
        self._id_clash_reported = False

    async def check_id_at_start(self) -> Heartbeat | None:
        """Another live worker's heartbeat under our id, if there is one now."""
        s = self.shared.settings
        other = await asyncio.to_thread(self.shared.ledger.read_heartbeat, s.worker_id)
        if other is not None and another_live_worker(other, s.host, self.instance):
            return other
        return None

    async def loop(self) -> None:
        shared = self.shared
        next_prune = time.monotonic()
        while True:
            try:
                if await self._id_taken():
                    return
                await asyncio.to_thread(shared.ledger.write_heartbeat, self.beat())
            except OSError as exc:
                shared.probes.beat_error = str(exc)
                if self._outage.fail(time.monotonic()):  # once per streak
                    shared.log.warning("heartbeat_failed", error=str(exc))
            else:
                shared.probes.last_beat, shared.probes.beat_error = time.monotonic(), None
                if self._outage.succeed():
                    shared.log.info("heartbeat_recovered")
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY
                await self._prune()
            await self._refresh_metrics()
            await asyncio.sleep(shared.settings.heartbeat_interval)

    async def _prune(self) -> None:
        pruned: list[str] = []
        with contextlib.suppress(OSError):
            pruned = await asyncio.to_thread(self.shared.ledger.prune_workers, PRUNE_AFTER)
        if pruned:
            self.shared.log.info("lost_workers_pruned", workers=pruned)

    async def reassert_loop(self) -> None:
        """Check every held claim is still ours, often: a removed state dir takes the lock
        files with it, and each holder must put its own back before a peer may claim."""
        processor = self.shared.processor
        while True:
            await asyncio.sleep(REASSERT_EVERY)
            holds = list(processor.holds.items())
            if not holds:
                continue
            lost, again = await asyncio.to_thread(reassert_all, holds)
            for name in again:
                why = "its lock file left its path (the state dir removed?)"
                self.shared.log.warning("claim_reasserted", file=name, reason=why)
            for name in lost:
                processor.lose(name)

    async def _id_taken(self) -> bool:
        """Whether another live process writes heartbeats under our id; the one that started
        later stops (exit 2), the other says so once and goes on."""
        shared = self.shared
        s = shared.settings
        other = await asyncio.to_thread(shared.ledger.read_heartbeat, s.worker_id)
        if other is None or not other.instance:
            return False  # nobody, or a heartbeat from before instance ids
        if not another_live_worker(other, s.host, self.instance):
            return False
        newer = (self.started_at, self.instance) > (other.started_at, other.instance)
        if newer or not self._id_clash_reported:
            shared.log.error(
                "worker_id_in_use",
                other_host=other.host,
                other_pid=other.pid,
                action="stopping: started later" if newer else "going on: started first",
                hint="give each worker its own --worker-id",
            )
            self._id_clash_reported = True
        if newer:
            shared.exit_code = 2
            shared.request_stop(None, "worker_id_in_use")
        return newer

    def beat(self) -> Heartbeat:
        shared = self.shared
        s = shared.settings
        processor, discovery = shared.processor, shared.discovery
        now = time.monotonic()
        state = "paused" if shared.paused else "running"
        fields = processor.recording.stats.fields()
        published, publish_error = self._publishing_state()
        return Heartbeat(
            worker=s.worker_id,
            host=s.host,
            pid=os.getpid(),
            version=__version__,
            started_at=self.started_at,
            state="draining" if shared.stop_event.is_set() else state,
            interval=s.heartbeat_interval,
            in_hand={name: round(now - t, 3) for name, t in processor.working.items()},
            files_processed=int(fields["files_processed"]),
            total_time=float(fields["total_time"]),
            sum_of_squares=float(fields["sum_of_squares"]),
            blocked_keys=discovery.keys.blocked() if discovery.keys else {},
            published=dict(published),
            changed=dict(processor.recording.changed_files),
            instance=self.instance,
            publish_error=publish_error,
        )


def another_live_worker(beat: Heartbeat, host: str, instance: str) -> bool:
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
