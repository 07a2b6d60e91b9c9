"""Before the daemon starts: wait for the source to exist and for the ledger to answer.

Neither is ever created or given up on: DIR may be an NFS mount still to come, a database may
still be starting. Both are said once per `LOG_EVERY`, not once per try.
"""

from __future__ import annotations

import asyncio
import time

from ingestd.contracts.errors import StartupError
from ingestd.contracts.source import Watch
from ingestd.core.daemon.shared import Shared

LOG_EVERY = 30.0


async def prepare_ledger(shared: Shared) -> bool:
    """Prepare the ledger; one that is not up yet is waited for, never a restart loop.
    False: stopped while waiting."""
    last_log = -LOG_EVERY
    while True:
        try:
            await asyncio.to_thread(shared.ledger.prepare)
            return True
        except StartupError:
            raise
        except OSError as exc:
            now = time.monotonic()
            if now - last_log >= LOG_EVERY:
                shared.log.warning(
                    "waiting_for_ledger", ledger=shared.ledger.description, error=str(exc)
                )
                last_log = now
        await shared.wait(shared.settings.rescan_interval)
        if shared.stop_event.is_set():
            return False


async def wait_for_source(shared: Shared) -> bool:
    """Wait for the source to exist, never creating it. False: stopped, or idle too long.

    Where the source can tell (a directory), the nearest existing parent is watched, so a
    local mkdir is noticed at once; the poll every rescan interval stays for what sends no
    event (another host's mkdir on NFS).
    """
    source, settings = shared.source, shared.settings
    last_log = -LOG_EVERY
    started = time.monotonic()
    limit = settings.exit_when_idle
    wake = asyncio.Event()
    appear: Watch | None = None
    tried = False
    try:
        while not await asyncio.to_thread(source.exists):
            if not tried:
                tried = True
                appear = source.watch_appearance(asyncio.get_running_loop(), wake.set)
                if appear is not None and appear.start():
                    continue  # look again now the watch is on: no mkdir falls between
                appear = None
            elif appear is not None:
                appear.restart()  # a parent appeared: follow the path one level deeper
                if await asyncio.to_thread(source.exists):
                    break  # made while the watch moved
            now = time.monotonic()
            if limit is not None and now - started >= limit:
                # Nothing to do for that long: a batch run whose directory never came.
                shared.log.info(
                    "idle_exit", idle_seconds=round(now - started, 3), waited_for_dir=True
                )
                return False
            if now - last_log >= LOG_EVERY:
                shared.log.warning("waiting_for_directory", source=source.description)
                last_log = now
            timeout = settings.rescan_interval
            if limit is not None:
                timeout = min(timeout, max(limit - (now - started), 0.0))
            await shared.wait(timeout, wake)
            wake.clear()
            if shared.stop_event.is_set():
                return False
    finally:
        if appear is not None:
            appear.stop()
    return True
