"""structlog configuration: JSON lines for collectors, readable lines for people.

The only global state ingestd keeps is this logging setup. Every JSON line starts with
`timestamp`, `level`, `event`, `worker`; console output turns the `stats` event into the
challenge's own line, `Files processed: 5, Total Time: 35, Sum of Squares: 30`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from .stats import stats_line

_LEADING = ("timestamp", "level", "event", "worker")


def _leading_keys_first(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    ordered = {key: event_dict.pop(key) for key in _LEADING if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _stats_as_challenge_line(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    if event_dict.get("event") == "stats":
        event_dict["event"] = stats_line(
            event_dict.pop("files_processed", 0),
            event_dict.pop("total_time", 0.0),
            event_dict.pop("sum_of_squares", 0.0),
        )
    return event_dict


def resolve_format(log_format: str, stream: TextIO) -> str:
    if log_format != "auto":
        return log_format
    return "console" if stream.isatty() else "json"


def configure(log_format: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog for this process; call once, before the first log line."""
    out = stream or sys.stdout
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
            _stats_as_challenge_line,
            structlog.dev.ConsoleRenderer(colors=out.isatty(), sort_keys=False),
        ]
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    return structlog.get_logger().bind(**context)
