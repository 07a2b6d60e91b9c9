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
    """A JSON object as one COPY text row of the target's columns (no line ending)."""
    fields = [(c, _json_field if c in target.json_columns else field_text) for c in target.columns]

    def row(record: dict[str, Any]) -> str:
        return "\t".join([f(record.get(c)) for c, f in fields])

    return row


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


def plan_text(target: Target, form: Format, head: bytes, sniffed: bool) -> tuple[Target, bool]:
    """(the target narrowed to the columns the file fills, whether its first line is a
    header) for CSV or TSV content starting with `head`."""
    cut = csv_records if form.name == "csv" else lines
    first = next(cut(head.splitlines(keepends=True)), None)
    names = header_fields(first.raw, form) if first is not None else []
    known = {name for name, _ in target.catalog}
    header = form.header or (sniffed and bool(names) and all(n in known for n in names))
    if not header:
        return target, False
    unknown = [n for n in names if n not in known]
    if unknown or len(set(names)) != len(names) or not names:
        raise BadInput(
            f"the header names {', '.join(map(repr, unknown or names))}: each must be a "
            f"distinct column of {target.table}"
        )
    return target.only(tuple(names)), True


def straight(cursor: Any, target: Target, stream: IO[bytes], form: Format, sniffed: bool) -> int:
    """Stream CSV or TSV content into COPY as it is; the rows loaded."""
    into, header = plan_text(target, form, head_of(stream), sniffed)
    with cursor.copy(statement(into, options=text_options(form, header))) as sink:
        while chunk := stream.read(1 << 20):
            sink.write(chunk)
    return max(int(cursor.rowcount), 0)


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
            for number, values in enumerate(
                parquet.rows(stream, target.columns, target.json_columns), start=1
            )
        )
        return statement(target), rows, render
    into, header = plan_text(target, form, head_of(stream), sniffed)
    records = (csv_records if form.name == "csv" else lines)(stream)
    if header:
        next(records, None)
    rows = (Row(r.line, r.raw + b"\n", r.raw, lines=1 + r.raw.count(b"\n")) for r in records)
    return statement(into, options=text_options(form, False)), rows, _no_render


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
