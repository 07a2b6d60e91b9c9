"""`ingestd rejects`: the rows `--bad-rows reject` kept apart, by file and line, with why."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ingestd.commands import target
from ingestd.commands.arguments import Command, add_dir
from ingestd.contracts.errors import StartupError
from ingestd.contracts.naming import terminal_safe
from ingestd.postgres import rejects
from ingestd.postgres.errors import RETRY, classify, redact
from ingestd.postgres.schema import connect, require_psycopg, schema_version
from ingestd.runtime.settings import table_name


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--file", metavar="NAME", help="only this file's rejected rows")
    parser.add_argument(
        "--pg-table", type=_table, metavar="[SCHEMA.]TABLE", help="only rows meant for this table"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("INGESTD_PG_URL") or None,
        metavar="URL",
        help="the database the workers load into (default: --ledger if it is postgresql://, "
        "else DATABASE_URL, else the PG* variables) [env INGESTD_PG_URL]",
    )
    parser.add_argument("--limit", type=_count, metavar="N", help="at most N rows")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")


def _table(text: str) -> str:
    try:
        return table_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def _database(args: argparse.Namespace) -> str:
    if args.pg_url:
        return str(args.pg_url)
    if args.ledger and str(args.ledger).startswith(("postgresql://", "postgres://")):
        return str(args.ledger)
    return os.environ.get("DATABASE_URL", "")


def cmd_rejects(args: argparse.Namespace) -> int:
    psycopg = require_psycopg("ingestd rejects")
    url = _database(args)
    source = target.where(args).source_id
    try:
        with connect(url, "ingestd rejects", "ingestd rejects", autocommit=True) as connection:
            if schema_version(connection, args.pg_schema) is None:
                raise StartupError(f"{redact(url) or 'the database'}: no ingestd schema "
                                   f"{args.pg_schema!r} (no worker has loaded there)")  # fmt: skip
            table = None
            if args.pg_table:
                found = connection.execute(
                    "SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c JOIN "
                    "pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
                    (args.pg_table,),
                ).fetchone()
                table = str(found[0]) if found else args.pg_table
            if not rejects.exists(connection, args.pg_schema):
                raise StartupError(
                    f"schema {args.pg_schema} has no rejects table: its workers run an older "
                    "ingestd (upgrade them first)"
                )
            rows = rejects.read(connection, args.pg_schema, source, args.file, table, args.limit)
    except psycopg.Error as exc:
        kind = "unreachable" if classify(exc) == RETRY else "refused"
        raise StartupError(f"{redact(url) or 'the database'} {kind}: {exc}".strip()) from None
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
