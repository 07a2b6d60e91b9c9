"""Command line: `ingestd [run] DIR` and the operator commands, each a `Command` of its own
module named here. Mistakes a person can fix (a bad option, an unknown command, an unusable
state dir, an unsafe NFS mount) print one line on stderr and exit 2; no traceback.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys

from ingestd import __version__
from ingestd.commands.arguments import (
    LEDGER_ENV,
    STATE_DIR_ENV,
    USAGE_ERROR,
    Command,
    Parser,
    UsageError,
)
from ingestd.contracts import naming
from ingestd.contracts.errors import StartupError
from ingestd.runtime.imports import import_object
from ingestd.runtime.settings import OPTIONS, Settings

# name -> "module:attribute" of its Command, in the order `--help` lists them.
REGISTRY = {
    "run": "ingestd.commands.run:COMMAND",
    "status": "ingestd.commands.status:COMMAND",
    "pause": "ingestd.commands.pause:PAUSE",
    "resume": "ingestd.commands.pause:RESUME",
    "verify": "ingestd.commands.verify:VERIFY",
    "failed": "ingestd.commands.verify:FAILED",
    "retry": "ingestd.commands.verify:RETRY",
    "workers": "ingestd.commands.workers:COMMAND",
    "health": "ingestd.commands.health:COMMAND",
    "timeline": "ingestd.commands.timeline:COMMAND",
    "explain": "ingestd.commands.explain:COMMAND",
    "compact": "ingestd.commands.compact:COMMAND",
    "rejects": "ingestd.commands.rejects:COMMAND",
    "reload": "ingestd.commands.reload:COMMAND",
    "migrate": "ingestd.commands.migrate:COMMAND",
    "console": "ingestd.console.command:COMMAND",
}
COMMANDS = tuple(REGISTRY)
TEST_ENV_PREFIX = "INGESTD_TEST_"
KNOWN_ENV = frozenset({option.env for option in OPTIONS} | {STATE_DIR_ENV, LEDGER_ENV})


def command(name: str) -> Command:
    found: Command = import_object(REGISTRY[name])
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ingestd",
        description="Process every YYYY_MM_DD_HH_MM.txt file that lands in DIR exactly once, "
        "across any number of workers sharing DIR.",
    )
    parser.add_argument("--version", action="version", version=f"ingestd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        each = command(name)
        each.arguments(sub.add_parser(name, help=each.help))
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings `ingestd run` would run with (see `ingestd.commands.run`)."""
    from ingestd.commands.run import settings_from as from_args

    return from_args(args)


def _warn_unknown_variables() -> None:
    for name in sorted(os.environ):
        if name.startswith(TEST_ENV_PREFIX):
            continue  # the test suite's own (which servers it runs against): not the worker's
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


def operate(each: Command, args: argparse.Namespace) -> int:
    """An operator command: DIR checked first (a typo must not look like a healthy, empty
    fleet); what it cannot read or reach is one line and exit 2."""
    from ingestd.commands import target

    try:
        naming.use_pattern(args.key_pattern)
    except ValueError as exc:
        raise UsageError(f"--key-pattern: {exc}") from None
    problem = target.problem(args)
    if problem is None:
        try:
            return each.run(args)
        except BrokenPipeError:
            raise  # the reader closed the pipe: not an error (main ends quietly)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            problem = f"{exc.strerror or exc}{where}"
        except StartupError as exc:
            problem = str(exc)
    print(f"ingestd: error: {problem}", file=sys.stderr)
    return 2


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
        each = command(args.command)
        return operate(each, args) if each.reads_dir else each.run(args)
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
