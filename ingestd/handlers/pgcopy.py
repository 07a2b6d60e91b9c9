"""How each format's rows reach the `pg` handler's `COPY`.

- CSV, and TSV (PostgreSQL's own text format: `\\N`, backslash escapes), go in as they are:
  the server parses them, nothing is decoded in Python. A header's names pick the columns
  (each must be one of the table's); without one, the columns are `--columns` or the table's.
  With `--format auto`, a first line whose every field names a column is taken as a header.
- JSON objects become COPY text rows by the standard library's parser (`tsv` handler rules).
- With `--bad-rows reject`, every format is cut into rows (`framed`), each kept with the
  bytes it came as: JSON Lines one object per line, CSV one record (which may span lines
  inside quotes), TSV one line, Parquet one row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from ingestd.contracts.errors import BadInput
from ingestd.handlers import parquet
from ingestd.handlers.content import Format, csv_records, head_of, header_fields, lines
from ingestd.handlers.pgreject import Row
from ingestd.handlers.pgtarget import Target, statement, text_options
from ingestd.handlers.tsv import decode_object, exact_json, field_text

_BATCH = 2000  # rows per COPY write from the standard library converter
Render = Callable[[Any], bytes]


def _json_field(value: Any) -> str:
    """A value for a json/jsonb column: JSON text whatever its type, COPY-escaped."""
    return "\\N" if value is None else field_text(exact_json(value))


def _text_row(target: Target) -> Callable[[dict[str, Any]], str]:
    """A JSON object as one COPY text row of the target's columns (no line ending), its
    fields the columns lack left out, refused, or rescued as the target says."""
    fields = [(c, _json_field if c in target.json_columns else field_text) for c in target.columns]
    if target.unknown == "ignore":

        def row(record: dict[str, Any]) -> str:
            return "\t".join([f(record.get(c)) for c, f in fields])

        return row
    known = frozenset(target.known)
    rescue = target.rescue

    def checked(record: dict[str, Any]) -> str:
        extra = {k: v for k, v in record.items() if k not in known}
        if extra and rescue is None:
            names = ", ".join(map(repr, extra))
            raise BadInput(f"fields the table has no column for: {names} (--on-new-columns fail)")
        return "\t".join(
            [_json_field(extra or None) if c == rescue else f(record.get(c)) for c, f in fields]
        )

    return checked


def json_text(target: Target, records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """COPY text rows of JSON objects, in batches."""
    row = _text_row(target)
    batch: list[str] = []
    for record in records:
        batch.append(row(record))
        if len(batch) >= _BATCH:
            yield ("\n".join(batch) + "\n").encode()
            batch = []
    if batch:
        yield ("\n".join(batch) + "\n").encode()


@dataclass(frozen=True)
class TextPlan:
    """How a CSV or TSV file's columns meet the table's."""

    target: Target  # narrowed to the columns the file fills
    header: bool  # its first line names them
    extra: tuple[str, ...] = ()  # header names the table lacks (ignored or rescued)
    names: tuple[str, ...] = ()  # the header's names, in order


def plan_text(target: Target, form: Format, head: bytes, sniffed: bool) -> TextPlan:
    """The plan for CSV or TSV content starting with `head`."""
    cut = csv_records if form.name == "csv" else lines
    first = next(cut(head.splitlines(keepends=True)), None)
    names = tuple(header_fields(first.raw, form)) if first is not None else ()
    known = {name for name, _ in target.catalog} - {target.rescue}
    header = form.header or (sniffed and bool(names) and all(n in known for n in names))
    if not header:  # the file fills the columns in order: none is left to rescue into
        return TextPlan(target.only(target.known) if target.rescue else target, False)
    if not names or len(set(names)) != len(names):
        raise BadInput(f"the header names {', '.join(map(repr, names))}: each column once")
    extra = tuple(n for n in names if n not in known)
    if extra and target.unknown not in ("ignore", "rescue"):
        raise BadInput(
            f"the header names {', '.join(map(repr, extra))}: {target.table} has no such "
            "column (--on-new-columns fail)"
        )
    filled = tuple(n for n in names if n in known)
    if target.rescue is not None:
        filled = (*filled, target.rescue)
    return TextPlan(target.only(filled), True, extra, names)


def straight(cursor: Any, target: Target, stream: IO[bytes], form: Format, sniffed: bool) -> int:
    """Stream CSV or TSV content into COPY as it is; the rows loaded. Columns the table
    lacks go through a temp table, where the server casts what it keeps."""
    plan = plan_text(target, form, head_of(stream), sniffed)
    if plan.extra or plan.target.rescue is not None:
        return _through_temp(cursor, plan, stream, form)
    with cursor.copy(statement(plan.target, options=text_options(form, plan.header))) as sink:
        _send(sink, stream)
    return max(int(cursor.rowcount), 0)


def _send(sink: Any, stream: IO[bytes]) -> None:
    while chunk := stream.read(1 << 20):
        sink.write(chunk)


def _through_temp(cursor: Any, plan: TextPlan, stream: IO[bytes], form: Format) -> int:
    """COPY every column of the file into a temp table as text, then INSERT the ones the
    table has, cast to their types (and the others as JSON, with a rescue column)."""
    from psycopg import sql

    temp = sql.Identifier("ingestd_text")
    slots = [sql.Identifier(f"c{i}") for i in range(len(plan.names))]
    cursor.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
        temp, sql.SQL(", ").join(sql.SQL("{} text").format(s) for s in slots)
    ))  # fmt: skip
    copy = sql.SQL("COPY {} ({}) FROM STDIN" + text_options(form, True)).format(
        temp, sql.SQL(", ").join(slots)
    )
    with cursor.copy(copy) as sink:
        _send(sink, stream)
    declared = dict(plan.target.declared)
    slot = dict(zip(plan.names, slots, strict=True))
    values: list[Any] = [
        sql.SQL("CAST({} AS {})").format(slot[c], sql.SQL(declared[c]))
        for c in plan.target.columns
        if c != plan.target.rescue
    ]
    if plan.target.rescue is not None:
        pairs = sql.SQL(", ").join(
            sql.SQL("{}, {}").format(sql.Literal(n), slot[n]) for n in plan.extra
        )
        values.append(
            sql.SQL("nullif(jsonb_strip_nulls(jsonb_build_object({})), '{{}}')").format(pairs)
            if plan.extra
            else sql.SQL("NULL")
        )
    cursor.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        sql.Identifier(*plan.target.parts),
        sql.SQL(", ").join(sql.Identifier(c) for c in plan.target.columns),
        sql.SQL(", ").join(values), temp,
    ))  # fmt: skip
    count = max(int(cursor.rowcount), 0)
    cursor.execute(sql.SQL("DROP TABLE {}").format(temp))
    return count


def framed(
    stream: IO[bytes], target: Target, form: Format, sniffed: bool
) -> tuple[Any, Iterator[Row], Render]:
    """(the COPY statement, the file's rows one by one, how a refused row's bytes are
    rendered when it has none of its own) for `--bad-rows reject`."""
    if form.name == "json":
        return statement(target), _json_rows(stream, target), _no_render
    if form.name == "parquet":
        columns = target.columns

        def render(values: Any) -> bytes:
            return (parquet.as_json(dict(zip(columns, values, strict=True))) or "").encode()

        rows = (
            Row(number, values)
            for number, values in enumerate(parquet_rows(stream, target), start=1)
        )
        return statement(target), rows, render
    plan = plan_text(target, form, head_of(stream), sniffed)
    if plan.extra or plan.target.rescue is not None:
        raise BadInput(
            "--bad-rows reject reads CSV and TSV straight into the table's columns: a header "
            "naming columns it lacks needs --on-new-columns add"
        )
    records = (csv_records if form.name == "csv" else lines)(stream)
    if plan.header:
        next(records, None)
    rows = (Row(r.line, r.raw + b"\n", r.raw, lines=1 + r.raw.count(b"\n")) for r in records)
    return statement(plan.target, options=text_options(form, False)), rows, _no_render


def parquet_rows(stream: IO[bytes], target: Target) -> Iterator[list[Any]]:
    return parquet.rows(stream, target.columns, target.json_columns, target.unknown, target.rescue)


def _no_render(payload: Any) -> bytes:
    return bytes(payload) if isinstance(payload, bytes) else b""


def _json_rows(stream: IO[bytes], target: Target) -> Iterator[Row]:
    row = _text_row(target)
    for record in lines(stream):
        try:
            payload = (row(decode_object(record.raw.decode("utf-8"))) + "\n").encode("utf-8")
        except UnicodeDecodeError as exc:
            yield Row(record.line, None, record.raw, f"not UTF-8 at byte {exc.start}")
        except UnicodeEncodeError:
            yield Row(record.line, None, record.raw, "a string holds a lone surrogate")
        except (BadInput, RecursionError) as exc:
            yield Row(record.line, None, record.raw, str(exc) or type(exc).__name__)
        else:
            yield Row(record.line, payload, record.raw)
