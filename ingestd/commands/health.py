"""`ingestd health`: exit 0 if this host's worker is live (`--ready`: and ready), for a
container's health check or a load balancer's probe."""

from __future__ import annotations

import argparse

from ingestd import ledgers
from ingestd.commands import target
from ingestd.commands.arguments import Command, add_dir
from ingestd.runtime.health import Verdict, live, ready


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument(
        "--worker", metavar="ID", help="the worker (default: every one on this host)"
    )
    parser.add_argument("--ready", action="store_true",
                        help="also: source readable, state writable, not paused")  # fmt: skip


def cmd_health(args: argparse.Namespace) -> int:
    source, inspector = target.view(args)
    try:
        verdict = live(inspector.workers(), args.worker)
        if verdict.healthy and args.ready:
            writable = ledgers.kind(args.ledger).writable(target.where(args))
            verdict = ready(source, inspector, writable)
    except OSError as exc:  # the ledger cannot be read: unhealthy, not a usage error
        verdict = Verdict(False, f"ledger unreachable: {exc}")
    print(verdict.line)
    return 0 if verdict.healthy else 1


COMMAND = Command("health", "exit 0 if this host's worker is live (--ready: and ready)",
                  arguments, cmd_health)  # fmt: skip
