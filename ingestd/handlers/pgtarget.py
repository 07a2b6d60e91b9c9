"""The `pg` handler's target table: its columns and their types as the catalog has them, and
the `COPY` statement into them for each format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingestd.handlers.content import Format

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
