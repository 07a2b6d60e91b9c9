"""Arguments shared by the commands: DIR and where its ledger is, and the value parsers of the
operator commands' options. A mistake in any is a `UsageError`: one line, exit 2."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn, TypeVar

from ingestd.runtime.settings import non_negative

USAGE_ERROR = 2
# Every exit status ingestd returns, and what it means (the reference pages are made from this).
EXIT_CODES = {
    0: "success: `run` stopped by SIGTERM or SIGHUP after its drain (or while still starting, "
    "before it held anything), or by `--exit-when-idle`; "
    "an operator command found nothing that needs attention",
    1: "needs attention: `status` (a failed file, a lost worker, a blocked key, ...), `verify` "
    "(a violation), `health` (not live or not ready), `retry` (a name refused), `explain` "
    "(nothing known of the name); `run`: one of its tasks crashed",
    USAGE_ERROR: "a mistake a person can fix, said in one line on stderr: a bad option or "
    "value, an unknown command, an unusable DIR, state dir, output dir or ledger, an unsafe "
    "NFS mount, a worker id already in use",
    130: "`run` stopped by SIGINT (Ctrl-C) after its drain",
    141: "the reader of the output went away (`ingestd verify DIR | head -3`)",
    128 + 15: "`run` forced out by a second signal during its drain (128 + the signal's "
    "number; the kernel drops its claims, and its files are taken over)",
}
STATE_DIR_ENV = "INGESTD_STATE_DIR"
LEDGER_ENV = "INGESTD_LEDGER"


T = TypeVar("T")


def argument_type(parse: Callable[[str], T], name: str | None = None) -> Callable[[str], T]:
    """A value parser that raises ValueError, as an argparse type (its message shown)."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name or parse.__name__
    return convert


class UsageError(Exception):
    """A mistake on the command line: shown as one line, exit 2."""


@dataclass(frozen=True)
class Command:
    """One `ingestd` command: its name, help line, arguments and what it does (its exit code).
    An operator command (`reads_dir`) has DIR checked before it runs, and an OSError or a
    StartupError it raises becomes one line and exit 2."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    reads_dir: bool = True


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def add_dir(parser: argparse.ArgumentParser) -> None:
    """DIR and --state-dir, for the operator commands."""
    parser.add_argument("dir", metavar="DIR",
                        help="the watched data directory, or s3://BUCKET[/PREFIX]")  # fmt: skip
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=os.environ.get(STATE_DIR_ENV) or None,
        help=f"shared bookkeeping directory (default DIR/.ingestd) [env {STATE_DIR_ENV}]",
    )
    parser.add_argument(
        "--ledger",
        default=os.environ.get(LEDGER_ENV) or None,
        metavar="URL",
        help=f"postgresql://... or a state dir (file:PATH) [env {LEDGER_ENV}]",
    )
    parser.add_argument(
        "--pg-schema",
        default=os.environ.get("INGESTD_PG_SCHEMA") or "ingestd",
        help="schema of ingestd's tables in a postgresql:// ledger (ingestd)",
    )
    parser.add_argument(
        "--fleet",
        default=os.environ.get("INGESTD_FLEET") or None,
        metavar="NAME",
        help="the workers' --fleet, if they have one [env INGESTD_FLEET]",
    )
    parser.add_argument(
        "--key-pattern",
        default=os.environ.get("INGESTD_KEY_PATTERN") or None,
        metavar="REGEX",
        help="the workers' --key-pattern, if they have one [env INGESTD_KEY_PATTERN]",
    )


def interval_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    # Names have minute resolution: a shorter step has no meaning and an unbounded count.
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of minutes >= 1")
    return value


def moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    number, unit = text[:-1], text[-1:].lower()
    try:
        value = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a span: a number and s, m, h or d (e.g. 90m, 6h, 2d)"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive span")
    return timedelta(seconds=value)


def days(text: str) -> float:
    try:
        return non_negative(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"days: {exc}") from None
