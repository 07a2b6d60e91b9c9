"""`--publish-in-order` with the `pg` handler: the watermark as rows in PostgreSQL.

The `pg` handler's rows need no moving (they are visible when their file's transaction
commits), so a publishing pass only moves the watermark: `ingestd.watermarks (target, key,
published, skipped, updated_at)`, one row per target table and key, in the database the rows
go to. A consumer reads a key's rows up to its `published` file knowing no earlier file is
still to come. Passes are serialised across the fleet by a transaction-level advisory lock, so
a fleet that shares no directory (the PostgreSQL ledger, an `s3://` source) publishes too; the
lock goes with a dead worker's session.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from ingestd.core.publishing.plan import Marks
from ingestd.postgres.schema import connect, ensure_schema, require_psycopg, resolve_table

LOCK_TIMEOUT = "10s"  # how long a pass waits for a peer's (then tried again at the next scan)


class PgMarks:
    def __init__(self, url: str, schema: str, target: str, source: str) -> None:
        self.url = url
        self.schema = schema
        self.target = target  # as given; the table as PostgreSQL resolves it once connected
        self.source = source
        self.description = f"{schema}.watermarks for {target}"
        self._connection: Any = None
        self._resolved = target
        self._mutex = threading.Lock()  # one pass at a time through the one connection

    def prepare(self) -> None:
        pass  # the first `locked` connects and makes the tables (the publisher's prepare)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        psycopg = require_psycopg("--publish-in-order with --handler pg")
        with self._mutex:
            try:
                connection = self._connect()
                with connection.transaction():
                    connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                    connection.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))",
                        (f"ingestd publish {self.schema} {self._resolved} {self.source}",),
                    )
                    yield
            except psycopg.Error as exc:
                self._drop()
                raise OSError(f"{self.description}: {str(exc).strip()}") from None

    def read(self) -> Marks:
        sql = require_psycopg("--publish-in-order").sql
        marks = Marks()
        rows = self._connection.execute(
            sql.SQL(
                "SELECT key, published, skipped FROM {} WHERE target = %s AND source = %s"
            ).format(sql.Identifier(self.schema, "watermarks")),
            (self._resolved, self.source),
        ).fetchall()
        for key, published, skipped in rows:
            marks.published[key] = published
            if skipped:
                marks.skipped[key] = list(skipped)
        return marks

    def write(self, marks: Marks) -> None:
        psycopg = require_psycopg("--publish-in-order")
        statement = psycopg.sql.SQL(
            "INSERT INTO {} (target, source, key, published, skipped)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (target, source, key) DO UPDATE SET published = excluded.published,"
            " skipped = excluded.skipped, updated_at = now()"
        ).format(psycopg.sql.Identifier(self.schema, "watermarks"))
        Jsonb = psycopg.types.json.Jsonb
        with self._connection.cursor() as cursor:
            cursor.executemany(
                statement,
                [
                    (self._resolved, self.source, key, name, Jsonb(marks.skipped.get(key, [])))
                    for key, name in sorted(marks.published.items())
                ],
            )

    def _connect(self) -> Any:
        if self._connection is None or self._connection.closed or self._connection.broken:
            self._drop()
            connection = connect(self.url, "ingestd publish", "--publish-in-order")
            try:
                ensure_schema(connection, self.schema, self.source)
                found = resolve_table(connection, self.target)
                self._resolved = found[2] if found else self.target
                connection.commit()
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
        self._connection = None
