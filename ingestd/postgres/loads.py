"""The `loads` table of ingestd's schema: which file was loaded into which table, once.

One row per (target table, source, file), written in the same transaction as the file's rows,
so a file is loaded exactly once whoever retries it; the row also carries the file's key and
timestamp, for consumers that follow the order, and the load's id (`load_id`), which
`--pg-file-column` stamps on every row of the load.

`ingestd reload` asks (`reloads`) for a file's rows to be replaced: the next load of the file
deletes the rows of its old load, moves the old load record to `load_history` and loads the
current content under a new id, in the one transaction that commits with its done record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# A --pg-file-column's default: the running load's id, which `next_id` sets for the load's
# transaction, so the server stamps every row it inserts with no work per row.
STAMP = "nullif(current_setting('ingestd.load', true), '')::bigint"


@dataclass(frozen=True)
class Load:
    target: str  # the table as PostgreSQL resolved it (schema.table)
    source: str  # the source's identity in the ledger
    file: str


@dataclass(frozen=True)
class Earlier:
    """An earlier load of the file, as its load record says."""

    sha256: str
    rows: int
    load_id: int | None


def find(cursor: Any, schema: str, load: Load) -> Earlier | None:
    """The file's earlier load, its record locked until the transaction ends; None if none."""
    sql = _sql()
    row = cursor.execute(
        sql.SQL(
            "SELECT sha256, rows, load_id FROM {} WHERE target = %s AND source = %s AND file = %s"
            " FOR UPDATE"
        ).format(sql.Identifier(schema, "loads")),
        (load.target, load.source, load.file),
    ).fetchone()
    return None if row is None else Earlier(str(row[0]), int(row[1]), row[2])


def next_id(cursor: Any, schema: str) -> int:
    """A new load id, also set for this transaction (`ingestd.load`): a file column's default
    reads it, so the server stamps every row the load inserts."""
    sql = _sql()
    row = cursor.execute(
        sql.SQL("SELECT set_config('ingestd.load', nextval({})::text, true)").format(
            sql.Literal(sql.Identifier(schema, "load_ids").as_string(None))
        )
    ).fetchone()
    return int(row[0])


def take_reload(cursor: Any, schema: str, load: Load) -> str | None:
    """Who asked for the file to be reloaded, the request taken (gone at commit); None."""
    sql = _sql()
    row = cursor.execute(
        sql.SQL(
            "DELETE FROM {} WHERE target = %s AND source = %s AND file = %s RETURNING requested_by"
        ).format(sql.Identifier(schema, "reloads")),
        (load.target, load.source, load.file),
    ).fetchone()
    return None if row is None else str(row[0])


def replace(cursor: Any, schema: str, load: Load, file_column: str, old: Earlier, new_id: int,
            target_parts: tuple[str, str]) -> int:  # fmt: skip
    """Delete the rows of the old load, its rejects and its record (kept in `load_history`,
    replaced by `new_id`), in the transaction that loads the file again. The rows deleted."""
    sql = _sql()
    key = (load.target, load.source, load.file)
    deleted = cursor.execute(
        sql.SQL("DELETE FROM {} WHERE {} = %s").format(
            sql.Identifier(*target_parts), sql.Identifier(file_column)
        ),
        (old.load_id,),
    ).rowcount
    cursor.execute(
        sql.SQL(
            "WITH old AS (DELETE FROM {} WHERE target = %s AND source = %s AND file = %s"
            " RETURNING *) INSERT INTO {} (target, source, file, sha256, rows, worker, loaded_at,"
            " file_key, file_time, rejected, load_id, replaced_by) SELECT target, source, file,"
            " sha256, rows, worker, loaded_at, file_key, file_time, rejected, load_id, %s FROM old"
        ).format(sql.Identifier(schema, "loads"), sql.Identifier(schema, "load_history")),
        (*key, new_id),
    )
    cursor.execute(
        sql.SQL("DELETE FROM {} WHERE target = %s AND source = %s AND file = %s").format(
            sql.Identifier(schema, "rejects")
        ),
        key,
    )
    return max(int(deleted), 0)


def record(
    cursor: Any,
    schema: str,
    load: Load,
    *,
    sha256: str,
    rows: int,
    rejected: int = 0,
    load_id: int | None = None,
    worker: str,
    key: str | None,
    stamp: datetime | None,
) -> None:
    """Record the load, in the transaction that wrote its rows (and kept its rejects)."""
    sql = _sql()
    cursor.execute(
        sql.SQL(
            "INSERT INTO {} (target, source, file, sha256, rows, rejected, load_id, worker,"
            " file_key, file_time) VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, nextval({})),"
            " %s, %s, %s)"
        ).format(
            sql.Identifier(schema, "loads"),
            sql.Literal(sql.Identifier(schema, "load_ids").as_string(None)),
        ),
        (
            load.target,
            load.source,
            load.file,
            sha256,
            rows,
            rejected,
            load_id,
            worker,
            key,
            stamp,
        ),
    )


def _sql() -> Any:
    from psycopg import sql

    return sql


def stamped_column(connection: Any, table: str) -> str | None:
    """The table's column stamped with each row's load id (its default is `STAMP`), or None."""
    row = connection.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid"
        " AND d.adnum = a.attnum WHERE a.attrelid = to_regclass(%s) AND NOT a.attisdropped"
        " AND pg_get_expr(d.adbin, d.adrelid) LIKE '%%ingestd.load%%' ORDER BY a.attnum",
        (table,),
    ).fetchone()
    return None if row is None else str(row[0])


def loaded(connection: Any, schema: str, target: str, source: str) -> dict[str, Earlier]:
    """The files of `source` loaded into `target`, by name."""
    sql = _sql()
    rows = connection.execute(
        sql.SQL(
            "SELECT file, sha256, rows, load_id FROM {} WHERE target = %s AND source = %s"
        ).format(sql.Identifier(schema, "loads")),
        (target, source),
    ).fetchall()
    return {str(file): Earlier(str(sha), int(count), ids) for file, sha, count, ids in rows}


def stamped(connection: Any, table: str, column: str, earlier: Earlier) -> bool:
    """Whether the rows of that load carry its id (it ran with --pg-file-column), or it had none."""
    if earlier.rows == 0:
        return True
    if earlier.load_id is None:
        return False
    sql = _sql()
    row = connection.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {} = %s)").format(
            sql.SQL(table), sql.Identifier(column)
        ),
        (earlier.load_id,),
    ).fetchone()
    return bool(row and row[0])


def request_reload(connection: Any, schema: str, load: Load, who: str) -> None:
    """Ask for the file's next load to replace its rows (`take_reload` answers it)."""
    sql = _sql()
    connection.execute(
        sql.SQL(
            "INSERT INTO {} (target, source, file, requested_by) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (target, source, file) DO UPDATE SET"
            " requested_by = excluded.requested_by, requested_at = now()"
        ).format(sql.Identifier(schema, "reloads")),
        (load.target, load.source, load.file, who),
    )
