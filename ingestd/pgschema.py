"""PostgreSQL for ingestd: connections, and ingestd's own tables, made on first use and versioned.

Connections set TCP keepalives (10 s idle, 3 probes 5 s apart), so a dead server or a cut
network surfaces as an error in about 25 s, never as a hang.

One schema (`--pg-schema`, default `ingestd`) holds what the `pg` handler and the PostgreSQL
ledger keep: `loads` (one row per file loaded into a target table), `records` (the ledger's
records, one per finished attempt, `seq` in commit order), `claims`, `workers` and `flags`.
Whoever comes first makes them, under a transaction-level advisory lock so peers starting
together wait instead of colliding. A schema newer than this code is refused (exit 2).
"""

from __future__ import annotations

from typing import Any

from .errors import StartupError

SCHEMA_VERSION = 1


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
    " loaded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (target, file))",
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
        if version is None:
            connection.execute(
                sql.SQL("INSERT INTO {}.schema_version VALUES (%s)").format(name),
                (SCHEMA_VERSION,),
            )
