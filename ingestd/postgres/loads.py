"""The `loads` table of ingestd's schema: which file was loaded into which table, once.

One row per (target table, source, file), written in the same transaction as the file's rows,
so a file is loaded exactly once whoever retries it; the row also carries the file's key and
timestamp, for consumers that follow the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Load:
    target: str  # the table as PostgreSQL resolved it (schema.table)
    source: str  # the source's identity in the ledger
    file: str


def find(cursor: Any, schema: str, load: Load) -> tuple[str, int] | None:
    """(sha256, rows) of an earlier load of the file, locked until the transaction ends."""
    sql = _sql()
    row = cursor.execute(
        sql.SQL(
            "SELECT sha256, rows FROM {} WHERE target = %s AND source = %s AND file = %s FOR UPDATE"
        ).format(sql.Identifier(schema, "loads")),
        (load.target, load.source, load.file),
    ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def record(
    cursor: Any,
    schema: str,
    load: Load,
    *,
    sha256: str,
    rows: int,
    rejected: int = 0,
    worker: str,
    key: str | None,
    stamp: datetime | None,
) -> None:
    """Record the load, in the transaction that wrote its rows (and kept its rejects)."""
    sql = _sql()
    cursor.execute(
        sql.SQL(
            "INSERT INTO {} (target, source, file, sha256, rows, rejected, worker, file_key,"
            " file_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(sql.Identifier(schema, "loads")),
        (load.target, load.source, load.file, sha256, rows, rejected, worker, key, stamp),
    )


def _sql() -> Any:
    from psycopg import sql

    return sql
