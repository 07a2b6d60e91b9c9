"""The `pg` handler's target table: its columns and their types as the catalog has them, and
the `COPY` statement into them for each format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingestd.contracts.errors import StartupError
from ingestd.handlers.content import Format
from ingestd.postgres.loads import STAMP
from ingestd.postgres.schema import resolve_table

JSON_TYPES = frozenset({"json", "jsonb"})


@dataclass(frozen=True)
class Target:
    table: str  # as PostgreSQL resolved --pg-table: schema.table, quoted where it must be
    parts: tuple[str, str]  # (schema, table) as stored in the catalog, for the COPY
    columns: tuple[str, ...]
    json_columns: frozenset[str]
    kinds: tuple[str, ...]  # each column's type name (int8, numeric, jsonb, ...)
    # (name, type) of every column of the table, not only those loaded: a CSV header may
    # name any of them.
    catalog: tuple[tuple[str, str], ...] = ()
    # What becomes of a file's fields the columns lack (--on-new-columns, `add` having added
    # them first): ignore, fail, or rescue into the `rescue` column (one of `columns`).
    unknown: str = "ignore"
    rescue: str | None = None
    # Each column's type as declared (`numeric(10,2)`, `timestamp with time zone`): what a
    # text value is cast to when the server, not COPY, converts it.
    declared: tuple[tuple[str, str], ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        """The columns a file's fields fill (all but the rescue column)."""
        return tuple(c for c in self.columns if c != self.rescue)

    def only(self, columns: tuple[str, ...]) -> Target:
        """The same table loading just `columns` (each one of the table's)."""
        types = dict(self.catalog)
        return Target(
            self.table,
            self.parts,
            columns,
            frozenset(c for c in columns if types[c] in JSON_TYPES),
            tuple(types[c] for c in columns),
            self.catalog,
            self.unknown,
            self.rescue if self.rescue in columns else None,
            self.declared,
        )


def ensure_file_column(connection: Any, table: str, name: str) -> None:
    """`--pg-file-column NAME`: a bigint column whose default is the running load's id (set by
    the load for its transaction), with a BRIN index: made, or given that default, if need be (in a
    transaction of its own). `StartupError` when it is something else."""
    from psycopg import sql

    found = connection.execute(
        "SELECT format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid)"
        " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid"
        " AND d.adnum = a.attnum WHERE a.attrelid = to_regclass(%s) AND a.attname = %s"
        " AND NOT a.attisdropped",
        (table, name),
    ).fetchone()
    connection.rollback()
    if found is not None and found[0] == "bigint" and "ingestd.load" in (found[1] or ""):
        return
    if found is not None and (found[0] != "bigint" or found[1] is not None):
        raise StartupError(
            f"--pg-file-column {name}: {table}.{name} is a {found[0]} (default {found[1]}), "
            f"not ingestd's: ALTER TABLE {table} ALTER COLUMN {name} TYPE bigint, ALTER COLUMN "
            f"{name} SET DEFAULT {STAMP} (or name another column)"
        )
    resolved = resolve_table(connection, table)
    connection.rollback()
    if resolved is None:
        return  # no table yet (--pg-create-table makes it)
    parts = (resolved[0], resolved[1])
    column = sql.Identifier(name)
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext('ingestd columns ' || %s))", (resolved[2],)
        )
        connection.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} bigint").format(
                sql.Identifier(*parts), column
            )
        )
        connection.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT " + STAMP).format(
                sql.Identifier(*parts), column
            )
        )
        connection.execute(
            # BRIN: a load's rows go in together, so block ranges find them for a reload's
            # DELETE, and it costs a load far less than a b-tree entry per row (bench/).
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING brin ({})").format(
                sql.Identifier(f"{parts[1]}_{name}_load"[:63]), sql.Identifier(*parts), column
            )
        )


def read_target(
    connection: Any,
    table: str,
    columns: tuple[str, ...] | None,
    unknown: str = "ignore",
    rescue: str | None = None,
    file_column: str = "",
) -> Target | None:
    """The table `--pg-table` names, as the catalog has it now; None if there is none.
    `StartupError` for `--columns` or a rescue column it does not have."""
    # Resolved the way PostgreSQL resolves the name (`Events` is events): the COPY and the
    # load record use what it found, never the text as typed.
    found = resolve_table(connection, table)
    rows = connection.execute(
        "SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
        " AND a.attgenerated = '' ORDER BY a.attnum",
        (table,),
    ).fetchall()
    if found is None or not rows:
        return None
    types = {str(name): str(kind) for name, kind, _ in rows}
    if file_column and columns and file_column in columns:
        raise StartupError(f"--columns: {file_column} is the --pg-file-column, filled by ingestd")
    chosen = columns or tuple(n for n in types if n != file_column)
    missing = [c for c in chosen if c not in types]
    if missing:
        raise StartupError(f"--columns: {table} has no column {', '.join(missing)}")
    if unknown == "rescue":
        assert rescue is not None
        if types.get(rescue) not in JSON_TYPES:
            raise StartupError(
                f"--on-new-columns rescue: {table} needs a json or jsonb column {rescue} "
                f"(ALTER TABLE {found[2]} ADD COLUMN {rescue} jsonb, or --rescue-column NAME)"
            )
        chosen = chosen if rescue in chosen else (*chosen, rescue)
    return Target(
        found[2],
        (found[0], found[1]),
        tuple(chosen),
        frozenset(c for c in chosen if types[c] in JSON_TYPES),
        tuple(types[c] for c in chosen),
        tuple(types.items()),
        unknown,
        rescue if unknown == "rescue" else None,
        tuple((str(name), str(declared)) for name, _, declared in rows),
    )


def statement(target: Target, columns: tuple[str, ...] | None = None, options: str = "") -> Any:
    """`COPY table (columns) FROM STDIN [options]`, every name quoted."""
    from psycopg import sql

    names = sql.SQL(", ").join(sql.Identifier(c) for c in (columns or target.columns))
    return sql.SQL("COPY {} ({}) FROM STDIN" + options).format(sql.Identifier(*target.parts), names)


def text_options(form: Format, header: bool) -> str:
    """The COPY options that read `form` (csv, or tsv: PostgreSQL's text format)."""
    from psycopg import sql

    parts = ["FORMAT csv" if form.name == "csv" else "FORMAT text"]
    parts.append("DELIMITER " + sql.Literal(form.delimiter).as_string(None))
    parts.append("NULL " + sql.Literal(form.null).as_string(None))
    if header:
        parts.append("HEADER true")
    return " (" + ", ".join(parts) + ")"
