"""Group commit: the records a process's threads commit while another commit is being written
go together in the next write (one append and fsync, or one transaction), each settled on
its own.

The durable step of a commit (an fsync, a transaction's flush) costs the same for one record
as for several, and a worker with `--concurrency` above 1 finishes files while the previous
record is still on its way to disk. The first caller that finds the writer free writes
everything queued by then; the others wait for the writer and find their record settled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class Pending(Generic[T]):
    """One record waiting to be committed, and what became of it (settled once)."""

    item: T
    settled: bool = False
    written: bool = False
    error: BaseException | None = None

    def settle(self, written: bool = False, error: BaseException | None = None) -> None:
        if not self.settled:
            self.settled, self.written, self.error = True, written, error

    def settle_written(self, on_written: Callable[[], None] | None) -> None:
        """Written durably: run the caller's `on_written` (in record order, the writer's
        thread); if it fails, the record stands all the same and the caller hears why."""
        try:
            if on_written is not None:
                on_written()
        except BaseException as exc:
            self.settle(error=exc)
        else:
            self.settle(written=True)


class GroupCommit(Generic[T]):
    """Calls `write(batch)` for what is queued, one write at a time.

    `write` settles each record of the batch (written, refused, or failed with an error of its
    own); an error `write` raises settles every record it left unsettled.
    """

    def __init__(self, write: Callable[[list[Pending[T]]], None]) -> None:
        self._write = write
        self._write_mutex = threading.Lock()  # one write at a time, in arrival order
        self._queue_mutex = threading.Lock()  # only ever held briefly
        self._queued: list[Pending[T]] = []

    def commit(self, item: T) -> bool:
        """Whether `item` was written; raises the error that kept it from being written."""
        mine = Pending(item)
        with self._queue_mutex:
            self._queued.append(mine)
        with self._write_mutex:
            if not mine.settled:
                with self._queue_mutex:
                    batch, self._queued = self._queued, []
                try:
                    self._write(batch)
                except BaseException as exc:
                    for pending in batch:
                        pending.settle(error=exc)
                for pending in batch:
                    # A write that forgot one must not leave its caller thinking it written.
                    pending.settle(error=RuntimeError("group commit: record left unsettled"))
        if mine.error is not None:
            raise mine.error
        return mine.written

    @property
    def queued(self) -> int:
        """Records waiting for the writer."""
        with self._queue_mutex:
            return len(self._queued)

    def holding(self) -> threading.Lock:
        """The writer's mutex: held, no commit of this process is being written."""
        return self._write_mutex
