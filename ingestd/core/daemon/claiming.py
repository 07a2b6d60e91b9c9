"""The claim loop: take the oldest ready files and process one, `--concurrency` at a time;
and the fleet's pause, which stops new claims (files in hand finish)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ingestd.core.daemon.shared import Shared
from ingestd.core.recording import Result

CLAIM_BATCH = 8  # the oldest few, tried in order in one go


class _Slot:
    """One hold on the semaphore of files in work, released exactly once."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore: asyncio.Semaphore | None = semaphore

    def release(self) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


class Claiming:
    def __init__(self, shared: Shared, on_finished: Callable[[list[str]], None]) -> None:
        self.shared = shared
        # Files were done or failed (publishing notes them, then runs a pass).
        self._on_finished = on_finished
        self._slots = asyncio.Semaphore(shared.settings.concurrency)
        self.busy: set[asyncio.Task[None]] = set()  # claim tasks with a file in hand
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.active_at = time.monotonic()  # when a claim task last finished something

    async def loop(self) -> None:
        """One claim task: there are `--concurrency` + 1 of them, so the next file is claimed
        while another task appends its finished file's record."""
        me = asyncio.current_task()
        assert me is not None
        shared = self.shared
        discovery, processor = shared.discovery, shared.processor
        while not shared.stop_event.is_set():
            await self._resumed.wait()
            # A slot is a file being worked on. It is handed back when the handler is
            # through, so the next file is claimed while this one's record is being fsynced.
            await self._slots.acquire()
            slot = _Slot(self._slots)
            try:
                name = await discovery.ready.get()
                if shared.stop_event.is_set():
                    return
                if shared.paused:
                    discovery.ready.put(name)
                    continue
                # After a bookkeeping or environment failure the whole worker waits: a full
                # disk must cost one handler run per backoff, not one per file in the queue.
                if (delay := processor.recording.stall.delay(time.monotonic())) > 0:
                    discovery.ready.put(name)
                    slot.release()
                    await shared.wait(delay)
                    continue
                # When peers race for the same oldest file, the loser takes the next one
                # without another round trip.
                batch = [name, *discovery.ready.pop_many(CLAIM_BATCH - 1)]
                self.busy.add(me)
                try:
                    results = await processor.process_first(
                        batch, discovery.seen_at, discovery.ready.put, slot.release
                    )
                finally:
                    self.busy.discard(me)
            finally:
                slot.release()
            self._after(results)

    def _after(self, results: dict[str, Result]) -> None:
        for tried, result in results.items():
            self.shared.discovery.after(tried, result)
        self.active_at = time.monotonic()
        finished = [n for n, r in results.items() if r in (Result.DONE, Result.FAILED)]
        if finished:
            self.shared.notifier.notify(f"STATUS={self.shared.status_line()}")
            self._on_finished(finished)

    async def check_pause(self) -> None:
        """Follow the fleet's pause flag (`ingestd pause`/`resume`)."""
        shared = self.shared
        try:
            paused = await asyncio.to_thread(shared.ledger.paused)
        except OSError:
            return  # the ledger is unreachable: keep what we knew (the rescan says why)
        if paused == shared.paused:
            return
        shared.paused = shared.probes.paused = paused
        if paused:
            self._resumed.clear()
            shared.log.info("paused", in_hand=sorted(shared.processor.in_hand))
        else:
            self._resumed.set()
            shared.log.info("resumed")
        shared.notifier.notify(f"STATUS={shared.status_line()}")
