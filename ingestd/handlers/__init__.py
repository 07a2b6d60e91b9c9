"""What "processing a file" means, behind one small interface.

A handler is an async callable taking a `Job` and returning an `Outcome`. `load_handler`
turns `--handler` into one through a registry of import strings: `simulate` (the default:
sleep for the minutes the file says), `tsv` (JSON objects to PostgreSQL COPY text), or
`package.module:callable` for the user's own code; a plain function runs in the handlers' own
threads, a coroutine function on the event loop. A handler reads the file through the job
(`job.open()`, `job.head`), never through a path, so it works on any source. A handler module
may define `prepare(settings)` to check its environment at start-up (raise `StartupError`).

Raising `BadInput` fails the file for good (no retry); `RetryLater` (and an output directory
that is read-only, forbidden or full) gives it back without spending an attempt. Any other
exception is a crash of this attempt: the file is retried until `--max-attempts`. Sync code
runs in the handlers' own threads (`Job.to_thread`), never in the pool the daemon's
bookkeeping uses, so a busy handler can never starve claims, commits or heartbeats.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import math
import os
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO, ParamSpec, TypeVar

from ..errors import BadInput, RetryLater
from ..ledger import Transaction
from ..logs import Log
from ..outputs import output_dir, staging_dir
from ..settings import Settings
from ..source import Source

__all__ = [
    "HEAD_BYTES",
    "BadInput",
    "Handler",
    "HandlerThreads",
    "Job",
    "Outcome",
    "RetryLater",
    "load_handler",
]

P = ParamSpec("P")
T = TypeVar("T")

HEAD_BYTES = 4096  # Job.head holds up to this many bytes, plus one
# The built-in handlers, by import string: nothing is imported until one is chosen.
REGISTRY = {
    "simulate": "ingestd.handlers.simulate:handle",
    "tsv": "ingestd.handlers.tsv:handle",
    "pg": "ingestd.handlers.pg:handle",
}


class HandlerThreads:
    """The threads sync handlers run in: `--concurrency` of them, apart from bookkeeping.

    It also knows which files have handler code running in a thread right now: a thread
    cannot be cancelled, so at shutdown such a file must not be given back while its handler
    may still be working on it.
    """

    def __init__(self, size: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="handler")
        self._running: Counter[str] = Counter()
        self._mutex = threading.Lock()

    async def run(self, name: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._mutex:
            self._running[name] += 1
        try:
            future = self._executor.submit(self._call, name, functools.partial(fn, *args, **kwargs))
        except BaseException:
            self._done(name)
            raise
        return await asyncio.wrap_future(future)

    def _call(self, name: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        finally:
            self._done(name)

    def _done(self, name: str) -> None:
        with self._mutex:
            self._running[name] -= 1
            if self._running[name] <= 0:
                del self._running[name]

    def running(self, name: str) -> bool:
        """Handler code for `name` is running in a thread right now."""
        with self._mutex:
            return name in self._running

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Job:
    name: str
    timestamp: datetime
    settings: Settings
    log: Log
    # The file's first HEAD_BYTES + 1 bytes, read when it was claimed (one byte more than the
    # cap, so a handler can tell "exactly 4 KiB" from "more"). `open()` streams all of it.
    head: bytes
    source: Source | None = None
    threads: HandlerThreads | None = None  # the daemon's; None (tests): asyncio's default pool

    def outputs_dir(self) -> Path:
        """Where this file's outputs go (made if missing): `--output-dir` (default DIR/out),
        or with `--publish-in-order` its staging dir there, published in order later.
        Blocking (a mkdir): call it in `to_thread` work."""
        out = output_dir(self.settings)
        path = staging_dir(out, self.name) if self.settings.publish_in_order else out
        path.mkdir(parents=True, exist_ok=True)
        return path

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


class HandlerError(Exception):
    """`--handler` names something that cannot be used (shown to the user, exit 2)."""


def load_handler(spec: str) -> Handler:
    """The handler `--handler` names; `HandlerError` (exit 2) if it cannot be used."""
    return _load(spec)[0]


def handler_prepare(spec: str) -> Callable[[Settings], None] | None:
    """The start-up check the handler's module offers (`prepare(settings)`), if any."""
    module = _load(spec)[1]
    prepare = getattr(module, "prepare", None)
    return prepare if callable(prepare) else None


def _load(spec: str) -> tuple[Handler, ModuleType]:
    module_name, _, attribute = REGISTRY.get(spec, spec).partition(":")
    if not module_name or not attribute:
        raise HandlerError(f"--handler {spec!r}: use simulate, tsv, pg or package.module:callable")
    # `python -m ingestd` finds modules in the current directory; the `ingestd` script should
    # too, or a handler that works in one would not import in the other.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise HandlerError(f"--handler {spec!r}: cannot import {module_name}: {exc}") from exc
    target = getattr(module, attribute, None)
    if not callable(target):
        raise HandlerError(f"--handler {spec!r}: {module_name} has no callable {attribute}")
    if spec in REGISTRY:
        return target, module  # ours: already an async callable returning an Outcome
    return _adapt(target), module


def _adapt(target: Callable[..., Any]) -> Handler:
    """Wrap a user callable: async ones are awaited, sync ones run in the handlers' threads."""
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - async __call__ objects
    )

    async def handler(job: Job) -> Outcome:
        result = await target(job) if is_async else await job.to_thread(target, job)
        return to_outcome(result)

    return handler


def to_outcome(result: Any) -> Outcome:
    """Accept an Outcome, a number of minutes, or a dict of Outcome fields."""
    if isinstance(result, Outcome):
        return result
    if isinstance(result, int | float) and not isinstance(result, bool):
        return Outcome(minutes=float(result))
    if isinstance(result, dict):
        return Outcome(**result)
    raise TypeError(f"handler returned {type(result).__name__}; expected Outcome, number or dict")
