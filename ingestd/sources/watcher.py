"""The local source's event stream: a watchdog observer for quick notice of new files.

The observer runs on its own thread and only hands events to the event loop with
`loop.call_soon_threadsafe`; an exception escaping a watchdog handler would kill that thread
silently, so every one is caught. Events are a shortcut, never the source of truth: they are
lost on queue overflow and never arrive for other hosts' writes over NFS, so the periodic
scan (`local.py`, run in a thread) finds everything on its own.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from ..logs import Log
from ..naming import is_data_name
from ..source import EventCallback


class _Forwarder(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, callback: EventCallback, log: Log):
        self._loop = loop
        self._callback = callback
        self._log = log

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            forwarded = classify(event)
            if forwarded is not None:
                self._loop.call_soon_threadsafe(self._callback, *forwarded)
        except RuntimeError:
            pass  # the loop is closing: shutdown is under way
        except Exception:
            # Keep the observer thread alive whatever happens; the rescan covers the event.
            self._log.exception("watch_event_error")


def classify(event: FileSystemEvent) -> tuple[str, str] | None:
    """Map a watchdog event to (kind, name) for data-file names, or None."""
    if event.is_directory:
        return None
    if isinstance(event, FileMovedEvent):
        kind, path = "written", event.dest_path
    elif isinstance(event, FileClosedEvent):
        kind, path = "written", event.src_path
    elif isinstance(event, FileCreatedEvent | FileModifiedEvent):
        kind, path = "changed", event.src_path
    else:
        return None
    name = os.path.basename(os.fsdecode(path))
    return (kind, name) if is_data_name(name) else None


class Watcher:
    """Owns the observer thread: start, notice death, restart, stop."""

    def __init__(
        self,
        data_dir: Path,
        loop: asyncio.AbstractEventLoop,
        callback: EventCallback,
        log: Log,
    ) -> None:
        self._data_dir = data_dir
        self._handler = _Forwarder(loop, callback, log)
        self._log = log
        self._observer: Any = None
        self.restarts = 0

    def start(self) -> bool:
        observer = Observer()
        try:
            observer.schedule(
                self._handler,
                str(self._data_dir),
                recursive=False,
                # Ask inotify only for what we use: without this, every open and read of a
                # data file (ours and our peers') wakes the observer thread.
                event_filter=[FileClosedEvent, FileMovedEvent, FileCreatedEvent],
            )
            observer.start()
        except OSError as exc:  # inotify watch limit reached, directory gone, ...
            self._log.warning("watch_unavailable", error=str(exc), fallback="rescan only")
            self._observer = None
            return False
        self._observer = observer
        return True

    def ensure_alive(self) -> None:
        """Restart a dead observer (called from the rescan tick)."""
        if self._observer is not None and not self._observer.is_alive():
            self.restarts += 1
            self._log.warning("observer_died", restarts=self.restarts)
            self.start()

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self._log.info("observer_restarted", restarts=self.restarts)
        self.start()

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)
