"""An in-memory source, for tests: files are bytes in a dict, put and removed by the test.

Files appear whole (`atomic`), so nothing settles; `put` pushes a "written" event to the
daemon when it is watching, like a close-after-write from the observer.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections.abc import Callable
from typing import BinaryIO

from ingestd.contracts.naming import is_data_name
from ingestd.contracts.source import (
    Content,
    Disposal,
    EventCallback,
    ScanResult,
    Signature,
    check_content,
)
from ingestd.runtime.logs import Log


class MemorySource:
    atomic = True
    description = "memory"

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self._files: dict[str, tuple[bytes, int]] = {}
        self._version = 0
        self._mutex = threading.Lock()
        self._listener: tuple[asyncio.AbstractEventLoop, EventCallback] | None = None
        for name, content in (files or {}).items():
            self.put(name, content)

    def put(self, name: str, content: bytes) -> None:
        with self._mutex:
            self._version += 1
            self._files[name] = (content, self._version)
            listener = self._listener
        if listener is not None and is_data_name(name):
            loop, callback = listener
            loop.call_soon_threadsafe(callback, "written", name)

    def remove(self, name: str) -> None:
        with self._mutex:
            self._files.pop(name, None)

    def exists(self) -> bool:
        return True

    def watch_appearance(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        return None

    def clock(self) -> None:
        return None  # atomic: nothing settles

    def is_closed(self, name: str) -> None:
        return None

    def version(self, name: str) -> str | None:
        with self._mutex:
            entry = self._files.get(name)
        return None if entry is None else str(entry[1])

    def versions(self) -> dict[str, str]:
        with self._mutex:
            return {n: str(v) for n, (_, v) in self._files.items() if is_data_name(n)}

    def dispose(self, name: str, disposal: Disposal, processed: Content) -> None:
        with self._mutex:
            entry = self._files.get(name)
        if entry is None:
            raise FileNotFoundError(name)
        check_content(name, processed, str(entry[1]), lambda: self.digest(name))
        with self._mutex:
            if self._files.get(name) is entry:
                del self._files[name]

    def scan(self, skip: Callable[[str], bool]) -> ScanResult:
        result = ScanResult()
        with self._mutex:
            files = dict(self._files)
        for name, (content, version) in files.items():
            if skip(name):
                continue
            if is_data_name(name):
                result.candidates[name] = (len(content), version)
            else:
                result.ignored[name] = "name"
        return result

    def names(self) -> set[str]:
        with self._mutex:
            return {name for name in self._files if is_data_name(name)}

    def signature(self, name: str) -> Signature | None:
        with self._mutex:
            entry = self._files.get(name)
        return None if entry is None else (len(entry[0]), entry[1])

    def _content(self, name: str) -> bytes:
        with self._mutex:
            entry = self._files.get(name)
        if entry is None:
            raise FileNotFoundError(name)
        return entry[0]

    def open(self, name: str) -> BinaryIO:
        return io.BytesIO(self._content(name))

    def read_head(self, name: str, limit: int) -> bytes:
        return self._content(name)[: limit + 1]

    def read_start(self, name: str, limit: int) -> tuple[bytes, str | None]:
        with self._mutex:
            entry = self._files.get(name)
        if entry is None:
            raise FileNotFoundError(name)
        return entry[0][: limit + 1], str(entry[1])

    def digest(self, name: str) -> tuple[int, str]:
        content = self._content(name)
        return len(content), hashlib.sha256(content).hexdigest()

    def watch(
        self, loop: asyncio.AbstractEventLoop, on_event: EventCallback, log: Log
    ) -> _MemoryWatch:
        return _MemoryWatch(self, loop, on_event)


class _MemoryWatch:
    def __init__(
        self, source: MemorySource, loop: asyncio.AbstractEventLoop, on_event: EventCallback
    ) -> None:
        self._source = source
        self._listener = (loop, on_event)

    def start(self) -> bool:
        self._source._listener = self._listener
        return True

    def ensure_alive(self) -> None:
        pass

    def restart(self) -> None:
        self.start()

    def stop(self) -> None:
        self._source._listener = None
