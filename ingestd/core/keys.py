"""Pure: `--one-per-key`, at most one file of a key in work, in timestamp order.

`KeyOrder` knows, per key, the files present and not finished (from scans and events): a file
may be offered only while it is the oldest unfinished file of its key, and one that became
ready early is held back and released the moment the file before it finishes. No second lock:
the per-file claim on a key's oldest file is the key's lock, so nothing can leak when a
worker dies (its claim goes with it, and the same file is the oldest again). At claim time
`blocked_by` checks the same rule against the ledger just synced, so a stale view of a peer's
progress never lets a later file through.

A failed file lets its key move on (`continue`); with `block` it holds the key until an
operator retries or removes it. A file older than its key's newest finished file arrived late:
it is processed and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from ingestd.contracts.naming import key_of, sort_key

Order = tuple[datetime, str, str]  # naming.sort_key


class KeyOrder:
    def __init__(self, block_on_failure: bool = False) -> None:
        self.block_on_failure = block_on_failure
        # key -> {present, unfinished name: its sort key}, and the oldest of them (cached:
        # asked for every file offered, it must not cost a pass over a long backlog).
        self._waiting: dict[str, dict[str, Order]] = {}
        self._oldest: dict[str, str | None] = {}
        self._failed: dict[str, set[str]] = {}  # key -> present failed names (block mode)
        self._held: dict[str, set[str]] = {}  # key -> ready, but not the oldest of their key
        self.newest_finished: dict[str, str] = {}  # key -> its newest finished name

    def seen(self, name: str) -> None:
        """`name` is present and not finished (an event, a scan)."""
        key = key_of(name)
        waiting = self._waiting.setdefault(key, {})
        if name in waiting:
            return
        order = waiting[name] = sort_key(name)
        oldest = self._oldest.get(key)
        if oldest is None or order < waiting[oldest]:
            self._oldest[key] = name

    def rescanned(
        self, unfinished: Iterable[str], failed: Iterable[str], finished: Iterable[str]
    ) -> list[str]:
        """A full scan's view; the held-back names it makes eligible."""
        self._waiting, self._oldest = {}, {}
        for name in unfinished:
            self.seen(name)
        self._failed = {}
        if self.block_on_failure:
            for name in failed:
                self._failed.setdefault(key_of(name), set()).add(name)
        for name in finished:
            self._finished_newest(name)
        for key, held in self._held.items():
            held &= self._waiting.get(key, {}).keys()
        return self._release()

    def eligible(self, name: str) -> bool:
        """Whether `name` is its key's oldest unfinished file and the key is not blocked."""
        self.seen(name)
        key = key_of(name)
        return not self._failed.get(key) and self._oldest.get(key) == name

    def blocked(self) -> dict[str, str]:
        """Block mode: each key held by a failed file, and the oldest such file."""
        return {key: min(names, key=sort_key) for key, names in self._failed.items() if names}

    def hold(self, name: str) -> None:
        self._held.setdefault(key_of(name), set()).add(name)

    def held(self) -> set[str]:
        return {name for names in self._held.values() for name in names}

    def late(self, name: str) -> str | None:
        """The key's newest finished file when `name` is older than it (arrived late)."""
        newest = self.newest_finished.get(key_of(name))
        return newest if newest is not None and sort_key(newest) > sort_key(name) else None

    def finished(self, name: str, failed: bool = False) -> list[str]:
        """`name` is recorded; the held-back names that may go now."""
        key = key_of(name)
        waiting = self._waiting.get(key, {})
        if waiting.pop(name, None) is not None and self._oldest.get(key) == name:
            self._oldest[key] = min(waiting, key=waiting.__getitem__) if waiting else None
        self._held.get(key, set()).discard(name)
        self._finished_newest(name)
        if failed and self.block_on_failure:
            self._failed.setdefault(key, set()).add(name)
        return self._release()

    def blocked_by(
        self, name: str, is_finished: Callable[[str], bool], is_done: Callable[[str], bool]
    ) -> str | None:
        """An earlier file of `name`'s key still to finish (or failed, in block mode), by the
        ledger's answers; None when `name` may be processed. Called from a claim's thread."""
        key = key_of(name)
        order = sort_key(name)
        # Copies: the event loop may change these meanwhile.
        waiting = dict(self._waiting.get(key, {}))
        earlier = [other for other, at in waiting.items() if at < order]
        earlier += [other for other in list(self._failed.get(key, ())) if sort_key(other) < order]
        for other in earlier:
            if not is_finished(other):
                return other
            if self.block_on_failure and not is_done(other):
                return other
        return None

    def _finished_newest(self, name: str) -> None:
        key = key_of(name)
        newest = self.newest_finished.get(key)
        if newest is None or sort_key(name) > sort_key(newest):
            self.newest_finished[key] = name

    def _release(self) -> list[str]:
        """Each key's oldest file, if it was held back and the key is not blocked."""
        go = []
        for key, held in self._held.items():
            oldest = self._oldest.get(key)
            if oldest in held and not self._failed.get(key):
                held.discard(oldest)
                go.append(oldest)
        return go
