"""`ingestd migrate`: bring what a fleet stores to this version, once its older workers are
stopped, and say what was done (`--dry-run`: what would be).

The PostgreSQL schema (of `--ledger postgresql://…`, and of `--pg-url` where the `pg` handler
loads) is versioned: an older one is migrated in one transaction under the schema's advisory
lock, and rows from before sources existed (version 3) become DIR's. A worker of this version
refuses an older schema and names this command; one of an older version refuses a newer one.
The file ledger's state dir (format 1, said in its `source` file) and the publishing watermark
have changed in no way that needs a step: the command says so.
"""

from __future__ import annotations

import argparse

from ingestd.commands import database, target
from ingestd.commands.arguments import Command, add_dir
from ingestd.ledgers.file.statedir import FORMAT
from ingestd.postgres.errors import redact
from ingestd.postgres.schema import (
    CHANGES,
    SCHEMA_VERSION,
    migrate_schema,
)


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    database.add_url(parser, "the database the pg handler loads into, when not the ledger's")
    parser.add_argument("--dry-run", action="store_true", help="say what would be done only")


def cmd_migrate(args: argparse.Namespace) -> int:
    source = target.where(args).source_id
    urls = [
        u for u in (args.ledger, args.pg_url) if u and u.startswith(("postgresql:", "postgres:"))
    ]
    if not args.ledger or not args.ledger.startswith(("postgresql:", "postgres:")):
        where = target.state_dir(args)
        print(f"state dir {where}: format {FORMAT}, nothing to migrate")
    for url in dict.fromkeys(urls):
        _migrate(url, args.pg_schema, source, args.dry_run)
    return 0


def _migrate(url: str, schema: str, source: str, dry_run: bool) -> None:
    where = f"schema {schema} at {redact(url)}"
    with database.session(url, "ingestd migrate") as connection:
        version = migrate_schema(connection, schema, source, dry_run)
    if version is None:
        print(f"{where}: none yet (the first worker makes it at version {SCHEMA_VERSION})")
        return
    if version == SCHEMA_VERSION:
        print(f"{where}: at version {SCHEMA_VERSION} already, nothing to do")
        return
    steps = "; ".join(f"{v}: {CHANGES[v]}" for v in range(version + 1, SCHEMA_VERSION + 1))
    verb = "would migrate" if dry_run else "migrated"
    print(f"{where}: {verb} from version {version} to {SCHEMA_VERSION} ({steps})")


COMMAND = Command("migrate", "bring the fleet's stored formats to this version", arguments,
                  cmd_migrate)  # fmt: skip
