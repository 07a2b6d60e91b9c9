"""`--on-new-columns add` and `--pg-create-table`: the columns a file brings, typed from its
values, added to the table (or the table made) once for the fleet, before the file's load.

Types from JSON values: whole numbers `bigint` (`numeric` past 64 bits), numbers with a
fraction or exponent `numeric` (exact), `true`/`false` `boolean`, strings `text` (or
`timestamptz` when every one is an ISO 8601 time with an offset), objects and lists `jsonb`; a
field whose values disagree is `jsonb` (whole numbers beside fractions: `numeric`), one that is
only ever null `text`. CSV and TSV columns are `text` (nothing in them says more). Parquet's
columns map from Arrow's types.

The change runs in a transaction of its own, committed before the file's: under an advisory
lock per table, the catalog is read again and only what is still missing is added (`ADD
COLUMN IF NOT EXISTS`, `CREATE TABLE IF NOT EXISTS`), so two workers meeting the same new field
add it once, and a worker killed after the change leaves a table a peer simply uses.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ingestd.contracts.errors import BadInput
from ingestd.handlers.content import (
    Format,
    Opener,
    csv_records,
    head_of,
    header_fields,
    line_blocks,
    lines,
    open_content,
    skip_bom,
    tell,
)
from ingestd.handlers.tsv import JsonNumber, decode_object, iter_objects

_LONGEST_NAME = 63  # PostgreSQL's identifiers: longer ones are cut, and would not match
_INT64 = range(-(2**63), 2**63)
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d(:?\d\d)?)$")


def json_type(value: Any) -> str | None:
    """The column type one JSON value asks for; None for null."""
    kind = type(value)
    if value is None:
        return None
    if kind is bool:
        return "boolean"
    if kind is JsonNumber:  # numbers come as written: whole ones without . or exponent
        text = str.__str__(value)
        if "." in text or "e" in text or "E" in text:
            return "numeric"
        value, kind = int(text), int
    if kind is int:
        return "bigint" if value in _INT64 else "numeric"
    if kind is str:
        return "timestamptz" if _is_time(value) else "text"
    return "jsonb"


def _is_time(text: str) -> bool:
    if not _ISO_TIME.match(text):
        return False
    try:
        datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def merge(one: str | None, other: str | None) -> str | None:
    """The type that holds both kinds of values."""
    if one is None or one == other:
        return other if one is None else one
    if other is None:
        return one
    if {one, other} == {"bigint", "numeric"}:
        return "numeric"
    if {one, other} == {"text", "timestamptz"}:
        return "text"
    return "jsonb"


def survey_json(stream: IO[bytes], known: Iterable[str], by_line: bool) -> dict[str, str]:
    """The fields of the objects that are not `known`, in first-seen order, each typed.
    `by_line` (--bad-rows reject): JSON Lines, a line that is no object passed over."""
    seen = set(known)
    found: dict[str, str | None] = {}
    for record in _objects_by_line(stream) if by_line else iter_objects(stream, exact=True):
        for name, value in record.items():
            if name not in seen:
                found[name] = merge(found.get(name), json_type(value))
    return {name: kind or "text" for name, kind in found.items()}


def _objects_by_line(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    for record in lines(stream):
        try:
            yield decode_object(record.raw.decode("utf-8"))
        except (BadInput, UnicodeDecodeError, RecursionError):
            continue  # a bad row: rejected when the file loads


def _survey_lines(stream: IO[bytes], known: Iterable[str]) -> dict[str, str] | None:
    """`survey_json` for JSON Lines, fast: msgspec reads each object's names in C and leaves
    its values as raw JSON; only the values of new fields are parsed. None when it cannot (no
    msgspec; an object over several lines; a bad line): the standard survey does it then."""
    try:
        import msgspec
    except ImportError:
        return None
    decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
    seen = frozenset(known)
    found: dict[str, str | None] = {}
    for block in line_blocks(stream):
        try:
            records = decoder.decode_lines(block)
        except (msgspec.DecodeError, UnicodeError):
            return None
        for record in records:
            if record.keys() <= seen:
                continue
            for name, raw in record.items():
                if name not in seen:
                    value = json.loads(bytes(raw), parse_float=JsonNumber, parse_int=JsonNumber)
                    found[name] = merge(found.get(name), json_type(value))
    return {name: kind or "text" for name, kind in found.items()}


def survey(opener: Opener, asked: Format, known: Iterable[str], by_line: bool) -> dict[str, str]:
    """The columns a file brings that are not `known`, typed, whatever its format."""
    with open_content(opener) as (stream, _):
        skip_bom(stream)
        form = tell(head_of(stream), asked)
        if form.name == "json":
            fast = _survey_lines(stream, known)
            if fast is not None:
                return fast
            with open_content(opener) as (again, _):  # from the start, the standard way
                return survey_json(again, known, by_line)
        if form.name == "parquet":
            return survey_parquet(stream, known)
        return survey_text(head_of(stream), form, known)


def survey_text(head: bytes, form: Format, known: Iterable[str]) -> dict[str, str]:
    """A CSV or TSV header's columns that are not `known`, as text."""
    cut = csv_records if form.name == "csv" else lines
    first = next(cut(head.splitlines(keepends=True)), None)
    seen = set(known)
    names = header_fields(first.raw, form) if first is not None else []
    return {name: "text" for name in names if name not in seen}


def survey_parquet(stream: IO[bytes], known: Iterable[str]) -> dict[str, str]:
    """A Parquet file's columns that are not `known`, typed from Arrow's types."""
    from ingestd.handlers import parquet

    seen = set(known)
    schema = parquet.schema_of(stream)
    return {f.name: arrow_type(f.type) for f in schema if f.name not in seen}


def arrow_type(kind: Any) -> str:
    import pyarrow as pa

    types = pa.types
    checks = (
        (types.is_boolean, "boolean"),
        (types.is_int8, "smallint"),
        (types.is_int16, "smallint"),
        (types.is_uint8, "smallint"),
        (types.is_int32, "integer"),
        (types.is_uint16, "integer"),
        (types.is_int64, "bigint"),
        (types.is_uint32, "bigint"),
        (types.is_floating, "double precision"),
        (types.is_decimal, "numeric"),
        (types.is_string, "text"),
        (types.is_large_string, "text"),
        (types.is_binary, "bytea"),
        (types.is_large_binary, "bytea"),
        (types.is_date, "date"),
        (types.is_time, "time"),
    )
    for check, name in checks:
        if check(kind):
            return name
    if types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    if types.is_dictionary(kind):
        return arrow_type(kind.value_type)
    return "numeric" if types.is_uint64(kind) else "jsonb"


def evolve(
    connection: Any, parts: tuple[str, ...], wanted: dict[str, str], create: bool
) -> tuple[list[str], bool]:
    """Add the `wanted` columns the table still lacks (or make the table with them): in a
    transaction of its own, committed. (columns added, table created)."""
    from psycopg import sql

    for name in wanted:
        if not name or len(name.encode()) > _LONGEST_NAME or "\x00" in name:
            raise BadInput(f"a field named {name!r} cannot be a column (1 to 63 bytes, no NUL)")
    table = sql.Identifier(*parts)
    qualified = table.as_string(None)
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext('ingestd columns ' || %s))", (qualified,)
        )
        present = {
            str(row[0])
            for row in connection.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
                " AND attnum > 0 AND NOT attisdropped",
                (qualified,),
            ).fetchall()
        }
        exists = connection.execute("SELECT to_regclass(%s)", (qualified,)).fetchone()[0]
        if exists is None:
            if not create:
                raise BadInput(f"{qualified}: no such table")
            if not wanted:
                raise BadInput(f"{qualified} cannot be made: the file names no column")
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(k)) for n, k in wanted.items()
            )
            connection.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(table, columns))
            return list(wanted), True
        missing = [n for n in wanted if n not in present]
        for name in missing:
            connection.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    table, sql.Identifier(name), sql.SQL(wanted[name])
                )
            )
        return missing, False
