"""Finding files: a watchdog observer for quick notice, a directory scan for certainty.

The observer runs on its own thread and only hands events to the event loop with
`loop.call_soon_threadsafe`; an exception escaping a watchdog handler would kill that thread
silently, so every one is caught. Events are a shortcut, never the source of truth: they are
lost on queue overflow and never arrive for other hosts' writes over NFS, so the periodic
`scan` (run in a thread) finds everything on its own.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
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

from .naming import is_data_name
from .ready import Signature

# (kind, name): kind is "written" (closed after write, or moved into place) or "changed".
EventCallback = Callable[[str, str], None]


class _Forwarder(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, callback: EventCallback, log: Any):
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
        log: Any,
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


@dataclass
class ScanResult:
    candidates: dict[str, Signature] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)  # name -> why


def scan(data_dir: Path, skip: Callable[[str], bool], hide: str | None) -> ScanResult:
    """One pass over `data_dir`: regular data files not `skip`ped, with size and mtime.

    Blocking: run it in a thread. Entries are judged by `lstat`, so symlinks are never
    followed and FIFOs never opened. `hide` is the state dir's name, when it lives inside.
    """
    result = ScanResult()
    with os.scandir(data_dir) as entries:
        for entry in entries:
            name = entry.name
            if name == hide:
                continue
            # Finished files first: in a big directory nearly every entry is one, and a dict
            # lookup is far cheaper than parsing the name.
            if skip(name):
                continue
            if not is_data_name(name):
                result.ignored[name] = TEMP_FILE if is_temp_name(name) else "name"
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished between listing and stat
            if not stat.S_ISREG(info.st_mode):
                result.ignored[name] = _kind(info.st_mode)
                continue
            result.candidates[name] = (info.st_size, info.st_mtime_ns)
    return result


TEMP_FILE = "temp file"


def is_temp_name(name: str) -> bool:
    """A hidden temp file, as writers that rename into place use (`.NAME.tmp`, `.NAME.x.tmp`)."""
    return name.startswith(".") and name.endswith(".tmp")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "not a regular file"


def signature_of(path: Path) -> Signature | None:
    """(size, mtime_ns) of a regular file, None if it is gone or not a regular file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return (info.st_size, info.st_mtime_ns)
