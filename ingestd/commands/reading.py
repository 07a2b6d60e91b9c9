"""What several commands read the same way: the files present, the records audited, and a
progress line on a terminal while a big ledger is read."""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from ingestd.commands import target
from ingestd.commands.audit import Audit, audit_blocks
from ingestd.contracts.ledger import Inspector, SummaryBlock
from ingestd.contracts.source import Source

T = TypeVar("T")


def present(source: Source) -> dict[str, tuple[int, int]]:
    try:
        return source.scan(lambda _: False).candidates
    except OSError:
        return {}


def present_names(source: Source) -> set[str]:
    """The data files present, by name only (no signature: a stat each, for 100,000 files)."""
    try:
        return source.names()
    except OSError:
        return set()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a big ledger is read: a million short-lived
    tuples, none in a cycle, would set off its passes over and over (a sixth of `verify`'s
    time on a million records)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def audited(args: argparse.Namespace, expected: int | None = None) -> tuple[Audit, int]:
    source, inspector = target.view(args)
    return audited_view(source, inspector, expected)


def audited_view(
    source: Source, inspector: Inspector, expected: int | None = None
) -> tuple[Audit, int]:
    """The audit of every record, and how many could not be read."""
    progress = Progress("reading records")

    def blocks() -> Iterator[SummaryBlock]:
        return progress.counted(inspector.summary_blocks(), size=lambda block: len(block.files))

    progress.say("listing the source")
    found = present_names(source)
    try:
        with collector_paused():
            result = audit_blocks(blocks, found, expected, full=inspector.records)
        return result, inspector.unreadable()
    finally:
        progress.done()


class Progress:
    """A line on stderr saying what a long command is doing, only when stderr is a terminal
    (a script or a log file gets nothing)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.on = sys.stderr.isatty()
        self._last = 0.0

    def counted(self, items: Iterable[T], size: Callable[[T], int] = lambda _: 1) -> Iterator[T]:
        """`items`, saying how many so far (`size`: how many each item stands for)."""
        if not self.on:
            yield from items  # nothing to count for: a million records pass straight through
            return
        count = shown = 0
        for item in items:
            count += size(item)
            if count - shown >= 10_000 and time.monotonic() - self._last > 0.2:
                self._last = time.monotonic()
                shown = count
                self.say(f"{self.what}: {count:,}")
            yield item

    def say(self, text: str) -> None:
        if self.on:
            print(f"\r\x1b[K{text} ...", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.on:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)
