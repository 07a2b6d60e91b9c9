"""Command line: `ingestd [run] DIR`, `status`, `pause`, `resume`, `verify`, `failed`, `retry`.

Options come from `settings.OPTIONS`, each with an `INGESTD_*` environment default. Mistakes a
person can fix (a bad option, an unusable state dir, an unsafe NFS mount) print one line on
stderr and exit 2; no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, logs
from .settings import OPTIONS, Option, Settings, default_worker_id, state_dir_for

COMMANDS = ("run", "status", "pause", "resume", "verify", "failed", "retry")
USAGE_ERROR = 2


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
    if text is None:
        return None
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
    for option in OPTIONS:
        default = _env_default(option)
        if option.flag:
            parser.add_argument(
                option.cli,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=_help(option),
            )
        else:
            parser.add_argument(
                option.cli,
                type=_typed(option),
                choices=option.choices,
                default=default,
                help=_help(option),
                metavar=None if option.choices else option.metavar,
            )


def _add_dir(parser: argparse.ArgumentParser) -> None:
    """DIR and --state-dir, for the operator commands."""
    parser.add_argument("dir", metavar="DIR", type=Path, help="the watched data directory")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=os.environ.get("INGESTD_STATE_DIR"),
        help="shared bookkeeping directory (default DIR/.ingestd)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ingestd",
        description="Process every YYYY_MM_DD_HH_MM.txt file that lands in DIR exactly once, "
        "across any number of workers sharing DIR.",
    )
    parser.add_argument("--version", action="version", version=f"ingestd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a worker (the default command)")
    run.add_argument("dir", metavar="DIR", type=Path, help="the watched data directory")
    _add_run_options(run)

    status = sub.add_parser("status", help="what the fleet is doing; exit 1 if it needs attention")
    _add_dir(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--interval-minutes", type=float, default=15.0, help="schedule step (15)")

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
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    values = {
        option.name: getattr(args, option.name)
        for option in OPTIONS
        if getattr(args, option.name) is not None
    }
    data_dir = Path(os.path.abspath(args.dir))
    state_dir = values.pop("state_dir", None)
    host = socket.gethostname()
    return Settings(
        data_dir=data_dir,
        state_dir=Path(os.path.abspath(state_dir_for(data_dir, state_dir))),
        worker_id=values.pop("worker_id", None) or default_worker_id(host),
        host=host,
        **values,
    )


def _run(args: argparse.Namespace) -> int:
    from .daemon import Daemon, StartupError
    from .handlers import HandlerError, load_handler

    settings = settings_from(args)
    try:
        handler = load_handler(settings.handler)
    except HandlerError as exc:
        raise UsageError(str(exc)) from None
    logs.configure(settings.log_format, settings.log_level)
    log = logs.get_logger(worker=settings.worker_id)
    try:
        return asyncio.run(Daemon(settings, handler, log).run())
    except StartupError as exc:
        log.error("startup_failed", error=str(exc))
        raise UsageError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("ingestd: error: missing DIR (usage: ingestd [run] DIR [options]; see --help)",
              file=sys.stderr)  # fmt: skip
        return USAGE_ERROR
    if (
        argv[0] not in COMMANDS
        and argv[0] not in COMMANDS
        and argv[0] not in ("-h", "--help", "--version")
    ):
        argv.insert(0, "run")  # `python -m ingestd DIR` means `ingestd run DIR`
    try:
        args = build_parser().parse_args(argv)
        if args.command == "run":
            return _run(args)
        from . import status

        return status.main(args)
    except UsageError as exc:
        print(f"ingestd: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130
