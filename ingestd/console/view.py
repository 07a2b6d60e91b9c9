"""What the console shows, read from the ledger by one thread every few seconds: a `Board`.

A page is rendered from the newest board and never waits on a ledger read, so it costs the
same at a hundred files or a hundred thousand. The timeline picture and the fleet's metrics
need a full read of the records: they are refreshed less often.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingestd.commands.schedule import build
from ingestd.commands.status import prometheus_of, report_of
from ingestd.contracts.ledger import Inspector
from ingestd.contracts.naming import is_data_name, sort_key
from ingestd.contracts.source import Source
from ingestd.runtime.logs import Log

FAILURES_LISTED = 20
RASTER_ABOVE = 2_000  # files in the timeline past which its bars are drawn as one image
SLOW_EVERY = 6  # the timeline and the metrics: every SLOW_EVERY-th refresh


@dataclass(frozen=True)
class Failure:
    file: str
    error: str
    worker: str
    finished_at: str


@dataclass(frozen=True)
class Board:
    """One reading of the fleet."""

    report: dict[str, Any]  # what `ingestd status --json` prints
    failures: list[Failure]  # the newest FAILURES_LISTED, newest first
    gathered_at: float  # epoch seconds
    took: float  # seconds the reading took
    timeline: bytes | None = None  # SVG, when matplotlib is installed
    timeline_note: str = ""  # why there is no picture, or what it shows
    metrics: bytes | None = None  # the fleet's, in Prometheus text format
    error: str | None = None  # why the last reading failed: this board is an older one


@dataclass(frozen=True)
class Scope:
    """Where the console looks, and how far back its timeline goes."""

    source: Source
    inspector: Inspector
    label: str  # DIR or the bucket, as the operator named it
    exact_mtimes: bool = True  # the source's modification times are real (a bucket's: tags)
    minutes: float = 15.0  # the provider's step, for missing slots
    timeline_hours: float = 6.0


@dataclass
class Watch:
    """Reads a `Board` every `refresh` seconds in a daemon thread; `board` is the newest."""

    scope: Scope
    log: Log
    refresh: float = 5.0
    board: Board | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _slow: tuple[bytes | None, str, bytes | None] = (None, "", None)
    _count: int = 0

    def start(self) -> None:
        threading.Thread(target=self._loop, name="console-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.read()
            self._stop.wait(self.refresh)

    def read(self) -> Board:
        """Read the fleet once (the thread's step; tests call it directly)."""
        started = time.monotonic()
        try:
            report = report_of(self.scope.source, self.scope.inspector, self.scope.label,
                               self.scope.minutes)  # fmt: skip
            failures = last_failures(self.scope.inspector.failed_records())
            if self._count % SLOW_EVERY == 0:
                self._slow = (*timeline_svg(self.scope), fleet_metrics(self.scope, report))
            self._count += 1
        except Exception as exc:  # a ledger down, a bucket unreachable: say so, keep serving
            if self.board is None or self.board.error is None:
                self.log.warning("console_read_failed", error=str(exc))
            why = f"{type(exc).__name__}: {exc}"
            old = self.board or Board({}, [], time.time(), 0.0)
            self.board = Board(old.report, old.failures, old.gathered_at, old.took,
                               old.timeline, old.timeline_note, old.metrics, why)  # fmt: skip
            return self.board
        took = time.monotonic() - started
        picture, note, metrics = self._slow
        self.board = Board(report, failures, time.time(), took, picture, note, metrics)
        return self.board


def last_failures(failed: dict[str, Any]) -> list[Failure]:
    """The newest failures first (by when they failed, then by name). Pure."""
    rows = [
        Failure(name, record.error or "", record.worker or "", record.finished_at or "")
        for name, record in failed.items()
        if is_data_name(name)
    ]
    rows.sort(key=lambda f: (f.finished_at, sort_key(f.file)), reverse=True)
    return rows[:FAILURES_LISTED]


def timeline_svg(scope: Scope) -> tuple[bytes | None, str]:
    """The timeline of the last hours as SVG, drawn by `ingestd timeline`'s own code."""
    try:
        from ingestd.commands import plot
    except ImportError:
        return None, "the timeline needs: pip install 'ingestd[plot]'"
    since = datetime.now(UTC) - timedelta(hours=scope.timeline_hours)
    drawn = build(scope.inspector.records(), None, since)
    if not drawn.actual:
        return None, f"no file finished in the last {scope.timeline_hours:g} h"
    figure = plot.render(drawn, scope.label)
    if len(drawn.actual) > RASTER_ABOVE:
        for axes in figure.axes:
            for bars in axes.collections:
                bars.set_rasterized(True)  # one picture, not a path per file
    out = io.BytesIO()
    try:
        figure.savefig(out, format="svg")
    finally:
        plot.close(figure)
    return out.getvalue(), f"the last {scope.timeline_hours:g} h: {len(drawn.actual)} files"


def fleet_metrics(scope: Scope, report: dict[str, Any]) -> bytes | None:
    """`ingestd status --prometheus`'s exposition, or None without the metrics extra."""
    if importlib.util.find_spec("prometheus_client") is None:
        return None
    return prometheus_of(scope.source, scope.inspector, report)
