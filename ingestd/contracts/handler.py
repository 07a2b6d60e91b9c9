"""The handler API: what a handler is given for one file (`Job`) and what it returns (`Outcome`).

A handler is an async callable taking a `Job` and returning an `Outcome`. It reads the file
through the job (`job.open()`, `job.head`), never through a path, so it works on any source,
and it sees its own declared options (`job.options`), not the worker's settings.

Raising `BadInput` fails the file for good (no retry); `RetryLater` gives it back without
spending an attempt; any other exception is a crash of this attempt.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ParamSpec, Protocol, TypeVar

from structlog.typing import FilteringBoundLogger

from ingestd.contracts.ledger import Transaction
from ingestd.contracts.source import Source

P = ParamSpec("P")
T = TypeVar("T")

HEAD_BYTES = 4096  # Job.head holds up to this many bytes, plus one


class Threads(Protocol):
    """Where blocking handler work runs: the handlers' own threads, apart from bookkeeping."""

    async def run(self, name: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` for the file `name` in a handler thread."""
        ...


@dataclass(frozen=True)
class Job:
    name: str
    timestamp: datetime
    # The handler's own options (its module's OPTIONS, built from the worker's settings);
    # None for a handler that declares none.
    options: Any
    log: FilteringBoundLogger
    # The file's first HEAD_BYTES + 1 bytes, read when it was claimed (one byte more than the
    # cap, so a handler can tell "exactly 4 KiB" from "more"). `open()` streams all of it.
    head: bytes
    source: Source | None = None
    threads: Threads | None = None  # the daemon's; None (tests): asyncio's default pool
    # Where this file's outputs go: the output dir, or with --publish-in-order this file's
    # staging dir there (published in order later). None: no outputs expected.
    outputs: Path | None = None
    worker: str = ""  # the worker's id, for what a handler records beside its results
    source_id: str = ""  # the source's identity in the ledger (its files' namespace)

    def outputs_dir(self) -> Path:
        """`outputs`, made if missing. Blocking (a mkdir): call it in `to_thread` work."""
        if self.outputs is None:
            raise RuntimeError("this job has no output dir")
        self.outputs.mkdir(parents=True, exist_ok=True)
        return self.outputs

    def open(self) -> BinaryIO:
        """The file's whole content as a stream (blocking: call it in `to_thread` work)."""
        if self.source is None:
            raise RuntimeError("this job has no source to read from")
        return self.source.open(self.name)

    async def to_thread(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking handler work in the handlers' threads (never the bookkeeping pool)."""
        if self.threads is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return await self.threads.run(self.name, fn, *args, **kwargs)


@dataclass
class Outcome:
    minutes: float  # processing time, what the stats count
    size: int | None = None  # bytes processed; computed by the worker when None
    sha256: str | None = None
    outputs: list[str] = field(default_factory=list)
    records: int | None = None
    # Work left uncommitted, to commit with the file's record (the `pg` handler's rows).
    transaction: Transaction | None = None

    def __post_init__(self) -> None:
        # Checked here, once: a NaN would reach the stats, the logs and the manifest, and
        # make `verify --json` print invalid JSON.
        minutes = self.minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int | float):
            raise ValueError(f"Outcome.minutes must be a number, not {type(minutes).__name__}")
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError(f"Outcome.minutes must be finite and >= 0, not {minutes!r}")
        for name in ("size", "records"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"Outcome.{name} must be a whole number >= 0, not {value!r}")


Handler = Callable[[Job], Awaitable[Outcome]]
