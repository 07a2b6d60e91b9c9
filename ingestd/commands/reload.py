"""`ingestd reload`: replace the rows of files already loaded by the `pg` handler with what
their source holds now (a fixed file, or a fixed converter), in one transaction each.

For each file: its load record must be there (loaded into `--pg-table` from DIR's source),
its rows stamped with their load's id (the workers run with `--pg-file-column`), the file done
in the ledger and still in the source. Then a request goes into `reloads` and a `redo` record
into the ledger: the next worker to take the file deletes the old load's rows, moves its load
record to `load_history` and loads the current content, all in the transaction that commits
with its done record. A reader of the table sees the old rows or the new ones, never neither
nor both. What is refused says why, one line a file; exit 1 if any was.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from ingestd.commands import database, target
from ingestd.commands.arguments import Command, add_dir
from ingestd.commands.verify import histories, redo
from ingestd.contracts.errors import StartupError
from ingestd.contracts.naming import is_data_name, sort_key, terminal_safe
from ingestd.postgres import loads


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("names", nargs="*", metavar="NAME", help="files to reload")
    parser.add_argument(
        "--since", metavar="NAME", help="also every file loaded from DIR at or after NAME"
    )
    database.add_arguments(parser, "the table the files were loaded into (required)")


def cmd_reload(args: argparse.Namespace) -> int:
    if not args.pg_table:
        raise StartupError("ingestd reload needs --pg-table [SCHEMA.]TABLE")
    if not args.names and not args.since:
        raise StartupError("ingestd reload needs file names, or --since NAME")
    if args.since and not is_data_name(args.since):
        raise StartupError(f"--since {args.since!r} is not a data-file name")
    source, inspector = target.view(args)
    source_id = target.where(args).source_id
    who = f"{socket.gethostname()}:{os.getpid()}"
    problems = 0
    with database.connected(args, "ingestd reload") as connection:
        table = database.resolved(connection, args.pg_table)
        column = loads.stamped_column(connection, table)
        if column is None:
            raise StartupError(
                f"{table} has no column stamped with its rows' load: a reload could not find "
                "the rows to replace (run the workers with --pg-file-column NAME; files loaded "
                "before that cannot be reloaded)"
            )
        loaded = loads.loaded(connection, args.pg_schema, table, source_id)
        names = list(dict.fromkeys(args.names))
        if args.since:
            later = [n for n in loaded if is_data_name(n) and sort_key(n) >= sort_key(args.since)]
            names += sorted(set(later) - set(names), key=sort_key)
        history = histories(inspector, set(names))
        for name in names:
            if name not in loaded:
                why = f"not loaded into {table} from {args.dir}"
            elif not loads.stamped(connection, table, column, loaded[name]):
                why = f"its rows in {table} carry no load id (loaded before --pg-file-column)"
            else:
                why, request = redo(source, name, history.get(name, []), who)
            if why:
                print(f"ingestd: {terminal_safe(name)}: {why}", file=sys.stderr)
                problems += 1
                continue
            loads.request_reload(connection, args.pg_schema, loads.Load(table, source_id, name),
                                 who)  # fmt: skip
            inspector.retry(request)
            print(f"{terminal_safe(name)}: will be reloaded into {table}")
    return 1 if problems else 0


COMMAND = Command("reload", "replace loaded files' rows with their current content", arguments,
                  cmd_reload)  # fmt: skip
