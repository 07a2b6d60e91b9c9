"""When a file counts as written, and the oldest-first queue of files ready to claim.

A file is ready when a close-after-write or moved-into-place event was seen for it, or when
scans find its size and mtime unchanged for `settle` seconds. `Settling` is pure (the caller
passes the clock), so it is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from ingestd.contracts.naming import order_key

Signature = tuple[int, int]  # (size, mtime_ns)


@dataclass
class Settling:
    """Files seen but not yet known to be completely written, and those known to be."""

    settle: float
    _seen: dict[str, tuple[Signature, float]] = field(default_factory=dict)
    # Settled files not finished yet (a peer holds them, or they wait for a retry): seen
    # again unchanged, they are ready at once, so a dead peer's file is taken over quickly.
    _settled: dict[str, Signature] = field(default_factory=dict)

    def observe(
        self, name: str, signature: Signature, now: float, age: float | None = None
    ) -> bool:
        """Record one look at `name`; True once it has stayed the same for `settle` seconds.

        `age`, when known, is how long ago the file last changed by the filesystem's own
        clock (now minus its mtime): a file found unchanged for that long counts as having
        been watched for that long, so one complete before we looked is ready at once.
        """
        if self._settled.get(name) == signature:
            return True
        previous = self._seen.get(name)
        if previous is None or previous[0] != signature:
            since = now - max(age, 0.0) if age is not None else now
            self._seen[name] = (signature, since)
            if self.settle > 0 and now - since < self.settle:
                return False
        elif now - previous[1] < self.settle:
            return False
        self._seen.pop(name, None)
        self._settled[name] = signature
        return True

    def is_settled(self, name: str, signature: Signature) -> bool:
        return self._settled.get(name) == signature

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
        self._settled.pop(name, None)

    def keep_only(self, names: Container[str]) -> None:
        """Drop every file not in `names` (gone from the directory, or finished)."""
        for name in [n for n in (*self._seen, *self._settled) if n not in names]:
            self.forget(name)

    def names(self) -> list[str]:
        return list(self._seen)

    def next_deadline(self) -> float | None:
        """The earliest moment a file seen so far could be declared settled."""
        if not self._seen:
            return None
        return min(since for _, since in self._seen.values()) + self.settle

    def __len__(self) -> int:
        return len(self._seen)


_POPPED_KEPT = 256


class ReadyQueue:
    """Ready files, oldest timestamp first (then by key); putting a name twice queues it once.

    Names must be valid data-file names (the scan and the observer only pass those on).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[Any, str, str], str]] = []
        self._names: set[str] = set()
        self._changed = asyncio.Event()
        # Keys of names popped lately: a claim pass pops a few and hands most back, and
        # a key made again for each costs more than the rest of the queue's work.
        self._popped: dict[str, tuple[Any, str, str]] = {}

    def put(self, name: str) -> bool:
        if name in self._names:
            return False
        key = self._popped.pop(name, None)
        heapq.heappush(self._heap, (order_key(name) if key is None else key, name))
        self._names.add(name)
        self._changed.set()
        return True

    def pop_nowait(self) -> str | None:
        if not self._heap:
            return None
        key, name = heapq.heappop(self._heap)
        self._names.discard(name)
        if len(self._popped) >= _POPPED_KEPT:
            self._popped.clear()
        self._popped[name] = key
        return name

    def pop_many(self, count: int) -> list[str]:
        """Up to `count` more names, oldest first, without waiting."""
        names: list[str] = []
        while len(names) < count and (name := self.pop_nowait()) is not None:
            names.append(name)
        return names

    async def get(self) -> str:
        while True:
            name = self.pop_nowait()
            if name is not None:
                return name
            self._changed.clear()
            await self._changed.wait()

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __len__(self) -> int:
        return len(self._heap)
