"""The `postgresql` ledger: claims, records, heartbeats and the pause flag in PostgreSQL.

For fleets without a shared filesystem. The same promises as the `file` ledger, kept by the
database:
- A claim is a row of `claims` taken under `FOR UPDATE SKIP LOCKED`, with a fresh random
  token, the holder's id and a lease on the database's clock, renewed with each heartbeat.
  It is not waited for on disk: the record's durable commit makes it durable too, and a claim
  a server crash loses is fenced by its token (work redone, never recorded twice). Each
  worker also holds a session advisory lock on its own id, so a peer sees at once that a
  holder's session is gone (SIGKILL, host loss, `pg_terminate_backend`) and takes
  the file over without waiting for the lease; the lease stays the rule while a holder's
  session still looks alive (a partition: bounded by the keepalives set on the connection).
- A commit is one transaction: the claim still carries our token (else a peer took the file
  over: nothing is written, `duplicate_suppressed`), no `done` record is there, then the record
  (a partial unique index makes "one done per file" a constraint), then the claim row goes.
  Commits take a transaction-level advisory lock, so `seq` order is commit order and a
  reader that keeps the last `seq` it saw never skips a record. A handler's open transaction
  on the same database (the `pg` handler's rows and load record) is joined: the rows, the load
  record and the done record commit at once, or not at all.
- Claim and commit are server-side functions (`ingestd/postgres/schema.py`), one round trip
  each per file: the claim tries the worker's next few ready files in order (passing over
  those already done) and writes the attempt's owner, and both return the records
  committed since the worker's last look, so the view is current without a round trip of its
  own (a worker's owner that differs from the one written takes one more, `begin_attempt`).
- Database errors surface as `LedgerUnavailable` (an OSError): the worker gives the file back
  without spending an attempt and waits, as for a full disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ingestd.contracts.errors import StartupError
from ingestd.contracts.ledger import (
    Busy,
    Heartbeat,
    Hold,
    Holding,
    Owner,
    Record,
    RecordsInspector,
    RetryRequest,
    StatusView,
    Stored,
    Summary,
    SummaryBlock,
    Transaction,
    failed_names,
    fold_statuses,
)
from ingestd.core.recording import utc_now
from ingestd.ledgers import Where
from ingestd.ledgers.grouping import GroupCommit, Pending
from ingestd.postgres.errors import RETRY, classify, describe, redact
from ingestd.postgres.schema import SCHEMA_VERSION, ensure_schema, require_psycopg, schema_version
from ingestd.postgres.schema import connect as pg_connect
from ingestd.postgres.transaction import Joinable
from ingestd.runtime.logs import Log
from ingestd.runtime.settings import Settings

LOCK_CLASS = 0x1D6E  # advisory-lock namespace of workers: (class, hashtext(source id))
COMMIT_CLASS = 0x1D6F  # commits of one source are serialised by (class, hashtext(source))
# After a server restart no session holds its lock: holders take theirs again at their next
# rescan (seconds); until this long after the start, a missing lock proves nothing.
RESTART_GRACE = 10.0
_INTERNAL = frozenset({"source", "generation"})  # keys of the table, not of a record
_RECORD_COLUMNS = (
    "file", "status", "worker", "host", "pid", "attempt", "minutes", "size", "sha256",
    "seen_at", "started_at", "finished_at", "error", "outputs", "records",
)  # fmt: skip


class LedgerUnavailable(OSError):
    """The database cannot be reached or refused the statement: not the file's fault."""


class WorkerIdInUse(LedgerUnavailable):
    """Another live session holds this worker id's advisory lock."""


def _psycopg() -> Any:
    return require_psycopg("--ledger postgresql://")


def connect(url: str) -> Any:
    return pg_connect(url, "ingestd-ledger", "--ledger postgresql://", autocommit=True)


class _Sql:
    """The schema-qualified statements, built once."""

    def __init__(self, schema: str) -> None:
        from psycopg import sql

        s = sql.Identifier(schema)
        self.claims = sql.SQL("{}.claims").format(s)
        self.records = sql.SQL("{}.records").format(s)
        self.workers = sql.SQL("{}.workers").format(s)
        self.flags = sql.SQL("{}.flags").format(s)
        self.sql = sql

        def text(statement: str) -> str:
            # Composed once: composing on every call cost more than the round trip.
            return sql.SQL(statement).format(s=s).as_string(None)

        self.claim = text(
            "SELECT o_seq, o_file, o_status, o_token, o_owner, o_attempt"
            " FROM {s}.claim(%s, %s::text[], %s, %s, %s, %s, %s::jsonb, %s, %s)"
        )
        self.begin = text("SELECT {s}.begin_attempt(%s, %s, %s, %s::jsonb)")
        self.commit = text(
            "SELECT o_seq, o_file, o_status, o_ours FROM {s}.commit_record(%s, %s, %s::jsonb,"
            " %s, %s)"
        )
        self.since = text(
            "SELECT seq, file, status FROM {s}.records WHERE source = %s AND seq > %s ORDER BY seq"
        )
        self.identity = (
            "SELECT current_database() || '@' || system_identifier FROM pg_control_system()"
        )


class PgHold:
    def __init__(
        self,
        ledger: PostgresLedger,
        name: str,
        token: int,
        previous: Owner | None,
        written: Owner,
    ) -> None:
        self.name = name
        self.token = token
        self.attempt = 0
        self.lost = 0
        self.fresh = True  # the claim returned the records since our last look
        self.committed = False
        self._ledger = ledger
        self._previous = previous
        self._written = written  # the owner the claim wrote, with its attempt

    @property
    def previous_owner(self) -> Owner | None:
        return self._previous

    def begin(self, owner: Owner) -> int:
        self.attempt = self._previous.attempt + 1 if self._previous else 1
        written = self._written
        if (owner.worker, owner.host, owner.pid, self.attempt) == (
            written.worker,
            written.host,
            written.pid,
            written.attempt,
        ):
            return self.attempt  # the claim wrote it (its claimed_at: the claim's moment)
        data = _with_attempt(owner, self.attempt).to_json().decode()
        # Not waited for on disk (see begin_attempt): a server crash can lose this attempt's
        # count (one attempt more for a poison file), never a claim.
        ledger = self._ledger
        ledger.run(ledger.q.begin, (ledger.source, self.name, self.token, data))
        return self.attempt

    def finish(self) -> None:
        if self.committed:
            return  # the commit dropped the claim row in its own transaction
        q = self._ledger.q
        self._ledger.run_or_defer(
            self.name,
            q.sql.SQL("DELETE FROM {} WHERE source = %s AND file = %s AND token = %s").format(
                q.claims
            ),
            (self._ledger.source, self.name, self.token),
        )

    def abandon(self) -> None:
        previous = self._previous.to_json().decode() if self._previous else None
        self._update("owner = %s::jsonb, holder = NULL, lease_until = NULL", previous)

    def release(self, error: str | None = None) -> None:
        patch = json.dumps({"error": error[:2000]}) if error is not None else "{}"
        self._update("owner = coalesce(owner, '{{}}'::jsonb) || %s::jsonb, holder = NULL, "
                     "lease_until = NULL", patch)  # fmt: skip

    def reassert(self) -> bool:
        return True  # a claim here is lost only by its lease or session: fenced at commit

    def restore(self) -> None:
        # The process ends next: its session's advisory lock goes with it, so peers take over.
        previous = self._previous.to_json().decode() if self._previous else None
        self._update("owner = %s::jsonb", previous)

    def _update(self, assignments: str, value: str | None, defer: bool = True) -> None:
        q = self._ledger.q
        statement = q.sql.SQL(
            "UPDATE {} SET " + assignments + " WHERE source = %s AND file = %s AND token = %s"
        ).format(q.claims)
        params = (value, self._ledger.source, self.name, self.token)
        if defer:
            self._ledger.run_or_defer(self.name, statement, params)
        else:
            self._ledger.run(statement, params)


@dataclasses.dataclass(eq=False)
class _Commit:
    """One record on its way into `records`; `rows`: what its statement returned."""

    hold: PgHold
    params: tuple[Any, ...]
    on_written: Callable[[], None] | None
    transaction: Transaction | None
    rows: list[Any] = dataclasses.field(default_factory=list)


def _with_attempt(owner: Owner, attempt: int) -> Owner:
    return dataclasses.replace(owner, attempt=attempt)


class _Writer:
    """Writes the records of one `PostgresLedger` for its group commit (`GroupCommit`'s
    writer): in arrival order, which is `seq` order."""

    def __init__(self, ledger: PostgresLedger) -> None:
        self._ledger = ledger

    def __call__(self, batch: list[Pending[_Commit]]) -> None:
        """Records without a transaction of their own that queued together go in one
        transaction, one flush; a record that joins a handler's transaction goes alone."""
        for alone, run in itertools.groupby(batch, lambda p: p.item.transaction is not None):
            if alone:
                for pending in run:
                    self._joined(pending)
            else:
                self._group(list(run))

    def _group(self, group: list[Pending[_Commit]]) -> None:
        ledger = self._ledger
        try:
            with ledger._errors():
                if len(group) == 1:
                    results = [ledger.run(ledger.q.commit, group[0].item.params)]  # autocommit
                else:
                    connection = ledger._connection()
                    # One round trip: BEGIN, a commit_record per record, COMMIT. A fenced
                    # record returns no rows and leaves the others alone.
                    with connection.pipeline(), connection.transaction():
                        cursors = [
                            connection.execute(ledger.q.commit, p.item.params) for p in group
                        ]
                    results = [cursor.fetchall() for cursor in cursors]
        except BaseException as exc:
            for pending in group:
                pending.settle(error=exc)
            return
        for pending, rows in zip(group, results, strict=True):
            self._settle(pending, rows)

    def _joined(self, pending: Pending[_Commit]) -> None:
        ledger = self._ledger
        transaction, params = pending.item.transaction, pending.item.params
        try:
            if (
                isinstance(transaction, Joinable)
                and ledger.database
                and transaction.database == ledger.database
            ):
                # The handler's rows and our record: one transaction, one COMMIT.
                with ledger._errors():
                    rows = transaction.connection.execute(ledger.q.commit, params).fetchall()
                if rows:
                    transaction.commit()
            else:
                assert transaction is not None
                with ledger._errors(), ledger._connection().transaction() as tx:
                    # Another database's work commits first, inside our fencing.
                    rows = tx.connection.execute(ledger.q.commit, params).fetchall()
                    if rows:
                        transaction.commit()
        except BaseException as exc:
            pending.settle(error=exc)
            return
        self._settle(pending, rows)

    @staticmethod
    def _settle(pending: Pending[_Commit], rows: list[Any]) -> None:
        """A record's statement returned `rows`: none when fenced out, else ours and the
        records committed since the caller's last look. `on_written` runs here, in record
        order, so the worker's stats follow the ledger's."""
        commit = pending.item
        commit.rows = rows
        commit.hold.committed = bool(rows)
        if rows:
            pending.settle_written(commit.on_written)
        else:
            pending.settle(written=False)


class PostgresLedger:
    def __init__(
        self,
        url: str,
        schema: str,
        worker: str,
        *,
        source: str,
        lease: float = 30.0,
        host: str = "",
    ) -> None:
        self.url = url
        self.schema = schema
        self.worker = worker
        self.host = host or socket.gethostname()  # for the owner a claim writes
        self.source = source  # every row this ledger reads or writes is this source's
        self.lease = lease
        self.description = redact(url)
        self.q = _Sql(schema)
        self._local = threading.local()
        self._session: Any = None  # holds our advisory lock: our liveness, seen by peers
        self._session_checked = 0.0
        self._session_mutex = threading.Lock()
        self._group: GroupCommit[_Commit] = GroupCommit(_Writer(self))
        self._opened: list[Any] = []  # every thread's connection, to close them all at the end
        # Give-backs that failed while the database was away: (statement, parameters) by file.
        self._deferred: dict[str, tuple[Any, tuple[Any, ...]]] = {}
        self.database = ""  # current_database@system_identifier, known after prepare()
        self.view = StatusView()
        self._seen = 0
        self._sync_mutex = threading.Lock()

    # ---- connections ----

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = connect(self.url)
            self._local.connection = connection
            with self._session_mutex:
                self._opened = [c for c in self._opened if not c.closed] + [connection]
        return connection

    def run_or_defer(self, name: str, statement: Any, params: tuple[Any, ...]) -> None:
        """Give a claim back now, or as soon as the database is back.

        A give-back that fails in an outage must still happen, or the claim would sit under
        our live session until its lease ran out and then cost the file an attempt.
        """
        try:
            self.run(statement, params)
        except LedgerUnavailable:
            with self._session_mutex:
                self._deferred[name] = (statement, params)
            raise

    def _flush_deferred(self) -> None:
        with self._session_mutex:
            pending = list(self._deferred.items())
        for name, (statement, params) in pending:
            self.run(statement, params)
            with self._session_mutex:
                if self._deferred.get(name) == (statement, params):
                    del self._deferred[name]

    def run(self, statement: Any, params: tuple[Any, ...] = ()) -> list[Any]:
        """One statement in autocommit; database trouble becomes `LedgerUnavailable`."""
        with self._errors():
            cursor = self._connection().execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        psycopg = _psycopg()
        try:
            yield
        except psycopg.Error as exc:
            self._session_checked = 0.0  # the server may have restarted: check the session
            connection = getattr(self._local, "connection", None)
            if connection is not None and (connection.closed or connection.broken):
                self._local.connection = None
            raise LedgerUnavailable(f"PostgreSQL ledger: {exc}".strip()) from None

    def _ensure_session(self) -> None:
        """Hold the session advisory lock on our id (again, after the database restarted).

        Checked with a round trip at most once a second, and at once after any error: a
        server restart ends the session without a word, and until we hold the lock again
        peers would take us for dead (the restart grace in `try_claim` covers that gap).
        """
        with self._session_mutex:
            session = self._session
            if session is not None and not session.closed and not session.broken:
                if time.monotonic() - self._session_checked < 1.0:
                    return
                with contextlib.suppress(Exception):
                    session.execute("SELECT 1")
                    self._session_checked = time.monotonic()
                    return
                with contextlib.suppress(Exception):
                    session.close()
            with self._errors():
                session = connect(self.url)
                row = session.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                    (LOCK_CLASS, f"{self.source} {self.worker}"),
                ).fetchone()
            if not (row and row[0]):
                with contextlib.suppress(Exception):
                    session.close()
                raise WorkerIdInUse(
                    f"worker_id_in_use: another live worker has the id {self.worker!r} on "
                    f"this ledger for {self.source} (give each worker its own --worker-id)"
                )
            self._session = session
            self._session_checked = time.monotonic()

    # ---- lifecycle ----

    def prepare(self) -> None:
        psycopg = _psycopg()
        try:
            connection = self._connection()
            ensure_schema(connection, self.schema, self.source)
            self.database = connection.execute(self.q.identity).fetchone()[0]
        except psycopg.Error as exc:
            # Only an outage is waited for; anything else the server says at start-up (a
            # refused login, no such database, a schema it cannot read) needs a person.
            if classify(exc) != RETRY:
                raise StartupError(f"--ledger {self.description}: {describe(exc)}") from None
            raise LedgerUnavailable(f"PostgreSQL ledger unreachable: {describe(exc)}") from None
        try:
            self._ensure_session()
        except WorkerIdInUse as exc:
            raise StartupError(str(exc)) from None

    def close(self) -> None:
        with self._session_mutex:
            connections, self._opened = [*self._opened, self._session], []
            self._session = None
        for connection in connections:
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()

    # ---- what is finished ----

    def sync(self) -> None:
        self._ensure_session()  # every rescan: our lock is back soon after a server restart
        with self._sync_mutex:
            self._apply(self.run(self.q.since, (self.source, self._seen)))

    def _apply(self, rows: list[tuple[int, str, str]] | list[Any]) -> None:
        """Fold records (seq, file, status, ...) read after `_seen`, in seq order, into the
        view. Under `_sync_mutex`. Another thread may have read some of them already: those
        are skipped, so each record is applied once, in commit order."""
        seen = self._seen
        fresh = [(row[1], row[2]) for row in rows if row[0] > seen]
        if fresh:
            self.view.apply(fresh)
            self._seen = rows[-1][0]

    def is_finished(self, name: str) -> bool:
        return self.view.is_finished(name)

    def is_done(self, name: str) -> bool:
        return self.view.is_done(name)

    def finished_count(self) -> int:
        return len(self.view)

    def last_record(self, name: str) -> Stored | None:
        rows = self.run(
            self.q.sql.SQL("SELECT row_to_json(r) FROM {} r WHERE source = %s AND file = %s"
                           " ORDER BY seq DESC LIMIT 1").format(self.q.records),
            (self.source, name),
        )  # fmt: skip
        return Stored.from_dict(rows[0][0]) if rows else None

    # ---- claims ----

    def try_claim(self, name: str) -> PgHold:
        _, hold = self._claim([name], skip_finished=False)
        if hold is None:
            raise Busy(name)  # a live holder, or a peer taking or giving it back right now
        return hold

    def claim_first(self, names: list[str]) -> tuple[list[tuple[str, str]], Hold | None]:
        return self._claim(names, skip_finished=True)

    def _claim(
        self, names: list[str], skip_finished: bool
    ) -> tuple[list[tuple[str, str]], PgHold | None]:
        """One round trip: the first of `names` claimable, and what was passed over."""
        self._ensure_session()
        self._flush_deferred()
        owner = Owner(self.worker, self.host, os.getpid(), utc_now())
        with self._sync_mutex:
            # Under the mutex: the records it returns follow `_seen` as it was sent.
            rows = self.run(
                self.q.claim,
                (self.source, names, self.worker, self.lease, LOCK_CLASS, RESTART_GRACE,
                 owner.to_json().decode(), self._seen, skip_finished),
            )  # fmt: skip
            self._apply([row for row in rows if row[0] is not None])
        passed = [(row[1], row[2]) for row in rows if row[0] is None and row[3] is None]
        if not rows or rows[-1][3] is None:
            return passed, None
        _, name, _, token, previous_owner, attempt = rows[-1]
        previous = Owner.parse(previous_owner) if isinstance(previous_owner, dict) else None
        return passed, PgHold(self, name, token, previous, _with_attempt(owner, attempt))

    def commit(
        self,
        hold: Hold,
        record: Record,
        on_written: Callable[[], None] | None = None,
        transaction: Transaction | None = None,
    ) -> bool:
        assert isinstance(hold, PgHold)
        seen = self._seen  # read without the mutex: records after it come back, once each
        params = (self.source, hold.token, json.dumps(record.to_dict()), COMMIT_CLASS, seen)
        mine = _Commit(hold, params, on_written, transaction)
        try:
            written = self._group.commit(mine)
        except BaseException:
            with contextlib.suppress(OSError):
                hold.abandon()
            raise
        finally:
            if transaction is not None:
                transaction.close()  # rolls back what was not committed
        if written:
            with self._sync_mutex:
                self._apply(mine.rows)  # committed: ours and any before it
        else:
            self.sync()  # fenced out: see what the peer recorded
        return written

    def leftovers(self) -> list[str]:
        return []  # the record and the claim's removal are one transaction

    def sweep(self, names: list[str]) -> list[str]:
        return []

    # ---- heartbeats and the pause flag ----

    def write_heartbeat(self, beat: Heartbeat) -> None:
        self._ensure_session()
        self._flush_deferred()
        data = beat.to_dict()
        data.pop("age_seconds")
        q = self.q
        self.run(
            q.sql.SQL(
                "INSERT INTO {} (source, worker, beat, beat_at)"
                " VALUES (%s, %s, %s::jsonb, now()) ON CONFLICT (source, worker)"
                " DO UPDATE SET beat = excluded.beat, beat_at = now()"
            ).format(q.workers),
            (self.source, beat.worker, json.dumps(data)),
        )
        # The heartbeat renews the leases of what we hold, on the database's clock. Rows
        # locked right now are left to the next beat (a commit is deleting one, or a peer's
        # claim looks at it): waiting for them while holding the others could close a cycle
        # with a group of commits, which deletes several claim rows in one transaction.
        self.run(
            q.sql.SQL(
                "UPDATE {0} SET lease_until = now() + make_interval(secs => %s)"
                " WHERE (source, file) IN (SELECT source, file FROM {0}"
                " WHERE source = %s AND holder = %s FOR UPDATE SKIP LOCKED)"
            ).format(q.claims),
            (self.lease, self.source, self.worker),
        )

    def remove_heartbeat(self, worker: str) -> None:
        self.run(
            self.q.sql.SQL("DELETE FROM {} WHERE source = %s AND worker = %s").format(
                self.q.workers
            ),
            (self.source, worker),
        )

    def read_heartbeat(self, worker: str) -> Heartbeat | None:
        beats = PostgresInspector(self.url, self.schema, self).workers(worker)
        return beats[0] if beats else None

    def workers(self) -> list[Heartbeat]:
        return PostgresInspector(self.url, self.schema, self).workers()

    def failed_count(self) -> int:
        return self.view.failed_count()

    def failed_names(self) -> list[str]:
        return self.view.failed_names()

    def prune_workers(self, after: float) -> list[str]:
        return PostgresInspector(self.url, self.schema, self).prune_workers(after)

    def paused(self) -> bool:
        return bool(
            self.run(
                self.q.sql.SQL("SELECT 1 FROM {} WHERE source = %s AND name = 'paused'").format(
                    self.q.flags
                ),
                (self.source,),
            )
        )


_CURSORS = itertools.count()
_BATCH = 20_000  # rows per fetch of a streamed read


class PostgresInspector(RecordsInspector):
    def __init__(
        self, url: str, schema: str, ledger: PostgresLedger | None = None, *, source: str = ""
    ) -> None:
        self._ledger = ledger or PostgresLedger(
            url, schema, worker="ingestd-operator", source=source
        )
        self.q = self._ledger.q
        self.source = self._ledger.source
        self._checked = ledger is not None

    def _check_version(self) -> None:
        """Operator commands never migrate: an older schema is one line naming the fix."""
        if self._checked:
            return
        with self._ledger._errors():
            version = schema_version(self._ledger._connection(), self._ledger.schema)
        if version is not None and version != SCHEMA_VERSION:
            raise StartupError(
                f"schema {self._ledger.schema} is at version {version}; this ingestd reads "
                f"version {SCHEMA_VERSION}: "
                + (
                    "start a worker of this version to upgrade it"
                    if version < SCHEMA_VERSION
                    else "upgrade ingestd"
                )
            )
        self._checked = True

    def _run(self, statement: Any, params: tuple[Any, ...] = ()) -> list[Any]:
        self._check_version()
        return self._ledger.run(statement, params)

    def exists(self) -> bool:
        rows = self._run("SELECT to_regclass(%s)", (f"{self._ledger.schema}.records",))
        return bool(rows and rows[0][0])

    def _stream(self, statement: Any, params: tuple[Any, ...]) -> Iterator[list[Any]]:
        """The rows of a query in batches, through a server-side cursor: a million records
        are read in bounded memory, never fetched at once."""
        self._check_version()
        ledger = self._ledger
        with ledger._errors():
            connection = ledger._connection()
            name = f"ingestd_read_{next(_CURSORS)}"
            with connection.transaction(), connection.cursor(name=name) as cursor:
                cursor.execute(statement, params)
                while rows := cursor.fetchmany(_BATCH):
                    yield rows

    def _by_seq(self, columns: str) -> Iterator[list[Any]]:
        return self._stream(
            self.q.sql.SQL(
                "SELECT " + columns + " FROM {} r WHERE source = %s ORDER BY seq"
            ).format(self.q.records),
            (self.source,),
        )

    def statuses(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for rows in self._by_seq("file, status"):
            fold_statuses(rows, found)
        return found

    def records(self) -> Iterator[Stored]:
        for rows in self._by_seq("row_to_json(r)"):
            for (row,) in rows:
                if (record := Stored.from_dict(row)) is not None:
                    yield record

    def summary_blocks(self) -> Iterator[SummaryBlock]:
        # The columns' types are the summary's: no record is built to read six fields.
        for rows in self._by_seq("file, status, worker, attempt, minutes, finished_at"):
            yield SummaryBlock.of(rows)

    def summaries(self) -> Iterator[Summary]:
        for block in self.summary_blocks():
            yield from block.summaries()

    def failed_records(self) -> dict[str, Stored]:
        failed = failed_names(self.statuses())
        if not failed:
            return {}
        rows = self._run(
            self.q.sql.SQL(
                "SELECT DISTINCT ON (file) row_to_json(r) FROM {} r WHERE source = %s"
                " AND status = 'failed' AND file = ANY(%s) ORDER BY file, seq DESC"
            ).format(self.q.records),
            (self.source, failed),
        )
        found = {}
        for (row,) in rows:
            if (record := Stored.from_dict(row)) is not None:
                found[record.file] = record
        return {name: found[name] for name in failed if name in found}

    def history(self, name: str) -> list[Stored]:
        rows = self._run(
            self.q.sql.SQL(
                "SELECT row_to_json(r) FROM {} r WHERE source = %s AND file = %s ORDER BY seq"
            ).format(self.q.records),
            (self.source, name),
        )
        return [record for (row,) in rows if (record := Stored.from_dict(row)) is not None]

    def holdings(self) -> list[Holding]:
        rows = self._run(
            self.q.sql.SQL(
                "SELECT file, holder, owner, extract(epoch FROM now() - (owner->>'claimed_at')"
                "::timestamptz) FROM {} WHERE source = %s AND holder IS NOT NULL ORDER BY file"
            ).format(self.q.claims),
            (self.source,),
        )
        found = []
        for name, holder, owner, age in rows:
            attempt = owner.get("attempt") if isinstance(owner, dict) else None
            found.append(Holding(name, holder, attempt, None if age is None else round(age, 1)))
        return found

    def claim(self, name: str) -> tuple[bool, Owner | None]:
        rows = self._run(
            self.q.sql.SQL(
                "SELECT holder IS NOT NULL, owner FROM {} WHERE source = %s AND file = %s"
            ).format(self.q.claims),
            (self.source, name),
        )
        if not rows:
            return False, None
        held, owner = rows[0]
        return bool(held), Owner.parse(owner) if isinstance(owner, dict) else None

    def workers(self, worker: str | None = None) -> list[Heartbeat]:
        rows = self._run(
            self.q.sql.SQL(
                "SELECT beat, extract(epoch FROM now() - beat_at) FROM {}"
                " WHERE source = %s AND (%s::text IS NULL OR worker = %s) ORDER BY worker"
            ).format(self.q.workers),
            (self.source, worker, worker),
        )
        beats = []
        for data, age in rows:
            beat = Heartbeat.parse(data)
            if beat is not None:
                beat.age_seconds = round(float(age), 3)
                beats.append(beat)
        return beats

    def prune_workers(self, after: float) -> list[str]:
        pruned = [b.worker for b in self.workers() if b.lost and b.lost_for > after]
        for worker in pruned:
            self._ledger.remove_heartbeat(worker)
        return pruned

    def problems(self) -> list[str]:
        return []

    def paused(self) -> bool:
        return self._ledger.paused()

    def set_paused(self, paused: bool) -> bool:
        statement = (
            "INSERT INTO {} (source, name) VALUES (%s, 'paused') ON CONFLICT DO NOTHING RETURNING 1"
            if paused
            else "DELETE FROM {} WHERE source = %s AND name = 'paused' RETURNING 1"
        )
        return bool(self._run(self.q.sql.SQL(statement).format(self.q.flags), (self.source,)))

    def retry(self, request: RetryRequest) -> None:
        data = {"source": self.source, **request.to_dict()}
        columns = list(data)
        insert = self.q.sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            self.q.records,
            self.q.sql.SQL(", ").join(map(self.q.sql.Identifier, columns)),
            self.q.sql.SQL(", ").join(self.q.sql.Placeholder() * len(columns)),
        )
        self._check_version()
        ledger = self._ledger
        with ledger._errors(), ledger._connection().transaction() as tx:
            # In commit order like the workers' records (see commit_record): a worker that
            # read past this record's seq before it committed would never see it.
            tx.connection.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (COMMIT_CLASS, self.source)
            )
            tx.connection.execute(insert, tuple(data.values()))


class PostgresKind:
    """`postgresql://...`: `ingestd.ledgers.KINDS["postgresql"]`."""

    scheme = "postgresql"
    uses_state_dir = False

    def state_dir(self, location: str) -> None:
        return None

    def for_run(
        self, settings: Settings, log: Log, source_inode: Callable[[], int | None]
    ) -> PostgresLedger:
        # The lease outlives a few missed heartbeats; a dead session is seen sooner.
        lease = max(3 * settings.heartbeat_interval, 10.0)
        return PostgresLedger(
            str(settings.ledger),
            settings.pg_schema,
            settings.worker_id,
            source=settings.source_id,
            lease=lease,
            host=settings.host,
        )

    def for_operator(self, where: Where) -> PostgresInspector:
        return PostgresInspector(str(where.location), where.schema, source=where.source_id)

    def writable(self, where: Where) -> None:
        return None  # a refused write shows in the workers' heartbeats and logs

    def refuses(self, command: str) -> str | None:
        if command == "compact":
            return "compact rewrites a state dir's manifest; a postgresql:// ledger is a table"
        return None


KIND = PostgresKind()
