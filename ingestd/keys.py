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

from .naming import key_of, sort_key


class KeyOrder:
    def __init__(self, block_on_failure: bool = False) -> None:
        self.block_on_failure = block_on_failure
        self._waiting: dict[str, set[str]] = {}  # key -> present, unfinished names
        self._failed: dict[str, set[str]] = {}  # key -> present failed names (block mode)
        self._held: set[str] = set()  # ready, but not the oldest of their key
        self.newest_finished: dict[str, str] = {}  # key -> its newest finished name

    def seen(self, name: str) -> None:
        """`name` is present and not finished (an event, a scan)."""
        self._waiting.setdefault(key_of(name), set()).add(name)

    def rescanned(
        self, unfinished: Iterable[str], failed: Iterable[str], finished: Iterable[str]
    ) -> list[str]:
        """A full scan's view; the held-back names it makes eligible."""
        self._waiting = {}
        for name in unfinished:
            self.seen(name)
        self._failed = {}
        if self.block_on_failure:
            for name in failed:
                self._failed.setdefault(key_of(name), set()).add(name)
        for name in finished:
            self._finished_newest(name)
        self._held &= {n for names in self._waiting.values() for n in names}
        return self._release()

    def eligible(self, name: str) -> bool:
        """Whether `name` is its key's oldest unfinished file and the key is not blocked."""
        key = key_of(name)
        self._waiting.setdefault(key, set()).add(name)
        if self._failed.get(key):
            return False
        return min(self._waiting[key], key=sort_key) == name

    def hold(self, name: str) -> None:
        self._held.add(name)

    def held(self) -> set[str]:
        return set(self._held)

    def late(self, name: str) -> str | None:
        """The key's newest finished file when `name` is older than it (arrived late)."""
        newest = self.newest_finished.get(key_of(name))
        return newest if newest is not None and sort_key(newest) > sort_key(name) else None

    def finished(self, name: str, failed: bool = False) -> list[str]:
        """`name` is recorded; the held-back names that may go now."""
        key = key_of(name)
        self._waiting.get(key, set()).discard(name)
        self._held.discard(name)
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
        # Copies: the event loop may change the sets meanwhile.
        earlier: list[str] = [*self._waiting.get(key, ()), *self._failed.get(key, ())]
        for other in earlier:
            if other == name or sort_key(other) > order:
                continue
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
        go = [name for name in self._held if self.eligible(name)]
        self._held.difference_update(go)
        return go
