"""The `rejects` table of ingestd's schema: the rows of a file that PostgreSQL or the decoder
refused, kept beside the good ones.

Written in the same transaction as the file's good rows and its load record, so a file's
rejects are there exactly once: all of them with its rows, or none (a redo after a crash
writes them again, once). `raw` holds the row's bytes as the file had them (without the line
ending), whatever their encoding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Rejected:
    line: int  # where the row starts in the file (a Parquet file: the row's number)
    error: str
    raw: bytes


@dataclass(frozen=True)
class Stored:
    """A rejected row as `ingestd rejects` reads it back."""

    target: str
    file: str
    line: int
    error: str
    raw: bytes
    rejected_at: datetime


def keep(cursor: Any, schema: str, target: str, source: str, file: str,
         rows: Iterable[Rejected]) -> None:  # fmt: skip
    """Insert rejected rows, in the transaction that loads the file's good ones."""
    from psycopg import sql

    cursor.executemany(
        sql.SQL(
            "INSERT INTO {} (target, source, file, line, error, raw)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(sql.Identifier(schema, "rejects")),
        [(target, source, file, r.line, r.error, r.raw) for r in rows],
    )


def read(connection: Any, schema: str, source: str, file: str | None, target: str | None,
         limit: int | None) -> list[Stored]:  # fmt: skip
    """A source's rejected rows, by file and line; one file's, or one target's, if given."""
    from psycopg import sql

    where = [sql.SQL("source = %s")]
    params: list[Any] = [source]
    if file is not None:
        where.append(sql.SQL("file = %s"))
        params.append(file)
    if target is not None:
        where.append(sql.SQL("target = %s"))
        params.append(target)
    query = sql.SQL(
        "SELECT target, file, line, error, raw, rejected_at FROM {} WHERE {} "
        "ORDER BY file, target, line"
    ).format(sql.Identifier(schema, "rejects"), sql.SQL(" AND ").join(where))
    if limit is not None:
        query = sql.SQL("{} LIMIT {}").format(query, sql.Literal(limit))
    return [
        Stored(str(t), str(f), int(n), str(e), bytes(r), at)
        for t, f, n, e, r, at in connection.execute(query, params).fetchall()
    ]
