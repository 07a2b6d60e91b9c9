"""`ingestd pause` and `resume`: stop claiming fleet-wide (files in hand finish), and claim
again."""

from __future__ import annotations

import argparse
import sys

from ingestd.commands import target
from ingestd.commands.arguments import Command, add_dir


def cmd_pause(args: argparse.Namespace, paused: bool) -> int:
    _, inspector = target.view(args)
    if not inspector.exists():
        print(f"ingestd: error: no state dir at {target.state_dir(args)}", file=sys.stderr)
        return 2
    changed = inspector.set_paused(paused)
    word = "paused" if paused else "resumed"
    print(f"{word}" if changed else f"already {word}")
    return 0


PAUSE = Command("pause", "stop claiming, cluster-wide", add_dir,
                lambda args: cmd_pause(args, True))  # fmt: skip
RESUME = Command("resume", "claim again", add_dir, lambda args: cmd_pause(args, False))
