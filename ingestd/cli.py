"""Command line: `ingestd [run] DIR`, `status`, `pause`, `resume`, `verify`, `failed`, `retry`,
`workers`.

Options come from `settings.OPTIONS`, each with an `INGESTD_*` environment default that only
`run` reads (a bad run-only variable must not break `status`); an empty variable is unset, an
unknown `INGESTD_*` variable is warned about. Mistakes a person can fix (a bad option, an
unknown command, an unusable state dir, an unsafe NFS mount) print one line on stderr and exit
2; no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import math
import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, logs, naming
from .settings import (
    OPTIONS,
    S3_RESCAN_INTERVAL,
    Option,
    Settings,
    default_worker_id,
    file_ledger_path,
    is_bucket_url,
    is_database_url,
    non_negative,
    state_dir_for,
)

COMMANDS = (
    "run", "status", "pause", "resume", "verify", "failed", "retry", "workers", "health",
    "timeline", "explain", "compact",
)  # fmt: skip
USAGE_ERROR = 2
STATE_DIR_ENV = "INGESTD_STATE_DIR"
LEDGER_ENV = "INGESTD_LEDGER"
KNOWN_ENV = frozenset({option.env for option in OPTIONS} | {STATE_DIR_ENV, LEDGER_ENV})


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _typed(option: Option) -> Any:
    def convert(text: str) -> Any:
        try:
            return option.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = option.name.replace("_", "-")
    return convert


def _env_default(option: Option) -> Any:
    text = os.environ.get(option.env)
    if not text:
        return None  # unset, or set to nothing: the default
    if option.choices and text not in option.choices:
        raise UsageError(f"{option.env}={text!r}: choose from {', '.join(option.choices)}")
    try:
        return option.parse(text)
    except ValueError as exc:
        raise UsageError(f"{option.env}: {exc}") from None


def _help(option: Option) -> str:
    text, default = option.help, option.default
    if default is not None and not option.flag:
        text += f" (default {default:g})" if isinstance(default, float) else f" (default {default})"
    return f"{text} [env {option.env}]"


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    # No defaults here: the environment is read by `settings_from`, for `run` only.
    for option in OPTIONS:
        if option.flag:
            parser.add_argument(
                option.cli, action=argparse.BooleanOptionalAction, help=_help(option)
            )
        else:
            parser.add_argument(
                option.cli,
                type=_typed(option),
                choices=option.choices,
                help=_help(option),
                metavar=None if option.choices else option.metavar,
            )


def _add_dir(parser: argparse.ArgumentParser) -> None:
    """DIR and --state-dir, for the operator commands."""
    parser.add_argument("dir", metavar="DIR", type=_dir_or_bucket,
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


def _dir_or_bucket(text: str) -> Path | str:
    return text if is_bucket_url(text) else Path(text)


def _interval_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    # Names have minute resolution: a shorter step has no meaning and an unbounded count.
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of minutes >= 1")
    return value


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
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


def _days(text: str) -> float:
    try:
        return non_negative(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"days: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ingestd",
        description="Process every YYYY_MM_DD_HH_MM.txt file that lands in DIR exactly once, "
        "across any number of workers sharing DIR.",
    )
    parser.add_argument("--version", action="version", version=f"ingestd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a worker (the default command)")
    run.add_argument("dir", metavar="DIR", type=_dir_or_bucket,
                     help="the watched data directory, or s3://BUCKET[/PREFIX]")  # fmt: skip
    _add_run_options(run)

    status = sub.add_parser("status", help="what the fleet is doing; exit 1 if it needs attention")
    _add_dir(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--prometheus", action="store_true",
                        help="the fleet's metrics in Prometheus text format, once")  # fmt: skip
    status.add_argument(
        "--interval-minutes",
        type=_interval_minutes,
        default=15.0,
        metavar="M",
        help="the provider's schedule step, for missing slots (15)",
    )

    for name, text in (("pause", "stop claiming, cluster-wide"), ("resume", "claim again")):
        _add_dir(sub.add_parser(name, help=text))

    verify = sub.add_parser("verify", help="audit the manifest; exit 1 on any violation")
    _add_dir(verify)
    verify.add_argument("--expect", type=int, help="the number of files that must be done")
    verify.add_argument("--json", action="store_true", help="machine-readable output")

    failed = sub.add_parser("failed", help="list failed files with their reasons")
    _add_dir(failed)
    failed.add_argument("--json", action="store_true", help="machine-readable output")

    retry = sub.add_parser("retry", help="let failed files be processed again")
    _add_dir(retry)
    retry.add_argument("names", nargs="+", metavar="NAME", help="failed file names")

    health = sub.add_parser(
        "health", help="exit 0 if this host's worker is live (--ready: and ready)"
    )
    _add_dir(health)
    health.add_argument(
        "--worker", metavar="ID", help="the worker (default: every one on this host)"
    )
    health.add_argument("--ready", action="store_true",
                        help="also: source readable, state writable, not paused")  # fmt: skip

    timeline = sub.add_parser(
        "timeline", help="draw who processed which file when, beside the ideal schedule"
    )
    _add_dir(timeline)
    timeline.add_argument("--output", "-o", type=Path, required=True, metavar="FILE",
                          help="the picture: a .png or .svg file")  # fmt: skip
    timeline.add_argument(
        "--machines", type=int, metavar="N", help="machines in the ideal schedule (its workers)"
    )
    window = timeline.add_mutually_exclusive_group()
    window.add_argument(
        "--since",
        type=_moment,
        metavar="TIME",
        help="only files finished at or after TIME (ISO 8601, UTC if no zone)",
    )
    window.add_argument(
        "--last",
        type=_duration,
        metavar="SPAN",
        help="only files finished in the last SPAN (e.g. 90m, 6h, 2d)",
    )

    explain = sub.add_parser("explain", help="everything known about one file, and why")
    _add_dir(explain)
    explain.add_argument("name", metavar="NAME", help="the file's name, e.g. 2018_06_28_00_00.txt")
    explain.add_argument("--json", action="store_true", help="machine-readable output")

    compact = sub.add_parser(
        "compact", help="rewrite the manifest to one record per file (safe while workers run)"
    )
    _add_dir(compact)
    compact.add_argument("--archive", action="store_true",
                         help="keep the old manifest as manifest-DATE.jsonl")  # fmt: skip
    compact.add_argument("--retain", type=_days, metavar="DAYS",
                         help="drop records of files gone and older than DAYS, unless "
                              "publishing still needs them")  # fmt: skip
    compact.add_argument("--output-dir", type=Path, metavar="PATH",
                         help="the workers' --output-dir with --publish-in-order "
                              "(default DIR/out)")  # fmt: skip

    workers = sub.add_parser("workers", help="list workers by heartbeat; --prune removes lost ones")
    _add_dir(workers)
    workers.add_argument("--prune", action="store_true", help="remove lost workers' heartbeats")
    workers.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the command line, then `INGESTD_*` variables, then the defaults."""
    values = {}
    for option in OPTIONS:
        value = getattr(args, option.name)
        if value is None:
            value = _env_default(option)
        if value is not None:
            values[option.name] = value
    state_dir = file_ledger_path(values.get("ledger")) or values.pop("state_dir", None)
    values.pop("state_dir", None)
    if is_bucket_url(args.dir):
        bucket_settings(args.dir, values, state_dir)
        # Never read or written: a bucket has no directory; state lives where told.
        data_dir = Path("/nonexistent-bucket-source")
    else:
        data_dir = Path(os.path.abspath(args.dir))
    host = socket.gethostname()
    return Settings(
        data_dir=data_dir,
        state_dir=Path(os.path.abspath(state_dir_for(data_dir, state_dir))),
        worker_id=values.pop("worker_id", None) or default_worker_id(host),
        host=host,
        **values,
    )


def bucket_settings(url: str, values: dict[str, Any], state_dir: Path | None) -> None:
    """What an s3:// source adds to the settings; `UsageError` for what it cannot do."""
    from .sources.s3 import Location

    try:
        Location.parse(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if state_dir is None and not is_database_url(values.get("ledger")):
        raise UsageError(
            f"{url}: a bucket source needs --ledger postgresql://... or --state-dir PATH "
            "(a directory every worker shares): coordination cannot live in the bucket"
        )
    values["source_url"] = url
    values.setdefault("rescan_interval", S3_RESCAN_INTERVAL)


def _run(args: argparse.Namespace) -> int:
    from .compose import build_daemon
    from .daemon import StartupError
    from .handlers import HandlerError

    settings = settings_from(args)
    naming.use_pattern(settings.key_pattern)  # before any name is looked at
    logs.configure(settings.log_format, settings.log_level)
    log = logs.get_logger(worker=settings.worker_id)
    try:
        daemon = build_daemon(settings, log)
    except HandlerError as exc:
        raise UsageError(str(exc)) from None
    try:
        code = asyncio.run(daemon.run())
    except StartupError as exc:
        log.error("startup_failed", error=str(exc))
        raise UsageError(str(exc)) from None
    if daemon.exit_now:
        # Handler threads outlived the drain: end now, so they stop and the kernel
        # releases their claims (waiting for them would let a peer run the same files).
        logs.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _warn_unknown_variables() -> None:
    for name in sorted(os.environ):
        if name.startswith("INGESTD_") and name not in KNOWN_ENV:
            close = difflib.get_close_matches(name, KNOWN_ENV, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            print(f"ingestd: warning: {name} is not an ingestd variable (ignored){hint}",
                  file=sys.stderr)  # fmt: skip


def _implied_run(first: str) -> bool:
    """Whether `ingestd FIRST ...` means `ingestd run FIRST ...`; UsageError for a typo."""
    if first in COMMANDS or first in ("-h", "--help", "--version"):
        return False
    if first.startswith("-") or "/" in first or os.path.exists(first):
        return True
    # A bare word that is neither a command nor something here: far likelier a mistyped
    # command than a directory still to come (that one can be named `ingestd run WORD`).
    close = difflib.get_close_matches(first, COMMANDS, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UsageError(
        f"unknown command {first!r}: {hint}commands are {', '.join(COMMANDS)}; to watch a "
        f"directory that does not exist yet, use 'ingestd run {first}'"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _warn_unknown_variables()
    if not argv:
        print("ingestd: error: missing DIR (usage: ingestd [run] DIR [options]; see --help)",
              file=sys.stderr)  # fmt: skip
        return USAGE_ERROR
    try:
        if _implied_run(argv[0]):
            argv.insert(0, "run")  # `python -m ingestd DIR` means `ingestd run DIR`
        args = build_parser().parse_args(argv)
        if args.command == "run":
            return _run(args)
        try:
            naming.use_pattern(args.key_pattern)
        except ValueError as exc:
            raise UsageError(f"--key-pattern: {exc}") from None
        from . import status

        return status.main(args)
    except UsageError as exc:
        print(f"ingestd: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `ingestd verify DIR | head -3`: the reader has what it wanted. Point stdout at
        # /dev/null so the interpreter's final flush does not complain, and say nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # what a shell reports for a process ended by SIGPIPE
