"""An in-memory ledger, for tests: every worker of one process shares a `MemoryStore`.

It keeps the same promises as the file ledger between the tasks and ledgers of one process
(one lock guards the store), so the worker loop and the contract suite run without a
filesystem. `crash` plays a worker's death: its holds vanish as the kernel's locks would,
and the owner records (attempt counts) stay behind for the next holder.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ingestd.contracts.ledger import (
    DONE,
    Busy,
    Heartbeat,
    Hold,
    Holding,
    Owner,
    Record,
    RecordsInspector,
    RetryRequest,
    StatusView,
    Stored,
    Transaction,
    claim_in_order,
    fold_statuses,
)


@dataclass
class MemoryStore:
    """The shared state: what a state dir holds, in memory."""

    mutex: threading.Lock = field(default_factory=threading.Lock)
    holders: dict[str, int] = field(default_factory=dict)  # name -> hold token
    owners: dict[str, Owner] = field(default_factory=dict)  # left by the last attempt
    records: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: dict[str, tuple[Heartbeat, float]] = field(default_factory=dict)
    paused: bool = False
    tokens: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def status(self) -> dict[str, str]:
        return fold_statuses((r["file"], r["status"]) for r in self.records)

    def crash(self, tokens: set[int]) -> None:
        """Drop these holds as a dead process's locks are dropped; owner records stay."""
        with self.mutex:
            for name, token in list(self.holders.items()):
                if token in tokens:
                    del self.holders[name]

    def lose(self, name: str) -> None:
        """Take a hold away from its holder (an expired lease), leaving it none the wiser."""
        with self.mutex:
            self.holders.pop(name, None)


class MemoryHold:
    def __init__(self, ledger: MemoryLedger, name: str, token: int) -> None:
        self.name = name
        self.attempt = 0
        self.lost = 0
        self.fresh = False
        self._ledger = ledger
        self._store = ledger.store
        self._token = token
        self._previous = self._store.owners.get(name)
        self._closed = False

    @property
    def previous_owner(self) -> Owner | None:
        return self._previous

    def begin(self, owner: Owner) -> int:
        self.attempt = self._previous.attempt + 1 if self._previous else 1
        with self._store.mutex:
            self._store.owners[self.name] = dataclasses.replace(owner, attempt=self.attempt)
        return self.attempt

    def _close(self, owner: Owner | None, keep: bool = False) -> None:
        with self._store.mutex:
            if self._closed or self._store.holders.get(self.name) != self._token:
                self._closed = True
                return
            if owner is None:
                self._store.owners.pop(self.name, None)
            else:
                self._store.owners[self.name] = owner
            if not keep:
                del self._store.holders[self.name]
                self._closed = True
                self._ledger.tokens.discard(self._token)

    def finish(self) -> None:
        self._close(None)

    def abandon(self) -> None:
        self._close(self._previous)

    def release(self, error: str | None = None) -> None:
        current = self._store.owners.get(self.name)
        if current is not None and error is not None:
            current = dataclasses.replace(current, error=error[:2000])
        self._close(current)

    def reassert(self) -> bool:
        return True  # a claim here is lost only by its lease or session: fenced at commit

    def restore(self) -> None:
        self._close(self._previous, keep=True)


class MemoryLedger:
    description = "memory"

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.tokens: set[int] = set()  # this ledger's live holds (for `crash`)
        self._seen = 0
        self.view = StatusView()

    def crash(self) -> None:
        """This worker dies: its holds go, its owner records stay."""
        self.store.crash(set(self.tokens))
        self.tokens.clear()

    def prepare(self) -> None:
        pass

    def close(self) -> None:
        pass

    def sync(self) -> None:
        with self.store.mutex:
            new = self.store.records[self._seen :]
            self._seen += len(new)
        self.view.apply((r["file"], r["status"]) for r in new)

    def is_finished(self, name: str) -> bool:
        return self.view.is_finished(name)

    def is_done(self, name: str) -> bool:
        return self.view.is_done(name)

    def finished_count(self) -> int:
        return len(self.view)

    def last_record(self, name: str) -> Stored | None:
        with self.store.mutex:
            found = [r for r in self.store.records if r["file"] == name]
        return Stored.from_dict(found[-1]) if found else None

    def claim_first(self, names: list[str]) -> tuple[list[tuple[str, str]], Hold | None]:
        return claim_in_order(self.try_claim, names)

    def try_claim(self, name: str) -> MemoryHold:
        with self.store.mutex:
            if name in self.store.holders:
                raise Busy(name)
            token = next(self.store.tokens)
            self.store.holders[name] = token
            self.tokens.add(token)
            return MemoryHold(self, name, token)

    def commit(
        self,
        hold: Hold,
        record: Record,
        on_written: Callable[[], None] | None = None,
        transaction: Transaction | None = None,
    ) -> bool:
        try:
            with self.store.mutex:
                if self.store.status().get(record.file) == DONE:
                    written = False
                else:
                    if transaction is not None:
                        transaction.commit()
                    self.store.records.append(record.to_dict())
                    written = True
                    if on_written is not None:
                        on_written()  # under the lock: stats follow the record order
        except BaseException:
            hold.abandon()  # nothing recorded: given back without spending the attempt
            raise
        finally:
            if transaction is not None:
                transaction.close()
        self.sync()
        hold.finish()
        return written

    def leftovers(self) -> list[str]:
        return []  # a hold never outlives its holder here

    def sweep(self, names: list[str]) -> list[str]:
        return []

    def write_heartbeat(self, beat: Heartbeat) -> None:
        with self.store.mutex:
            self.store.heartbeats[beat.worker] = (beat, time.monotonic())

    def remove_heartbeat(self, worker: str) -> None:
        with self.store.mutex:
            self.store.heartbeats.pop(worker, None)

    def read_heartbeat(self, worker: str) -> Heartbeat | None:
        with self.store.mutex:
            entry = self.store.heartbeats.get(worker)
        return None if entry is None else _aged(*entry)

    def workers(self) -> list[Heartbeat]:
        return MemoryInspector(self.store).workers()

    def failed_count(self) -> int:
        return self.view.failed_count()

    def failed_names(self) -> list[str]:
        return self.view.failed_names()

    def prune_workers(self, after: float) -> list[str]:
        return MemoryInspector(self.store).prune_workers(after)

    def paused(self) -> bool:
        return self.store.paused


def _aged(beat: Heartbeat, written: float) -> Heartbeat:
    return dataclasses.replace(beat, age_seconds=round(time.monotonic() - written, 3))


class MemoryInspector(RecordsInspector):
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def exists(self) -> bool:
        return True

    def statuses(self) -> dict[str, str]:
        with self.store.mutex:
            return self.store.status()

    def records(self) -> Iterator[Stored]:
        with self.store.mutex:
            stored = list(self.store.records)
        return (r for r in map(Stored.from_dict, stored) if r is not None)

    def holdings(self) -> list[Holding]:
        with self.store.mutex:
            held = list(self.store.holders)
            owners = dict(self.store.owners)
        return [
            Holding(
                file=name,
                worker=owners[name].worker if name in owners else None,
                attempt=owners[name].attempt if name in owners else None,
                age_seconds=None,
            )
            for name in sorted(held)
        ]

    def claim(self, name: str) -> tuple[bool, Owner | None]:
        with self.store.mutex:
            return name in self.store.holders, self.store.owners.get(name)

    def workers(self) -> list[Heartbeat]:
        with self.store.mutex:
            entries = list(self.store.heartbeats.values())
        return [_aged(beat, written) for beat, written in entries]

    def prune_workers(self, after: float) -> list[str]:
        pruned = [b.worker for b in self.workers() if b.lost and b.lost_for > after]
        with self.store.mutex:
            for worker in pruned:
                self.store.heartbeats.pop(worker, None)
        return pruned

    def problems(self) -> list[str]:
        return []

    def paused(self) -> bool:
        return self.store.paused

    def set_paused(self, paused: bool) -> bool:
        with self.store.mutex:
            changed = self.store.paused != paused
            self.store.paused = paused
        return changed

    def retry(self, request: RetryRequest) -> None:
        with self.store.mutex:
            self.store.records.append(request.to_dict())
