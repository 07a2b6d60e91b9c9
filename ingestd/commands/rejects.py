"""`ingestd rejects`: the rows `--bad-rows reject` kept apart, by file and line, with why."""

from __future__ import annotations

import argparse
import json
import sys

from ingestd.commands import database, target
from ingestd.commands.arguments import Command, add_dir
from ingestd.contracts.naming import terminal_safe
from ingestd.postgres import rejects


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--file", metavar="NAME", help="only this file's rejected rows")
    database.add_arguments(parser, "only rows meant for this table")
    parser.add_argument("--limit", type=_count, metavar="N", help="at most N rows")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def cmd_rejects(args: argparse.Namespace) -> int:
    source = target.where(args).source_id
    with database.connected(args, "ingestd rejects") as connection:
        table = database.resolved(connection, args.pg_table) if args.pg_table else None
        rows = rejects.read(connection, args.pg_schema, source, args.file, table, args.limit)
    for row in rows:
        raw = row.raw.decode("utf-8", errors="backslashreplace")
        if args.json:
            print(json.dumps({"file": row.file, "target": row.target, "line": row.line,
                              "error": row.error, "raw": raw,
                              "rejected_at": row.rejected_at.isoformat()}))  # fmt: skip
        else:
            fields = (row.file, f"line {row.line}", row.target, row.error, raw)
            print("\t".join(terminal_safe(field) for field in fields))
    if not rows and not args.json:
        print("no rejected rows", file=sys.stderr)
    return 0


COMMAND = Command("rejects", "list the rows --bad-rows reject kept apart, with why", arguments,
                  cmd_rejects)  # fmt: skip
