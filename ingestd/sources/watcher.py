"""The local source's event stream: a watchdog observer for quick notice of new files.

The observer runs on its own thread and only hands events to the event loop with
`loop.call_soon_threadsafe`; an exception escaping a watchdog handler would kill that thread
silently, so every one is caught. Events are a shortcut, never the source of truth: they are
lost on queue overflow and never arrive for other hosts' writes over NFS, so the periodic
scan (`local.py`, run in a thread) finds everything on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from ingestd.contracts.naming import is_data_name
from ingestd.contracts.source import EventCallback
from ingestd.runtime.logs import Log


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
        _stop(observer)


class _Waker(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        self._loop = loop
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._wake)


def nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that is a directory now."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path("/")


class AppearanceWatcher:
    """Wakes the daemon when a directory still to come may have appeared.

    Watches the nearest existing ancestor (not recursively): any entry created or moved in
    it wakes the daemon, which looks again and calls `restart` to follow the path one level
    deeper when only a parent appeared. The poll stays as the fallback (NFS sends no events
    for other hosts' mkdirs).
    """

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]):
        self._path = path
        self._handler = _Waker(loop, wake)
        self._observer: Any = None
        self.watching: Path | None = None

    def start(self) -> bool:
        target = nearest_existing(self._path)
        observer = Observer()
        try:
            observer.schedule(self._handler, str(target), recursive=False,
                              event_filter=[DirCreatedEvent, DirMovedEvent])  # fmt: skip
            observer.start()
        except OSError:
            return False  # the poll alone, then
        self._observer, self.watching = observer, target
        return True

    def ensure_alive(self) -> None:
        if self._observer is not None and not self._observer.is_alive():
            self.start()

    def restart(self) -> None:
        # Until the watch sits on the nearest existing level: a level made while the watch
        # moved is seen by the check after the move.
        while nearest_existing(self._path) != self.watching:
            self.stop()
            if not self.start():
                return

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        _stop(observer)


def _stop(observer: Any) -> None:
    if observer is not None:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=5)
