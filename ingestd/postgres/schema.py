"""PostgreSQL for ingestd: connections, and ingestd's own tables, made on first use and versioned.

Connections set TCP keepalives (10 s idle, 3 probes 5 s apart), so a dead server or a cut
network surfaces as an error in about 25 s, never as a hang.

One schema (`--pg-schema`, default `ingestd`) holds what the `pg` handler and the PostgreSQL
ledger keep: `loads` (one row per file loaded into a target table, with the key and timestamp
its name stands for: its place in the order), `records` (the ledger's
records, one per finished attempt, `seq` in commit order), `claims`, `workers`, `flags` and
`watermarks` (`--publish-in-order` with the `pg` handler). Every one is keyed by the source
too (its canonical location, or `--fleet NAME`): one database serves many sources, each apart.
Whoever comes first makes them, under a transaction-level advisory lock so peers starting
together wait instead of colliding. A schema newer than this code is refused (exit 2); one
that is current runs no DDL, so roles without the right to create can run workers.
"""

from __future__ import annotations

from typing import Any

from ingestd.contracts.errors import StartupError

SCHEMA_VERSION = 6  # 2: the ledger's claim and commit are server-side functions;
# 3: a load record carries its file's place in the order (file_key, file_time);
# 4: every key has the source (many sources on one database), targets as resolved, and a
# record names the source's version of the content it processed;
# 5: rejected rows (`rejects`) and their count in each load record; each load an id
# (`load_id`, stamped on rows with --pg-file-column), reload requests and replaced loads;
# 6: a claim tries several files, writes the attempt's owner and is not waited for on disk
# (its token random), and a claim or commit returns the records committed since the
# caller's last look (one round trip each per file, where there were five)


def require_psycopg(option: str) -> Any:
    """The psycopg module; `StartupError` naming `option` if the extra is not installed."""
    try:
        import psycopg
    except ImportError:
        raise StartupError(
            f"{option} needs the postgres extra: pip install 'ingestd[postgres]'"
        ) from None
    return psycopg


def connect(url: str, application_name: str, option: str, autocommit: bool = False) -> Any:
    return require_psycopg(option).connect(
        url,
        autocommit=autocommit,
        # Text is UTF-8 on the wire whatever the database's encoding: files are UTF-8, and
        # CSV goes into COPY as the bytes it is.
        client_encoding="utf8",
        connect_timeout=10,
        application_name=application_name,
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )


_TABLES = (
    "CREATE TABLE IF NOT EXISTS {s}.loads (target text NOT NULL, source text NOT NULL,"
    " file text NOT NULL, sha256 text NOT NULL, rows bigint NOT NULL, worker text NOT NULL,"
    " loaded_at timestamptz NOT NULL DEFAULT now(), file_key text, file_time timestamp,"
    " rejected bigint NOT NULL DEFAULT 0, load_id bigint, PRIMARY KEY (target, source, file))",
    "CREATE SEQUENCE IF NOT EXISTS {s}.load_ids",
    # `ingestd reload`: the files whose rows the next load replaces, and the loads replaced.
    "CREATE TABLE IF NOT EXISTS {s}.reloads (target text NOT NULL, source text NOT NULL,"
    " file text NOT NULL, requested_by text NOT NULL, requested_at timestamptz NOT NULL"
    " DEFAULT now(), PRIMARY KEY (target, source, file))",
    "CREATE TABLE IF NOT EXISTS {s}.load_history (target text NOT NULL, source text NOT NULL,"
    " file text NOT NULL, sha256 text NOT NULL, rows bigint NOT NULL, worker text NOT NULL,"
    " loaded_at timestamptz NOT NULL, file_key text, file_time timestamp, rejected bigint NOT"
    " NULL, load_id bigint, replaced_by bigint NOT NULL, replaced_at timestamptz NOT NULL"
    " DEFAULT now())",
    # --bad-rows reject: a file's refused rows, committed with its good ones (`rejects.py`).
    "CREATE TABLE IF NOT EXISTS {s}.rejects (target text NOT NULL, source text NOT NULL,"
    " file text NOT NULL, line bigint NOT NULL, error text NOT NULL, raw bytea NOT NULL,"
    " rejected_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (source, file, target, line))",
    "CREATE TABLE IF NOT EXISTS {s}.records (seq bigserial PRIMARY KEY, source text NOT NULL,"
    " file text NOT NULL, status text NOT NULL, worker text NOT NULL, host text, pid integer,"
    " attempt integer, minutes double precision, size bigint, sha256 text, seen_at text,"
    " started_at text, finished_at text, error text, outputs jsonb, records bigint,"
    " requested_at text, previous_error text, recorded_at timestamptz NOT NULL DEFAULT now(),"
    " version text, previous_sha256 text, generation integer NOT NULL DEFAULT 0)",
    # At most one done record per file of a source (per `redo` an operator asked for): a
    # database constraint, not only our care.
    "CREATE UNIQUE INDEX IF NOT EXISTS records_one_done ON {s}.records (source, file,"
    " generation) WHERE status = 'done'",
    "CREATE INDEX IF NOT EXISTS records_redo ON {s}.records (source, file) WHERE status = 'redo'",
    "CREATE INDEX IF NOT EXISTS records_source_seq ON {s}.records (source, seq)",
    "CREATE TABLE IF NOT EXISTS {s}.claims (source text NOT NULL, file text NOT NULL,"
    " token bigint NOT NULL, holder text, lease_until timestamptz, owner jsonb,"
    " PRIMARY KEY (source, file))",
    "CREATE TABLE IF NOT EXISTS {s}.workers (source text NOT NULL, worker text NOT NULL,"
    " beat jsonb NOT NULL, beat_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (source, worker))",
    "CREATE TABLE IF NOT EXISTS {s}.flags (source text NOT NULL, name text NOT NULL,"
    " PRIMARY KEY (source, name))",
    # --publish-in-order with the pg handler: per target, source and key, the file up to
    # which every file is loaded or failed (`marks.py`).
    "CREATE TABLE IF NOT EXISTS {s}.watermarks (target text NOT NULL, source text NOT NULL,"
    " key text NOT NULL, published text NOT NULL, skipped jsonb NOT NULL DEFAULT '[]',"
    " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (target, source, key))",
)

# The ledger's steps, one round trip each (a claim was five, a commit seven). Every one names
# its source: one database serves many sources, each kept apart.
_FUNCTIONS = (
    # claim: take the first of `files` that no live peer holds (lease running and its
    # session's advisory lock held, or the server restarted less than `grace` seconds ago)
    # and that we do not hold ourselves, and write `owner` with the next attempt number.
    # With `skip_finished`, a file with a standing done record is passed over without a
    # claim. Rows: each file passed over (o_status 'busy' or 'already_finished'); then, if
    # one was won or found finished, the source's records committed after `seen` (o_seq set:
    # the caller learns in the same round trip whether the file was finished meanwhile);
    # then the claim (o_token set). SKIP LOCKED: a file a peer is taking or giving back
    # right now is busy.
    # A claim is not waited for on disk (the record's commit is, and it makes the claim
    # durable on its way, the log being sequential): a server crash can lose a claim of its
    # last moments. Its token is a fresh random number, never the old one plus one, so a
    # claim lost that way and taken again after the restart cannot share its token with the
    # lost one: the first holder's commit and give-backs are fenced out.
    """CREATE OR REPLACE FUNCTION {s}.claim(p_source text, p_files text[], p_worker text,
        p_lease float8, p_class integer, p_grace float8, p_owner jsonb, p_seen bigint,
        p_skip_finished boolean)
        RETURNS TABLE (o_seq bigint, o_file text, o_status text, o_token bigint,
            o_owner jsonb, o_attempt integer)
    LANGUAGE plpgsql AS $$
    DECLARE
        c record;
        v_file text;
        v_attempt integer;
        v_token bigint;
        v_previous jsonb;
        v_won boolean := false;
        v_finished boolean := false;
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        FOREACH v_file IN ARRAY p_files LOOP
            IF p_skip_finished AND EXISTS (SELECT 1 FROM {s}.records d
                    WHERE d.source = p_source AND d.file = v_file AND d.status = 'done'
                    AND d.generation = (SELECT count(*) FROM {s}.records r
                        WHERE r.source = p_source AND r.file = v_file AND r.status = 'redo'))
                    THEN
                v_finished := true;
                RETURN QUERY SELECT NULL::bigint, v_file, 'already_finished'::text,
                    NULL::bigint, NULL::jsonb, NULL::integer;
                CONTINUE;
            END IF;
            -- A file never claimed before (a drain's usual case) is taken by its insert.
            -- Only where no row is there: an insert waits for a transaction deleting the
            -- same key, and a group of commits deletes several claim rows in one, so it may
            -- in turn wait for a row this claim has locked. A claim never waits for a
            -- commit: a row being deleted is locked, and SKIP LOCKED passes over it.
            IF NOT EXISTS (SELECT 1 FROM {s}.claims WHERE source = p_source
                    AND file = v_file) THEN
                v_token := floor(random() * 9007199254740991)::bigint + 1;
                INSERT INTO {s}.claims (source, file, token, holder, lease_until, owner)
                    VALUES (p_source, v_file, v_token, p_worker,
                        now() + make_interval(secs => p_lease),
                        p_owner || jsonb_build_object('attempt', 1))
                    ON CONFLICT DO NOTHING;
                IF FOUND THEN
                    v_attempt := 1;
                    v_previous := NULL;
                    v_won := true;
                    EXIT;
                END IF;
            END IF;
            SELECT token, holder, lease_until, owner INTO c FROM {s}.claims
                WHERE source = p_source AND file = v_file FOR UPDATE SKIP LOCKED;
            IF NOT FOUND OR (c.holder IS NOT NULL AND c.lease_until > now()
                    AND (c.holder = p_worker
                    OR EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
                        AND l.classid = p_class
                        AND l.objid = hashtext(p_source || ' ' || c.holder)::oid
                        AND l.granted)
                    OR pg_postmaster_start_time() > now() - make_interval(secs => p_grace)))
                    THEN
                RETURN QUERY SELECT NULL::bigint, v_file, 'busy'::text, NULL::bigint,
                    NULL::jsonb, NULL::integer;
                CONTINUE;
            END IF;
            -- The worker counts the same way and writes the owner itself where it reads
            -- the earlier one otherwise (hand-edited).
            v_attempt := CASE WHEN jsonb_typeof(c.owner->'attempt') = 'number'
                AND (c.owner->>'attempt')::numeric BETWEEN 0 AND 1000000000
                THEN trunc((c.owner->>'attempt')::numeric)::integer + 1 ELSE 1 END;
            v_token := floor(random() * 9007199254740991)::bigint + 1;
            v_previous := c.owner;
            UPDATE {s}.claims SET token = v_token, holder = p_worker,
                lease_until = now() + make_interval(secs => p_lease),
                owner = p_owner || jsonb_build_object('attempt', v_attempt)
                WHERE source = p_source AND file = v_file;
            v_won := true;
            EXIT;
        END LOOP;
        IF v_won OR v_finished THEN
            RETURN QUERY SELECT r.seq, r.file, r.status, NULL::bigint, NULL::jsonb,
                NULL::integer FROM {s}.records r
                WHERE r.source = p_source AND r.seq > p_seen ORDER BY r.seq;
        END IF;
        IF v_won THEN
            RETURN QUERY SELECT NULL::bigint, v_file, NULL::text, v_token, v_previous,
                v_attempt;
        END IF;
    END $$""",
    # begin: the attempt's owner when it is not the one the claim wrote; not waited for on
    # disk (like the file ledger's owner record): a server crash can lose an attempt's
    # count, never a claim.
    """CREATE OR REPLACE FUNCTION {s}.begin_attempt(p_source text, p_file text, p_token bigint,
        p_owner jsonb) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        UPDATE {s}.claims SET owner = p_owner
            WHERE source = p_source AND file = p_file AND token = p_token;
    END $$""",
    # commit: fenced by the token, at most one done per file, the claim row goes with it.
    # The advisory lock (one per source) makes `seq` order commit order within the source
    # (readers keep the last seq they saw); taken last, so a joined handler transaction
    # holds it only for the record and COMMIT. Written: the source's records after `seen`,
    # ours among them (o_ours); fenced out: nothing.
    """CREATE OR REPLACE FUNCTION {s}.commit_record(p_source text, p_token bigint,
        p_record jsonb, p_class integer, p_seen bigint)
        RETURNS TABLE (o_seq bigint, o_file text, o_status text, o_ours boolean)
    LANGUAGE plpgsql AS $$
    DECLARE
        v_file text := p_record->>'file';
        v_generation integer;
        v_seq bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock(p_class, hashtext(p_source));
        -- Our claim goes first: not there under our token, a peer took the file over.
        -- (Fenced by a done record below, it is gone all the same: the hold ends either way.)
        DELETE FROM {s}.claims WHERE source = p_source AND file = v_file AND token = p_token;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        -- Each `redo` an operator asked for opens the file for one more done record.
        SELECT count(*) INTO v_generation FROM {s}.records
            WHERE source = p_source AND file = v_file AND status = 'redo';
        IF EXISTS (SELECT 1 FROM {s}.records WHERE source = p_source AND file = v_file
                AND status = 'done' AND generation = v_generation) THEN
            RETURN;
        END IF;
        INSERT INTO {s}.records (source, file, status, worker, host, pid, attempt, minutes,
                size, sha256, seen_at, started_at, finished_at, error, outputs, records,
                version, generation)
            SELECT p_source, r.file, r.status, r.worker, r.host, r.pid, r.attempt, r.minutes,
                r.size, r.sha256, r.seen_at, r.started_at, r.finished_at, r.error, r.outputs,
                r.records, r.version, v_generation
            FROM jsonb_populate_record(NULL::{s}.records, p_record) r
            RETURNING seq INTO v_seq;
        RETURN QUERY SELECT r.seq, r.file, r.status, r.seq = v_seq
            FROM {s}.records r WHERE r.source = p_source AND r.seq > p_seen ORDER BY r.seq;
    END $$""",
)

_LOADS_3 = (
    "ALTER TABLE {s}.loads ADD COLUMN IF NOT EXISTS file_key text,"
    " ADD COLUMN IF NOT EXISTS file_time timestamp"
)
_LOADS_5 = (
    "ALTER TABLE {s}.loads ADD COLUMN IF NOT EXISTS rejected bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS load_id bigint",
    "CREATE SEQUENCE IF NOT EXISTS {s}.load_ids",
    "UPDATE {s}.loads SET load_id = nextval('{s}.load_ids') WHERE load_id IS NULL",
)

# Version 4: a source in every key. Rows from before belong to the source of the worker that
# migrates (until then a ledger served one source; two on one was the defect this fixes).
# A constant default is a catalog change in PostgreSQL 11+, not a rewrite of every row.
_SOURCE_KEYS = (
    ("loads", "target, source, file"),
    ("claims", "source, file"),
    ("workers", "source, worker"),
    ("flags", "source, name"),
    ("watermarks", "target, source, key"),
)
_OLD_FUNCTIONS = (
    "claim(text, text, float8, integer, float8)",
    "begin_attempt(text, bigint, jsonb)",
    "commit_record(bigint, jsonb, integer, integer)",
)
# Version 6: claim and commit take the caller's last seen seq and return records.
_FUNCTIONS_5 = (
    "claim(text, text, text, float8, integer, float8)",
    "commit_record(text, bigint, jsonb, integer)",
)
# Version 4 names a load's target as PostgreSQL resolves it (schema.table, each part quoted
# as needed), so `--pg-table Events` and `--pg-table public.events` are one target.
_CANONICAL_TARGETS = (
    "UPDATE {s}.loads l SET target = format('%I.%I', n.nspname, c.relname)"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = to_regclass(l.target) AND NOT EXISTS (SELECT 1 FROM {s}.loads o"
    " WHERE o.target = format('%I.%I', n.nspname, c.relname) AND o.source = l.source"
    " AND o.file = l.file)"
)

# What the roles that run workers need once the schema exists (docs/guides/postgres-ledger.md).
GRANTS_HINT = (
    "a role that runs workers needs USAGE on the schema, SELECT/INSERT/UPDATE/DELETE on its "
    "tables, USAGE on its sequences and EXECUTE on its functions; the first start (or an "
    "upgrade) must be made by a role that may create in the database"
)


def schema_version(connection: Any, schema: str) -> int | None:
    """The version of ingestd's schema in this database; None if there is none."""
    from psycopg import sql

    found = connection.execute(
        "SELECT to_regclass(%s)", (sql.Identifier(schema, "schema_version").as_string(None),)
    ).fetchone()
    if not found or found[0] is None:
        return None
    row = connection.execute(
        sql.SQL("SELECT max(version) FROM {}").format(sql.Identifier(schema, "schema_version"))
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _refuse_newer(schema: str, version: int | None) -> None:
    if version is not None and version > SCHEMA_VERSION:
        raise StartupError(
            f"schema {schema} is at version {version}, newer than this ingestd "
            f"understands ({SCHEMA_VERSION}): upgrade ingestd"
        )


# What each version brought, for `ingestd migrate` to say.
CHANGES = {
    2: "the ledger's claim and commit as server-side functions",
    3: "each load record names its file's key and time",
    4: "every key carries its source (rows from before: the migrating command's source)",
    5: "rejected rows, reload requests, load history and load ids",
    6: "a claim writes its attempt's owner; claims and commits return the new records",
}


def ensure_schema(connection: Any, schema: str, source: str) -> None:
    """Make the schema if there is none; `StartupError` if it is of another version.

    The version is read first: a schema already current runs no DDL at all, so a role with
    only the grants a worker needs (GRANTS_HINT) can run workers. An older schema is never
    changed under a fleet that may still run the older version: `ingestd migrate` does that,
    once the old workers are stopped (the error says so).
    """
    psycopg = require_psycopg("PostgreSQL")
    try:
        version = schema_version(connection, schema)
        if not connection.autocommit:
            connection.rollback()
        _refuse_newer(schema, version)
        if version == SCHEMA_VERSION:
            return
        if version is not None:
            raise StartupError(
                f"schema {schema} is at version {version}, this ingestd needs {SCHEMA_VERSION}:"
                " stop the workers of the older version, then run `ingestd migrate DIR` with "
                "this database (--ledger or --pg-url); see Upgrading in the docs"
            )
        _create_or_migrate(connection, schema, source)
    except psycopg.errors.InsufficientPrivilege as exc:
        if not connection.autocommit:
            connection.rollback()
        raise StartupError(f"schema {schema}: {first_line(exc)}: {GRANTS_HINT}") from None
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        if not connection.autocommit:
            connection.rollback()
        raise StartupError(
            f"schema {schema} needs creating and the database is read-only ({first_line(exc)})"
        ) from None


def migrate_schema(connection: Any, schema: str, source: str, dry_run: bool) -> int | None:
    """Bring an older schema to this version (`ingestd migrate`); rows from before version
    4 belong to `source`. The version it was at (None: there is none, and nothing is made)."""
    version = schema_version(connection, schema)
    if not connection.autocommit:
        connection.rollback()
    _refuse_newer(schema, version)
    if version is not None and version < SCHEMA_VERSION and not dry_run:
        _create_or_migrate(connection, schema, source)
    return version


def _create_or_migrate(connection: Any, schema: str, source: str) -> None:
    from psycopg import sql

    name = sql.Identifier(schema)
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext('ingestd schema'))")
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_version (version integer NOT NULL)"
            ).format(name)
        )
        version = schema_version(connection, schema)  # again: a peer may have been first
        _refuse_newer(schema, version)
        if version == SCHEMA_VERSION:
            return
        if version is not None:
            _migrate(connection, schema, version, source)
        for statement in (*_TABLES, *_FUNCTIONS):
            connection.execute(sql.SQL(statement).format(s=name))
        connection.execute(
            sql.SQL("INSERT INTO {}.schema_version VALUES (%s)").format(name), (SCHEMA_VERSION,)
        )


def _migrate(connection: Any, schema: str, version: int, source: str) -> None:
    """Bring an older schema's tables to the current shape (then `_TABLES` adds what is new).

    Only when migrating: an ALTER waits for every open transaction on the table, and every
    query on it would queue behind that wait.
    """
    from psycopg import sql

    s = sql.Identifier(schema)

    def exists(table: str) -> bool:
        row = connection.execute(
            "SELECT to_regclass(%s)", (sql.Identifier(schema, table).as_string(None),)
        ).fetchone()
        return row is not None and row[0] is not None

    if version < 3 and exists("loads"):
        connection.execute(sql.SQL(_LOADS_3).format(s=s))
    if version < 4:
        _source_keys(connection, schema, source, exists)
    if version < 5 and exists("loads"):
        for statement in _LOADS_5:
            connection.execute(sql.SQL(statement).format(s=s))
    for function in _FUNCTIONS_5:
        # Replaced by `_FUNCTIONS`: a worker of version 5 still running fails and waits.
        connection.execute(sql.SQL("DROP FUNCTION IF EXISTS {}." + function).format(s))


def _source_keys(connection: Any, schema: str, source: str, exists: Any) -> None:
    """Version 4: the source in every key (see _SOURCE_KEYS)."""
    from psycopg import sql

    s = sql.Identifier(schema)
    for function in _OLD_FUNCTIONS:
        # Old workers still running fail loudly (and wait) instead of writing rows without
        # a source.
        connection.execute(sql.SQL("DROP FUNCTION IF EXISTS {}." + function).format(s))
    connection.execute(
        sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(schema, "records_one_done"))
    )
    if exists("records"):
        connection.execute(
            sql.SQL(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS version text,"
                " ADD COLUMN IF NOT EXISTS previous_sha256 text,"
                " ADD COLUMN IF NOT EXISTS generation integer NOT NULL DEFAULT 0"
            ).format(sql.Identifier(schema, "records"))
        )
    keys = dict(_SOURCE_KEYS)
    for table in ("records", *keys):
        if not exists(table):
            continue  # made fresh by _TABLES
        t = sql.Identifier(schema, table)
        connection.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN source text NOT NULL DEFAULT {}").format(
                t, sql.Literal(source)
            )
        )
        connection.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN source DROP DEFAULT").format(t))
        if table in keys:
            connection.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    t, sql.Identifier(f"{table}_pkey")
                )
            )
            connection.execute(
                sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (" + keys[table] + ")").format(t)
            )
    if exists("loads"):
        connection.execute(sql.SQL(_CANONICAL_TARGETS).format(s=s))


def resolve_table(connection: Any, table: str) -> tuple[str, str, str] | None:
    """`[SCHEMA.]TABLE` as PostgreSQL resolves it (unquoted names fold to lower case, the
    search path finds the schema): (schema, table) as the catalog has them, and
    `schema.table` with each part quoted where it must be. None when there is no such
    table."""
    row = connection.execute(
        "SELECT n.nspname, c.relname, format('%%I.%%I', n.nspname, c.relname) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (table,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def first_line(exc: BaseException) -> str:
    """An error's message without PostgreSQL's DETAIL/HINT lines."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
