"""What "processing a file" means, behind one small interface.

A handler is an async callable taking a `Job` and returning an `Outcome`. `load_handler`
turns the `--handler` option into one: `simulate` (the default: sleep for the minutes the file
says), `tsv` (JSON objects to PostgreSQL COPY text), or `package.module:callable` for the user's
own code; a plain function runs in a thread, a coroutine function on the event loop.

Raising `BadInput` fails the file for good (no retry); `RetryLater` (and an output directory
that is read-only, forbidden or full) gives it back without spending an attempt. Any other
exception is a crash of this attempt: the file is retried until `--max-attempts`. Sync code
runs in the handlers' own threads (`Job.to_thread`), never in the pool the daemon's
bookkeeping uses, so a busy handler can never starve claims, commits or heartbeats.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib
import inspect
import math
import os
import re
import stat
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from .errors import BadInput, RetryLater
from .settings import Settings

__all__ = ["BadInput", "Handler", "HandlerThreads", "Job", "Outcome", "RetryLater"]

P = ParamSpec("P")
T = TypeVar("T")

MAX_SIMULATION_BYTES = 4096
HEAD_BYTES = MAX_SIMULATION_BYTES  # Job.head holds up to this many bytes, plus one


# Decimal numbers as ASCII text only: float() also takes `1_000`, Arabic-Indic and fullwidth
# digits, which no provider means as a number of minutes.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_ASCII_SPACE = " \t\n\r\f\v"
_BOM = "\ufeff"


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
    path: Path
    name: str
    timestamp: datetime
    settings: Settings
    log: Any
    # The file's first HEAD_BYTES + 1 bytes, read when it was claimed (one byte more than the
    # cap, so a handler can tell "exactly 4 KiB" from "more"). Read `path` for the rest.
    head: bytes
    threads: HandlerThreads | None = None  # the daemon's; None (tests): asyncio's default pool

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


def read_capped(path: Path, limit: int) -> bytes:
    """Up to `limit + 1` bytes of a regular file, never following links or blocking on FIFOs."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput("not a regular file")
        chunks = []
        remaining = limit + 1
        while remaining > 0 and (chunk := os.read(fd, remaining)):
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_minutes(content: bytes, max_minutes: float) -> float:
    """The processing time a simulation file holds, or `BadInput` saying why not."""
    if len(content) > MAX_SIMULATION_BYTES:
        raise BadInput(f"over {MAX_SIMULATION_BYTES} bytes")
    try:
        text = content.decode("utf-8").removeprefix(_BOM).strip(_ASCII_SPACE)
    except UnicodeDecodeError:
        raise BadInput("not UTF-8 text") from None
    if not text:
        raise BadInput("empty")
    if _DECIMAL.fullmatch(text) is None:
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise BadInput(f"not a finite number: {text[:40]!r}")
        raise BadInput(f"not a number: {text[:40]!r}")
    minutes = float(text)
    if not math.isfinite(minutes):  # 1e999
        raise BadInput(f"not a finite number: {text[:40]!r}")
    if minutes < 0:
        raise BadInput(f"negative minutes: {text[:40]!r}")
    if minutes > max_minutes:
        raise BadInput(f"{text[:40]} minutes is over the cap of {max_minutes:g}")
    return minutes


async def simulate(job: Job) -> Outcome:
    """The challenge's processing: wait `minutes * seconds_in_min` seconds."""
    content = job.head
    minutes = parse_minutes(content, job.settings.max_minutes)
    await asyncio.sleep(minutes * job.settings.seconds_in_min)
    return Outcome(minutes=minutes, size=len(content), sha256=hashlib.sha256(content).hexdigest())


def file_digest(path: Path) -> tuple[int, str]:
    """(size, sha256) of a file, streamed."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class HandlerError(Exception):
    """`--handler` names something that cannot be used (shown to the user, exit 2)."""


def load_handler(spec: str) -> Handler:
    if spec == "simulate":
        return simulate
    if spec == "tsv":
        from .tsv import handle as tsv_handle

        return tsv_handle
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise HandlerError(f"--handler {spec!r}: use simulate, tsv or package.module:callable")
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
    return _adapt(target)


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
