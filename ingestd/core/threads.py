"""The threads sync handler code runs in, apart from the daemon's bookkeeping pool."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


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
