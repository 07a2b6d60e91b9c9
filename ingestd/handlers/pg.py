"""The `pg` handler: a file's JSON objects become rows of a PostgreSQL table, exactly once.

One transaction per file: look for the file's load record (`ingestd.loads`, locked), `COPY`
the rows into the target table, insert the load record, and hand the open transaction to the
ledger with the outcome. The PostgreSQL ledger on the same database writes the done record in
it and commits all three at once; any other ledger commits it just before its own record. A
redo (the worker died between the two commits) finds the load record and loads nothing
(`already_loaded`); the same name with other content is refused (`content_changed_after_load`,
failed). So each file's rows are in the table exactly once, whatever dies when.

Conversion (`--pg-converter`): `exact` (the default) is the `tsv` handler's standard library
converter, run in a thread overlapping the COPY, with every number kept as written (so a
`numeric` column gets the exact number and a text column the provider's text). `duckdb`
turns the JSON into CSV in C through FIFOs: measured at 0.81x of PostgreSQL's own COPY of
prepared rows where a Python loop per row manages a quarter (bench/README.md), but DuckDB
reads numbers with a fraction through a double (`0.10` arrives as `0.1`, past 17 digits they
round). Both: nested values as JSON text, null and missing as NULL, and a `json`/`jsonb`
column gets the value as JSON whatever its type (a string stays a JSON string).

Errors: a value PostgreSQL refuses, malformed JSON, a missing required column: `BadInput`
with PostgreSQL's message and the line (the transaction rolls back, no row is visible). A
database that is down or restarting: `RetryLater` (no attempt spent).
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ingestd.contracts.errors import BadInput, RetryLater, StartupError
from ingestd.contracts.naming import parse
from ingestd.handlers import Job, Outcome, pgcolumns, pgcopy
from ingestd.handlers.content import Format, head_of, open_content, skip_bom, tell
from ingestd.handlers.pgreject import copy_rejecting
from ingestd.handlers.pgrows import NotPlain, decoder_for
from ingestd.handlers.pgtarget import Target, ensure_file_column, read_target, statement
from ingestd.handlers.tsv import iter_objects
from ingestd.postgres import loads, rejects
from ingestd.postgres.errors import BAD_INPUT, RETRY, classify, redact, with_context
from ingestd.postgres.marks import PgMarks
from ingestd.postgres.schema import connect, ensure_schema, require_psycopg
from ingestd.runtime.settings import BadRows, Settings

if TYPE_CHECKING:
    import psycopg

_IDENTITY = "SELECT current_database() || '@' || system_identifier FROM pg_control_system()"


def _psycopg() -> Any:
    return require_psycopg("--handler pg")


@dataclass(frozen=True)
class Options:
    url: str  # --pg-url, else DATABASE_URL, else "" (libpq then reads PGHOST, PGDATABASE, ...)
    table: str  # --pg-table
    schema: str = "ingestd"  # --pg-schema: ingestd's own tables (the ledger's, and `loads`)
    converter: str = "exact"  # --pg-converter
    columns: tuple[str, ...] | None = None  # --columns, else the table's
    source_id: str = ""  # the source's identity: `loads` is keyed by it
    format: Format = Format("json")  # noqa: RUF009 - frozen: --format and the CSV options
    bad_rows: BadRows = BadRows()  # noqa: RUF009 - frozen: --bad-rows
    new_columns: str = "ignore"  # --on-new-columns
    rescue_column: str = "_rescued_data"  # --rescue-column
    create_table: bool = False  # --pg-create-table
    file_column: str = ""  # --pg-file-column: each row's load id; "" for none

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        tsv = settings.format == "tsv"
        return cls(
            url=conninfo(settings),
            table=settings.pg_table or "",
            schema=settings.pg_schema,
            converter=settings.pg_converter,
            columns=settings.columns,
            source_id=settings.source_id,
            format=Format(
                settings.format,
                settings.csv_delimiter or ("\t" if tsv else ","),
                settings.csv_null if settings.csv_null is not None else ("\\N" if tsv else ""),
                settings.csv_header,
            ),
            bad_rows=settings.bad_rows,
            new_columns=settings.on_new_columns,
            rescue_column=settings.rescue_column,
            create_table=settings.pg_create_table,
            file_column=settings.pg_file_column or "",
        )


OPTIONS = Options


def watermarks(options: Options) -> PgMarks:
    """With --publish-in-order: the rows need no moving, the watermark is a table beside them."""
    return PgMarks(options.url, options.schema, options.table, options.source_id)


def conninfo(settings: Settings) -> str:
    """--pg-url, else DATABASE_URL, else "" (libpq then reads PGHOST, PGDATABASE, ...)."""
    return settings.pg_url or os.environ.get("DATABASE_URL", "")


@dataclass
class _Pool:
    """Idle connections: a file's transaction outlives its handler call (the ledger commits
    it), so connections go back here when it ends rather than living in a thread."""

    idle: list[Session] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)
    mutex: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Session:
    connection: psycopg.Connection[Any]
    database: str  # current_database@system_identifier: which ledger may join its transaction


_pool = _Pool()


def _connect(options: Options) -> Session:
    with _pool.mutex:
        while _pool.idle:
            session = _pool.idle.pop()
            if not session.connection.closed and not session.connection.broken:
                return session
    connection = connect(options.url, "ingestd", "--handler pg")
    try:
        ensure_schema(connection, options.schema, options.source_id)
        row = connection.execute(_IDENTITY).fetchone()
        connection.commit()
    except BaseException:
        _close(connection)
        raise
    return Session(connection, row[0] if row else "")


def _give_back(session: Session) -> None:
    """Back to the pool if it is healthy and idle; closed otherwise."""
    connection = session.connection
    status = _psycopg().pq.TransactionStatus.IDLE
    if connection.closed or connection.broken or connection.info.transaction_status != status:
        _close(connection)
        return
    with _pool.mutex:
        _pool.idle.append(session)


def _close(connection: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(Exception):
        connection.close()


def _forget_targets() -> None:
    with _pool.mutex:
        _pool.targets.clear()


class PgTransaction:
    """A file's rows and load record, not yet committed: the ledger commits them with its
    record (see `ingestd.ledger.Transaction`)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._open = True
        self._mutex = threading.Lock()

    @property
    def database(self) -> str:
        return self._session.database

    @property
    def connection(self) -> psycopg.Connection[Any]:
        return self._session.connection

    def commit(self) -> None:
        psycopg = _psycopg()
        with self._mutex:
            if not self._open:
                raise OSError("the file's transaction was already closed")
            self._open = False
            try:
                self._session.connection.commit()
            except psycopg.Error as exc:
                _close(self._session.connection)
                raise OSError(f"PostgreSQL: {with_context(exc)}") from None
        _give_back(self._session)

    def close(self) -> None:
        with self._mutex:
            if not self._open:
                return
            self._open = False
            try:
                self._session.connection.rollback()
            except Exception:
                _close(self._session.connection)
                return
        _give_back(self._session)


def _target(connection: psycopg.Connection[Any], options: Options) -> Target:
    """The target's columns, from the catalog (or --columns), cached until it changes."""
    cache = _pool.targets
    table = options.table
    if table not in cache:
        if options.file_column:
            ensure_file_column(connection, table, options.file_column)
        try:
            found = read_target(connection, table, options.columns, options.new_columns,
                                options.rescue_column, options.file_column)  # fmt: skip
        finally:
            connection.rollback()
        if found is None:
            raise StartupError(f"--pg-table {table}: no such table (create it first)")
        with _pool.mutex:
            cache[table] = found
    return cache[table]


def prepare(options: Options) -> None:
    """Start-up: options present, the extra installed, the table there if the database is."""
    if not options.table:
        raise StartupError("--handler pg needs --pg-table [SCHEMA.]TABLE")
    plain = options.bad_rows.reject or options.new_columns != "ignore"
    if options.converter == "duckdb" and (options.format.name != "json" or plain):
        raise StartupError(
            "--pg-converter duckdb reads JSON in one piece: it goes with --format json, "
            "--bad-rows fail and --on-new-columns ignore only"
        )
    if options.columns and options.new_columns == "add":
        raise StartupError("--on-new-columns add makes columns: it does not go with --columns")
    psycopg = _psycopg()
    if options.converter == "duckdb":
        try:
            import duckdb  # noqa: F401
        except ImportError:
            raise StartupError(
                "--pg-converter duckdb needs DuckDB: pip install 'ingestd[postgres]'"
            ) from None
    try:
        session = _connect(options)
        try:
            _target(session.connection, options)
        except StartupError:
            if not options.create_table:  # else made from the first file
                raise
        finally:
            _close(session.connection)
    except psycopg.Error as exc:
        if classify(exc) == RETRY:
            return  # down at start-up: each file waits and retries (RetryLater)
        # A refused login, no such database, no right to make the schema: a person's fix.
        raise StartupError(f"--handler pg {redact(options.url)}: {with_context(exc)}") from None


async def handle(job: Job) -> Outcome:
    return await job.to_thread(load, job)


def load(job: Job) -> Outcome:
    """Load one file in one (still open) transaction. Blocking: runs in a handler thread."""
    options: Options = job.options
    psycopg = _psycopg()
    started = time.monotonic()
    session: Session | None = None
    try:
        session = _connect(options)
        if options.new_columns == "add" or options.create_table:
            _evolve(session.connection, options, job)
        target = _target(session.connection, options)
        size, sha256, rows, already = _load(session.connection, target, job)
    except BaseException as exc:
        if session is not None:
            PgTransaction(session).close()
        if isinstance(exc, StartupError):
            # The table went away (or the schema moved on) while we ran: not the file's fault.
            _forget_targets()
            raise RetryLater(str(exc)) from None
        if isinstance(exc, UnicodeError | RecursionError):
            # A lone surrogate (`"\ud800"`) no encoder can write, nesting deeper than any
            # parser follows: the content's fault, whichever converter met it.
            raise BadInput(f"{type(exc).__name__}: {exc}") from None
        if isinstance(exc, psycopg.Error):
            # By SQLSTATE, not by exception class: psycopg raises OperationalError for an
            # index row too big (54000) as for a lost connection (`ingestd/postgres/errors.py`).
            kind = classify(exc)
            if kind == BAD_INPUT:
                raise BadInput(with_context(exc)) from None
            if kind == RETRY and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                raise RetryLater(f"PostgreSQL unreachable: {with_context(exc)}") from None
            # Anything else the server says (a table dropped, privileges taken away, a
            # password changed) is not the file's fault either: wait and retry, with the message.
            _forget_targets()
            raise RetryLater(with_context(exc)) from None
        raise
    if already:
        job.log.info("already_loaded", rows=rows, table=target.table)
    return Outcome(
        minutes=(time.monotonic() - started) / 60,
        size=size,
        sha256=sha256,
        records=rows,
        transaction=PgTransaction(session),
    )


def _evolve(connection: psycopg.Connection[Any], options: Options, job: Job) -> None:
    """--on-new-columns add, --pg-create-table: the columns this file brings, added (or the
    table made) and committed before its own transaction begins."""
    try:
        target: Target | None = _target(connection, options)
    except StartupError:
        if not options.create_table:
            raise
        target = None
    if target is not None and options.new_columns != "add":
        return
    known = [name for name, _ in target.catalog] if target is not None else []
    wanted = pgcolumns.survey(job.open, options.format, known, options.bad_rows.reject)
    if target is None and options.new_columns == "rescue":
        wanted.setdefault(options.rescue_column, "jsonb")
    if target is not None and not wanted:
        return
    parts = target.parts if target is not None else tuple(options.table.split("."))
    added, created = pgcolumns.evolve(connection, parts, wanted, create=target is None)
    _forget_targets()  # a peer may have added them first: read the catalog again either way
    if created:
        job.log.info("table_created", table=options.table, columns=added)
    elif added:
        job.log.info("columns_added", table=target.table if target else "", columns=added)


def _load(
    connection: psycopg.Connection[Any], target: Target, job: Job
) -> tuple[int, str, int, bool]:
    """(size, sha256, rows, already loaded) for one file, in a transaction left open."""
    options: Options = job.options
    load = loads.Load(target.table, options.source_id, job.name)
    with connection.cursor() as cursor:
        found = loads.find(cursor, options.schema, load)
        reload = None
        if found is not None and options.file_column:
            reload = loads.take_reload(cursor, options.schema, load)
        if found is not None and reload is None:
            size, sha256 = _digest(job)
            if sha256 != found.sha256:
                raise BadInput(
                    f"content_changed_after_load: {job.name} was loaded into "
                    f"{target.table} with sha256 {found.sha256}, it now has {sha256}"
                )
            return size, sha256, found.rows, True
        load_id = loads.next_id(cursor, options.schema) if options.file_column else None
        if found is not None and load_id is not None:
            _replace(cursor, target, job, load, found, load_id, reload or "")
        done = _rows(cursor, target, job, load)
        parsed = parse(job.name)  # the file's place in the order, for consumers
        loads.record(
            cursor,
            options.schema,
            load,
            sha256=done.sha256,
            rows=done.rows,
            rejected=done.rejected,
            load_id=load_id,
            worker=job.worker,
            key=parsed.key if parsed else None,
            stamp=parsed.stamp if parsed else None,
        )
    if done.rejected:
        first = done.first
        job.log.warning(
            "rows_rejected",
            rejected=done.rejected,
            rows=done.rows,
            table=target.table,
            first_line=first.line if first else None,
            first_error=first.error if first else None,
        )
    return done.size, done.sha256, done.rows, False


def _digest(job: Job) -> tuple[int, str]:
    """(size, sha256) of what the source holds now."""
    with open_content(job.open) as (_, hashing):
        return hashing.finish()  # of the bytes as stored: nothing to decompress


def _replace(cursor: psycopg.Cursor[Any], target: Target, job: Job, load: loads.Load,
             old: loads.Earlier, new_id: int, who: str) -> None:  # fmt: skip
    """`ingestd reload`: the old load's rows, rejects and record out, in this transaction."""
    options: Options = job.options
    deleted = loads.replace(cursor, options.schema, load, options.file_column, old, new_id,
                            target.parts)  # fmt: skip
    if old.rows and not deleted:
        # Its rows carry no load id (loaded before --pg-file-column): deleting nothing and
        # loading again would double them.
        raise BadInput(
            f"reload: none of the {old.rows} rows of {job.name} in {target.table} carries its "
            f"load id in {options.file_column} (loaded before --pg-file-column): nothing changed"
        )
    job.log.info("reloading", table=target.table, deleted=deleted, load_id=new_id,
                 replaces=old.load_id, requested_by=who)  # fmt: skip


@dataclass(frozen=True)
class _Done:
    size: int
    sha256: str
    rows: int
    rejected: int = 0
    first: rejects.Rejected | None = None


def _rows(cursor: psycopg.Cursor[Any], target: Target, job: Job, load: loads.Load) -> _Done:
    """Copy the file's rows into the target, in the format it holds, by --bad-rows."""
    options: Options = job.options
    with open_content(job.open) as (stream, hashing):
        skip_bom(stream)
        asked = options.format
        form = tell(head_of(stream), asked)
        sniffed = asked.name == "auto"
        if options.bad_rows.reject:

            def keep(refused: list[rejects.Rejected]) -> None:
                rejects.keep(cursor, options.schema, load.target, load.source, load.file, refused)

            copy, rows, render = pgcopy.framed(stream, target, form, sniffed)
            loaded = copy_rejecting(cursor, copy, rows, options.bad_rows, render, keep)
            size, sha256 = hashing.finish()
            return _Done(size, sha256, loaded.rows, loaded.rejected, loaded.first)
        if form.name in ("csv", "tsv"):
            count = pgcopy.straight(cursor, target, stream, form, sniffed)
        elif form.name == "parquet":
            with cursor.copy(statement(target)) as sink:
                for values in pgcopy.parquet_rows(stream, target):
                    sink.write_row(values)
            count = max(cursor.rowcount, 0)
        elif options.converter == "exact" and target.unknown != "rescue":
            # The fast path first (it cannot see the fields a rescue keeps).
            plain = _copy_plain(cursor, target, stream, job)
            if plain is None:  # it could not take the file: the standard one, from the start
                with open_content(job.open) as (again, rehashing):
                    count = _copy(cursor, target, again, options.converter)
                    size, sha256 = rehashing.finish()
                return _Done(size, sha256, count)
            count = plain
        else:
            count = _copy(cursor, target, stream, options.converter)
        size, sha256 = hashing.finish()
    return _Done(size, sha256, count)


def _copy_plain(
    cursor: psycopg.Cursor[Any], target: Target, stream: IO[bytes], job: Job
) -> int | None:
    """The rows loaded through the fast exact path (pgrows.py); None if it cannot take the
    file: then nothing of it is in the table (rolled back to a savepoint)."""
    decoder = decoder_for(target.columns, target.kinds, strict=target.unknown == "fail")
    if decoder is None:
        return None  # no msgspec: the standard library converter does it all
    cursor.execute("SAVEPOINT ingestd_plain")
    try:
        with cursor.copy(statement(target)) as sink:
            for row in decoder.rows(stream):
                sink.write_row(row)
        rows = max(cursor.rowcount, 0)
    except NotPlain as exc:
        cursor.execute("ROLLBACK TO SAVEPOINT ingestd_plain")
        job.log.debug("pg_standard_converter", reason=str(exc))
        return None
    cursor.execute("RELEASE SAVEPOINT ingestd_plain")
    return rows


def _copy(cursor: psycopg.Cursor[Any], target: Target, stream: IO[bytes], converter: str) -> int:
    if converter == "duckdb":
        copy = statement(target, options=" (FORMAT csv)")
        chunks = _duckdb_csv(stream, target)
    else:
        copy = statement(target)
        chunks = _overlapped(pgcopy.json_text(target, iter_objects(stream, exact=True)))
    with cursor.copy(copy) as sink:
        for chunk in chunks:
            sink.write(chunk)
    return max(cursor.rowcount, 0)


def _duckdb_csv(stream: IO[bytes], target: Target) -> Iterator[bytes]:
    """CSV rows from DuckDB's `read_json`, fed and drained through FIFOs by threads.

    DuckDB reads a path: the content goes into one FIFO from a thread (so the source may be
    anything `job.open` gives), DuckDB writes CSV into another, and this generator reads it
    for the COPY. JSON text for json/jsonb columns; VARCHAR (the number or string as written)
    for the others, which PostgreSQL then parses for the column's type.
    """
    import duckdb

    with tempfile.TemporaryDirectory(prefix="ingestd-pg-") as tmp:
        json_in, csv_out = Path(tmp) / "in.json", Path(tmp) / "out.csv"
        os.mkfifo(json_in)
        os.mkfifo(csv_out)
        errors: list[BaseException] = []
        connection = duckdb.connect()

        def feed() -> None:
            _feed(stream, json_in, errors)

        def convert() -> None:
            try:
                connection.execute("SET threads = 1")
                connection.execute(_duckdb_copy(target, json_in, csv_out))
            except BaseException as exc:
                errors.append(exc)
                # Unblock the reader of our output if DuckDB failed before opening it.
                with contextlib.suppress(OSError):
                    os.close(os.open(csv_out, os.O_WRONLY | os.O_NONBLOCK))

        threads = [threading.Thread(target=feed), threading.Thread(target=convert)]
        for thread in threads:
            thread.start()
        finished = False
        try:
            with open(csv_out, "rb") as rows:
                while chunk := rows.read(1 << 20):
                    yield chunk
            finished = True
        finally:
            if not finished:  # the COPY failed or was cancelled: stop DuckDB too
                connection.interrupt()
            # Unblock the feeder if DuckDB never opened its input.
            with contextlib.suppress(OSError):
                os.close(os.open(json_in, os.O_RDONLY | os.O_NONBLOCK))
            for thread in threads:
                thread.join()
            connection.close()
        if errors:
            exc = errors[0]
            if isinstance(exc, duckdb.Error):
                raise BadInput(f"malformed JSON: {exc}") from None
            raise exc


def _duckdb_copy(target: Target, json_in: Path, csv_out: Path) -> str:
    """DuckDB's COPY of the target's columns from JSON Lines at `json_in` to CSV at `csv_out`."""
    types = ", ".join(
        f"{_duck_string(c)}: '{'JSON' if c in target.json_columns else 'VARCHAR'}'"
        for c in target.columns
    )
    select = ", ".join('"' + c.replace('"', '""') + '"' for c in target.columns)
    return (
        f"COPY (SELECT {select} FROM read_json('{json_in}', format = 'auto', "
        f"columns = {{{types}}})) TO '{csv_out}' (FORMAT csv, HEADER false)"
    )


def _feed(stream: IO[bytes], path: Path, errors: list[BaseException]) -> None:
    """Copy the content into the FIFO DuckDB reads (in a thread of its own)."""
    try:
        with open(path, "wb") as sink:
            while chunk := stream.read(1 << 20):
                sink.write(chunk)
    except BrokenPipeError:
        pass  # DuckDB stopped reading: its own error says why
    except BaseException as exc:
        errors.append(exc)


def _duck_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _overlapped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Produce in a thread while the caller sends: the conversion overlaps the COPY."""
    done = object()
    pipe: queue.Queue[object] = queue.Queue(maxsize=8)
    errors: list[BaseException] = []
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    with contextlib.suppress(queue.Full):
                        pipe.put(chunk, timeout=0.1)
                        break
                if stop.is_set():
                    return
        except BaseException as exc:
            errors.append(exc)
        pipe.put(done)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        while (item := pipe.get()) is not done:
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                pipe.get_nowait()
        producer.join()
    if errors:
        raise errors[0]
