"""structlog configuration: JSON lines for collectors, readable lines for people.

The only global state ingestd keeps is this logging setup. Every JSON line starts with
`timestamp`, `level`, `event`, `worker`; console output turns the `stats` event into the
specified line, `Files processed: 5, Total Time: 35, Sum of Squares: 30`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from ingestd.runtime.stats import stats_line

_LEADING = ("timestamp", "level", "event", "worker")

Log = FilteringBoundLogger  # what `get_logger` returns: typed, bound to a worker


def _leading_keys_first(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    ordered = {key: event_dict.pop(key) for key in _LEADING if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _stats_as_line(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    if event_dict.get("event") == "stats":
        event_dict["event"] = stats_line(
            event_dict.pop("files_processed", 0),
            event_dict.pop("total_time", 0.0),
            event_dict.pop("sum_of_squares", 0.0),
        )
    return event_dict


class Output:
    """The stream log lines go to; a reader that goes away ends the worker, not a traceback.

    `ingestd run DIR | head -1` closes the pipe after one line. The next write raises
    BrokenPipeError wherever a log call happens; here it is caught once, the descriptor is
    pointed at /dev/null (so the interpreter's last flush is quiet too) and `on_closed` is
    called: the daemon drains and exits.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed_by_reader = False
        self.on_closed: Callable[[], object] | None = None

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def _reader_gone(self) -> None:
        self.closed_by_reader = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass  # not a real descriptor (tests): nothing to quiet
        if self.on_closed is not None:
            self.on_closed()


_output: Output | None = None


def on_output_closed(callback: Callable[[], object] | None) -> None:
    """Call `callback` (from any thread) once the log reader has gone away."""
    if _output is not None:
        _output.on_closed = callback


def flush() -> None:
    """Flush the log stream (before an immediate exit)."""
    if _output is not None:
        _output.flush()


def resolve_format(log_format: str, stream: TextIO) -> str:
    if log_format != "auto":
        return log_format
    return "console" if stream.isatty() else "json"


def configure(log_format: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog for this process; call once, before the first log line."""
    global _output
    out = stream or sys.stdout
    _output = Output(out)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Processor]
    if resolve_format(log_format, out) == "json":
        renderer = [
            structlog.processors.dict_tracebacks,
            _leading_keys_first,
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = [
            _stats_as_line,
            structlog.dev.ConsoleRenderer(colors=out.isatty(), sort_keys=False),
        ]
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(_output),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Log:
    logger: Log = structlog.get_logger().bind(**context)
    return logger
