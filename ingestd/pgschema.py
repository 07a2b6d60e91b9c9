"""PostgreSQL for ingestd: connections, and ingestd's own tables, made on first use and versioned.

Connections set TCP keepalives (10 s idle, 3 probes 5 s apart), so a dead server or a cut
network surfaces as an error in about 25 s, never as a hang.

One schema (`--pg-schema`, default `ingestd`) holds what the `pg` handler and the PostgreSQL
ledger keep: `loads` (one row per file loaded into a target table, with the key and timestamp
its name stands for: its place in the order), `records` (the ledger's
records, one per finished attempt, `seq` in commit order), `claims`, `workers`, `flags` and
`watermarks` (`--publish-in-order` with the `pg` handler).
Whoever comes first makes them, under a transaction-level advisory lock so peers starting
together wait instead of colliding. A schema newer than this code is refused (exit 2).
"""

from __future__ import annotations

from typing import Any

from .errors import StartupError

SCHEMA_VERSION = 3  # 2: the ledger's claim and commit are server-side functions;
# 3: a load record carries its file's place in the order (file_key, file_time)


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
        connect_timeout=10,
        application_name=application_name,
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )


_TABLES = (
    "CREATE TABLE IF NOT EXISTS {s}.loads (target text NOT NULL, file text NOT NULL,"
    " sha256 text NOT NULL, rows bigint NOT NULL, worker text NOT NULL,"
    " loaded_at timestamptz NOT NULL DEFAULT now(), file_key text, file_time timestamp,"
    " PRIMARY KEY (target, file))",
    "CREATE TABLE IF NOT EXISTS {s}.records (seq bigserial PRIMARY KEY, file text NOT NULL,"
    " status text NOT NULL, worker text NOT NULL, host text, pid integer, attempt integer,"
    " minutes double precision, size bigint, sha256 text, seen_at text, started_at text,"
    " finished_at text, error text, outputs jsonb, records bigint, requested_at text,"
    " previous_error text, recorded_at timestamptz NOT NULL DEFAULT now())",
    # At most one done record per file: a database constraint, not only our care.
    "CREATE UNIQUE INDEX IF NOT EXISTS records_one_done ON {s}.records (file)"
    " WHERE status = 'done'",
    "CREATE TABLE IF NOT EXISTS {s}.claims (file text PRIMARY KEY, token bigint NOT NULL,"
    " holder text, lease_until timestamptz, owner jsonb)",
    "CREATE TABLE IF NOT EXISTS {s}.workers (worker text PRIMARY KEY, beat jsonb NOT NULL,"
    " beat_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS {s}.flags (name text PRIMARY KEY)",
    # --publish-in-order with the pg handler: per target and key, the file up to which every
    # file is loaded or failed (pgmarks.py). Made by any version-3 start, no migration needed.
    "CREATE TABLE IF NOT EXISTS {s}.watermarks (target text NOT NULL, key text NOT NULL,"
    " published text NOT NULL, skipped jsonb NOT NULL DEFAULT '[]',"
    " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (target, key))",
    # The ledger's steps, one round trip each (a claim was five, a commit seven).
    # claim: take `file` unless a live peer (lease running and its session's advisory lock
    # held, or the server restarted less than `grace` seconds ago) or we ourselves hold it.
    # Nothing returned: busy (or a peer is taking it right now: SKIP LOCKED).
    """CREATE OR REPLACE FUNCTION {s}.claim(p_file text, p_worker text, p_lease float8,
        p_class integer, p_grace float8) RETURNS TABLE (o_token bigint, o_owner jsonb)
    LANGUAGE plpgsql AS $$
    DECLARE
        c record;
    BEGIN
        INSERT INTO {s}.claims (file, token) VALUES (p_file, 0) ON CONFLICT DO NOTHING;
        SELECT token, holder, lease_until, owner INTO c FROM {s}.claims
            WHERE file = p_file FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF c.holder IS NOT NULL AND c.lease_until > now() AND (c.holder = p_worker
                OR EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
                    AND l.classid = p_class AND l.objid = hashtext(c.holder)::oid
                    AND l.granted)
                OR pg_postmaster_start_time() > now() - make_interval(secs => p_grace)) THEN
            RETURN;
        END IF;
        UPDATE {s}.claims SET token = c.token + 1, holder = p_worker,
            lease_until = now() + make_interval(secs => p_lease) WHERE file = p_file;
        o_token := c.token + 1;
        o_owner := c.owner;
        RETURN NEXT;
    END $$""",
    # begin: the attempt's owner, not waited for on disk (like the file ledger's owner
    # record): a server crash can lose an attempt's count, never a claim.
    """CREATE OR REPLACE FUNCTION {s}.begin_attempt(p_file text, p_token bigint,
        p_owner jsonb) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        UPDATE {s}.claims SET owner = p_owner WHERE file = p_file AND token = p_token;
    END $$""",
    # commit: fenced by the token, at most one done per file, the claim row goes with it.
    # The advisory lock makes `seq` order commit order (readers keep the last seq they saw);
    # taken last, so a joined handler transaction holds it only for the record and COMMIT.
    """CREATE OR REPLACE FUNCTION {s}.commit_record(p_token bigint, p_record jsonb,
        p_class integer, p_lock integer) RETURNS boolean LANGUAGE plpgsql AS $$
    DECLARE
        v_file text := p_record->>'file';
    BEGIN
        PERFORM pg_advisory_xact_lock(p_class, p_lock);
        IF NOT EXISTS (SELECT 1 FROM {s}.claims WHERE file = v_file AND token = p_token
                FOR UPDATE)
            OR EXISTS (SELECT 1 FROM {s}.records WHERE file = v_file AND status = 'done') THEN
            RETURN false;
        END IF;
        INSERT INTO {s}.records (file, status, worker, host, pid, attempt, minutes, size,
                sha256, seen_at, started_at, finished_at, error, outputs, records)
            SELECT r.file, r.status, r.worker, r.host, r.pid, r.attempt, r.minutes, r.size,
                r.sha256, r.seen_at, r.started_at, r.finished_at, r.error, r.outputs, r.records
            FROM jsonb_populate_record(NULL::{s}.records, p_record) r;
        DELETE FROM {s}.claims WHERE file = v_file;
        RETURN true;
    END $$""",
)


_LOADS_3 = (
    "ALTER TABLE {s}.loads ADD COLUMN IF NOT EXISTS file_key text,"
    " ADD COLUMN IF NOT EXISTS file_time timestamp"
)


def ensure_schema(connection: Any, schema: str) -> None:
    """Make the schema and its tables if missing; `StartupError` if it is newer than us."""
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
        row = connection.execute(
            sql.SQL("SELECT max(version) FROM {}.schema_version").format(name)
        ).fetchone()
        version = row[0] if row else None
        if version is not None and version > SCHEMA_VERSION:
            raise StartupError(
                f"schema {schema} is at version {version}, newer than this ingestd "
                f"understands ({SCHEMA_VERSION}): upgrade ingestd"
            )
        for statement in _TABLES:
            connection.execute(sql.SQL(statement).format(s=name))
        if version is not None and version < 3:
            # Only when migrating: an ALTER waits for every open transaction on the table,
            # and every query on it would queue behind that wait.
            connection.execute(sql.SQL(_LOADS_3).format(s=name))
        if version is None or version < SCHEMA_VERSION:
            connection.execute(
                sql.SQL("INSERT INTO {}.schema_version VALUES (%s)").format(name),
                (SCHEMA_VERSION,),
            )
