"""`ingestd [run] DIR`: the worker. Its options come from `settings.OPTIONS`, each with an
`INGESTD_*` environment default that only `run` reads (a bad run-only variable must not break
`status`); an empty variable is unset. What the source's and the ledger's kinds add (a
bucket's rescan interval, where state lives) is asked of their registries."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from ingestd import ledgers, sources
from ingestd.commands.arguments import Command, UsageError, argument_type
from ingestd.contracts import naming
from ingestd.runtime import logs
from ingestd.runtime.settings import OPTIONS, Option, Settings, default_worker_id


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR",
                        help="the watched data directory, or s3://BUCKET[/PREFIX]")  # fmt: skip
    _add_run_options(parser)


def _typed(option: Option) -> Any:
    return argument_type(option.parse, option.name.replace("_", "-"))


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
    # argparse expands %-formats in help texts: a literal % (as in reject:P%) is written %%.
    return f"{text} [env {option.env}]".replace("%", "%%")


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


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the command line, then `INGESTD_*` variables, then the defaults, then
    what the source's and the ledger's kinds say. `UsageError` for what cannot work."""
    values = {}
    for option in OPTIONS:
        value = getattr(args, option.name)
        if value is None:
            value = _env_default(option)
        if value is not None:
            values[option.name] = value
    try:
        source_kind = sources.kind(args.dir)
        source = source_kind.parse(args.dir)
        ledger_kind = ledgers.kind(values.get("ledger"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ledger = values.pop("ledger", None)
    given = values.pop("state_dir", None)
    state_dir = (ledger_kind.state_dir(ledger) if ledger else None) or given
    state_dir = state_dir or source_kind.default_state_dir(source)
    if ledger_kind.uses_state_dir:
        ledger = None  # the state dir is the ledger
        if state_dir is None:
            raise UsageError(
                f"{args.dir}: a bucket source needs --ledger postgresql://... or --state-dir "
                "PATH (a directory every worker shares): coordination cannot live in the bucket"
            )
    if source_kind.rescan_interval is not None:
        values.setdefault("rescan_interval", source_kind.rescan_interval)
    if values.get("output_dir") is None:
        values["output_dir"] = source_kind.default_output_dir(source)
    host = socket.gethostname()
    return Settings(
        source=source,
        state_dir=None if state_dir is None else Path(os.path.abspath(state_dir)),
        worker_id=values.pop("worker_id", None) or default_worker_id(host),
        host=host,
        source_id=sources.identity(source, values.get("fleet")),
        ledger=ledger,
        **values,
    )


class StoppedBeforeStart(BaseException):
    """SIGTERM or SIGHUP while the worker was still starting: it holds nothing yet. A
    BaseException, as KeyboardInterrupt is, so no `except Exception` on the way swallows it."""


def _stop_before_start(signum: int, frame: FrameType | None) -> None:
    raise StoppedBeforeStart(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    # Until the daemon installs its own handlers, a stop means: stop starting, exit 0 (what
    # a drain of nothing is), not death by the signal's default action mid-import.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_before_start)
    try:
        return _run(args)
    except StoppedBeforeStart as stop:
        print(f"ingestd: stopped by {stop} while starting; nothing was claimed", file=sys.stderr)
        return 0


def _run(args: argparse.Namespace) -> int:
    from ingestd.commands.compose import build_daemon
    from ingestd.contracts.errors import StartupError
    from ingestd.handlers import HandlerError

    settings = settings_from(args)
    naming.use_pattern(settings.key_pattern)  # before any name is looked at
    logs.configure(settings.log_format, settings.log_level)
    log = logs.get_logger(worker=settings.worker_id)
    try:
        daemon = build_daemon(settings, log)
        code = asyncio.run(daemon.run())
    except HandlerError as exc:
        raise UsageError(str(exc)) from None
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


COMMAND = Command("run", "run a worker (the default command)", arguments, run, reads_dir=False)
