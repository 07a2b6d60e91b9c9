"""`ingestd console DIR`: serve the console until stopped (SIGINT or SIGTERM), and what a
worker's `--console` serves on its metrics port."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import threading
from pathlib import Path
from types import FrameType

from ingestd import ledgers, sources
from ingestd.commands import target
from ingestd.commands.arguments import (
    Command,
    UsageError,
    add_dir,
    argument_type,
    interval_minutes,
)
from ingestd.console.actions import Token, loose_permissions, read_tokens
from ingestd.console.app import Console
from ingestd.console.view import Scope, Watch
from ingestd.contracts.errors import StartupError
from ingestd.runtime import logs
from ingestd.runtime.http import serve
from ingestd.runtime.settings import LOG_FORMATS, Settings, host_port, positive

DEFAULT_LISTEN = "127.0.0.1:9465"


def _host_port(text: str) -> tuple[str, int]:
    """HOST:PORT; port 0 takes any free port (the log line says which)."""
    try:
        if text.endswith(":0"):
            return host_port(text[:-1] + "1")[0], 0
        return host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--listen", type=_host_port, default=_host_port(DEFAULT_LISTEN),
                        metavar="HOST:PORT", help=f"where to serve ({DEFAULT_LISTEN}; "
                        "another address only behind a firewall or a proxy)")  # fmt: skip
    parser.add_argument("--refresh", type=argument_type(positive), default=5.0, metavar="S",
                        help="seconds between readings of the ledger (5)")  # fmt: skip
    parser.add_argument("--timeline-hours", type=argument_type(positive), default=6.0, metavar="H",
                        help="how far back the page's timeline goes (6)")  # fmt: skip
    parser.add_argument("--interval-minutes", type=interval_minutes, default=15.0, metavar="M",
                        help="the provider's schedule step, for missing slots (15)")  # fmt: skip
    parser.add_argument("--console-actions", action="store_true",
                        help="allow retry, pause and resume (POST, with a token)")  # fmt: skip
    parser.add_argument("--console-token-file", type=Path, metavar="PATH",
                        help="NAME:TOKEN lines: who may act (for --console-actions)")  # fmt: skip
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="auto",
                        help="auto: console on a TTY, else JSON")  # fmt: skip


def tokens_from(actions: bool, path: Path | None) -> list[Token] | None:
    """The tokens that may act, or None (read-only); StartupError for an unusable file."""
    if not actions:
        if path is not None:
            raise StartupError("--console-token-file is for --console-actions: give both")
        return None
    if path is None:
        raise StartupError("--console-actions needs --console-token-file PATH (NAME:TOKEN lines)")
    try:
        tokens = read_tokens(path)
        if loose_permissions(path):
            raise StartupError(f"{path}: others may read the tokens: chmod 600 {path}")
    except OSError as exc:
        raise StartupError(f"--console-token-file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    return tokens


def cmd_console(args: argparse.Namespace) -> int:
    logs.configure(args.log_format)
    log = logs.get_logger()
    tokens = tokens_from(args.console_actions, args.console_token_file)
    source, inspector = target.view(args)
    scope = Scope(source, inspector, str(args.dir), sources.kind(args.dir).exact_mtimes,
                  args.interval_minutes, args.timeline_hours)  # fmt: skip
    where = target.where(args)
    console = Console(Watch(scope, log, args.refresh), log, tokens,
                      writable=lambda: ledgers.kind(args.ledger).writable(where))  # fmt: skip
    host, port = args.listen
    try:
        server = serve(console, host, port, "console-http")
    except OSError as exc:
        raise UsageError(f"--listen {host}:{port}: {exc.strerror or exc}") from None
    bound = server.server_address[1]
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound}/"
    log.info("console_listening", url=url, actions=tokens is not None)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console.start()
    stop.wait()
    console.stop()
    server.shutdown()
    server.server_close()
    log.info("console_stopped")
    return 0


def for_worker(settings: Settings, log: logs.Log) -> Console:
    """The console on a worker's `--metrics-listen` port (`--console`): the worker's own
    source and ledger, read as the operator commands read them."""
    if settings.metrics_listen is None:
        raise StartupError("--console serves on the metrics port: give --metrics-listen HOST:PORT")
    tokens = tokens_from(settings.console_actions, settings.console_token_file)
    source_kind = sources.kind(settings.source)
    source = source_kind.for_run(dataclasses.replace(settings, watch=False))
    where = ledgers.Where(settings.ledger, settings.state_dir, settings.pg_schema,
                          settings.source_id)  # fmt: skip
    ledger_kind = ledgers.kind(settings.ledger)
    scope = Scope(source, ledger_kind.for_operator(where), settings.source,
                  source_kind.exact_mtimes)  # fmt: skip
    return Console(Watch(scope, log), log, tokens, probes=False,
                   writable=lambda: ledger_kind.writable(where))  # fmt: skip


COMMAND = Command("console", "serve the fleet's web console (status, files, probes, metrics)",
                  arguments, cmd_console)  # fmt: skip
