"""The database an operator command reads the `pg` handler's tables in: which one
(`--pg-url`, else a `postgresql://` `--ledger`, else `DATABASE_URL`, else libpq's PG*
variables), a connection whose errors are one line, and `--pg-table` as PostgreSQL resolves it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ingestd.commands.arguments import argument_type
from ingestd.contracts.errors import StartupError
from ingestd.postgres.errors import RETRY, classify, redact
from ingestd.postgres.schema import (
    SCHEMA_VERSION,
    connect,
    require_psycopg,
    resolve_table,
    schema_version,
)
from ingestd.runtime.settings import table_name


def add_arguments(parser: argparse.ArgumentParser, table_help: str) -> None:
    parser.add_argument(
        "--pg-table", type=argument_type(table_name), metavar="[SCHEMA.]TABLE", help=table_help
    )
    add_url(parser, "the database the workers load into (default: --ledger if it is "
            "postgresql://, else DATABASE_URL, else the PG* variables)")  # fmt: skip


def add_url(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--pg-url", default=os.environ.get("INGESTD_PG_URL") or None,
                        metavar="URL", help=f"{help} [env INGESTD_PG_URL]")  # fmt: skip


def url_of(args: argparse.Namespace) -> str:
    if args.pg_url:
        return str(args.pg_url)
    if args.ledger and str(args.ledger).startswith(("postgresql://", "postgres://")):
        return str(args.ledger)
    return os.environ.get("DATABASE_URL", "")


@contextlib.contextmanager
def session(url: str, who: str) -> Iterator[Any]:
    """An autocommit connection; anything that goes wrong is a `StartupError` of one line
    (the password never shown)."""
    psycopg = require_psycopg(who)
    try:
        with connect(url, who, who, autocommit=True) as connection:
            yield connection
    except psycopg.Error as exc:
        kind = "unreachable" if classify(exc) == RETRY else "refused"
        raise StartupError(f"{redact(url) or 'the database'} {kind}: {exc}".strip()) from None


@contextlib.contextmanager
def connected(args: argparse.Namespace, who: str) -> Iterator[Any]:
    """A `session` with the workers' database, whose schema must be this version's."""
    url = url_of(args)
    where = redact(url) or "the database"
    with session(url, who) as connection:
        version = schema_version(connection, args.pg_schema)
        if version is None:
            raise StartupError(
                f"{where}: no ingestd schema {args.pg_schema!r} (no worker has loaded there)"
            )
        if version != SCHEMA_VERSION:
            fix = "run `ingestd migrate DIR`" if version < SCHEMA_VERSION else "upgrade ingestd"
            raise StartupError(
                f"{where}: schema {args.pg_schema} is at version {version}, this ingestd "
                f"reads {SCHEMA_VERSION}: {fix}"
            )
        yield connection


def resolved(connection: Any, table: str) -> str:
    """`--pg-table` as the workers' load records name it (schema.table, quoted as needed)."""
    found = resolve_table(connection, table)
    if found is None:
        raise StartupError(f"--pg-table {table}: no such table")
    return found[2]
