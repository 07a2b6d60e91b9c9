"""What several commands read the same way: the files present, the records audited, and a
progress line on a terminal while a big ledger is read."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from ingestd.commands import target
from ingestd.commands.audit import Audit, audit
from ingestd.contracts.ledger import Inspector, Summary
from ingestd.contracts.source import Source

T = TypeVar("T")


def present(source: Source) -> dict[str, tuple[int, int]]:
    try:
        return source.scan(lambda _: False).candidates
    except OSError:
        return {}


def audited(args: argparse.Namespace, expected: int | None = None) -> tuple[Audit, int]:
    source, inspector = target.view(args)
    return audited_view(source, inspector, expected)


def audited_view(
    source: Source, inspector: Inspector, expected: int | None = None
) -> tuple[Audit, int]:
    """The audit of every record, and how many could not be read."""
    progress = Progress("reading records")

    def summaries() -> Iterator[Summary]:
        return progress.counted(inspector.summaries())

    progress.say("listing the source")
    found = present(source)
    try:
        return audit(summaries, found, expected, full=inspector.records), inspector.unreadable()
    finally:
        progress.done()


class Progress:
    """A line on stderr saying what a long command is doing, only when stderr is a terminal
    (a script or a log file gets nothing)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.on = sys.stderr.isatty()
        self._last = 0.0

    def counted(self, items: Iterable[T]) -> Iterator[T]:
        for count, item in enumerate(items, 1):
            if self.on and count % 10_000 == 0 and time.monotonic() - self._last > 0.2:
                self._last = time.monotonic()
                self.say(f"{self.what}: {count:,}")
            yield item

    def say(self, text: str) -> None:
        if self.on:
            print(f"\r\x1b[K{text} ...", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.on:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)
