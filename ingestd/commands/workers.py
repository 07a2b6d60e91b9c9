"""`ingestd workers`: the workers by heartbeat; `--prune` removes lost ones'."""

from __future__ import annotations

import argparse
import json
import sys

from ingestd.commands import target
from ingestd.commands.arguments import Command, add_dir


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--prune", action="store_true", help="remove lost workers' heartbeats")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_workers(args: argparse.Namespace) -> int:
    _, inspector = target.view(args)
    pruned = inspector.prune_workers(0.0) if args.prune else []
    rows = [
        {
            "worker": beat.worker,
            "host": beat.host,
            "pid": beat.pid,
            "state": "lost" if beat.lost else beat.state,
            "age_seconds": beat.age_seconds,
            "files_processed": beat.files_processed,
        }
        for beat in inspector.workers()
    ]
    if args.json:
        print(json.dumps({"workers": rows, "pruned": pruned}, indent=2))
    else:
        for row in rows:
            print(
                f"{row['worker']}\t{row['state']}\theartbeat {row['age_seconds']:.0f} s ago"
                f"\tdone {row['files_processed']}"
            )
        for worker in pruned:
            print(f"pruned {worker}")
        if not rows and not pruned:
            print("no workers: no heartbeat in the ledger", file=sys.stderr)
    return 1 if any(row["state"] == "lost" for row in rows) else 0


COMMAND = Command("workers", "list workers by heartbeat; --prune removes lost ones", arguments,
                  cmd_workers)  # fmt: skip
