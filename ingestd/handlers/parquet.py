"""Parquet files as rows for the `pg` handler, read by Apache Arrow (`pyarrow`, the `parquet`
extra).

Each target column takes the Parquet column of the same name (missing: NULL; columns the
table lacks are left out). Values stay exact: integers of any width as `int`, decimals as
`Decimal`, timestamps as `datetime` (aware when the file says its time zone; a value with
nanoseconds, which PostgreSQL cannot hold, is bad input), dates and times as such, binary as
`bytes`. Lists, structs and maps become JSON text, with decimals written as their exact
digits, times in ISO 8601, binary in base64 (a NaN inside is bad input: JSON has none); a
`json`/`jsonb` column gets any value as JSON. Parquet needs
to seek, so a stream is spooled to a temp file first (in memory up to 64 MiB).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from ingestd.contracts.errors import BadInput
from ingestd.handlers.tsv import JsonNumber, exact_json

_SPOOL = 64 << 20
BATCH_ROWS = 8192


def _arrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise BadInput(
            "Parquet content needs pyarrow: pip install 'ingestd[parquet]' "
            "(then ingestd retry the file)"
        ) from None
    return pyarrow


def _plain(value: Any) -> Any:
    """A nested value with only JSON's types: exact numbers, times as text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return JsonNumber(str(value))
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or infinity: bad input, as in a JSON file.
        raise BadInput(f"a nested Parquet value holds {value}, which JSON cannot")
    return value


def as_json(value: Any) -> str | None:
    return None if value is None else exact_json(_plain(value))


def _converter(arrow_type: Any, to_json: bool) -> Callable[[Any], Any] | None:
    """How one column's Python values become what COPY takes; None: as they are."""
    types = _arrow().types
    nested = (
        types.is_list(arrow_type)
        or types.is_large_list(arrow_type)
        or types.is_struct(arrow_type)
        or types.is_map(arrow_type)
        or types.is_fixed_size_list(arrow_type)
    )
    if to_json or nested:
        return as_json
    return None


@contextlib.contextmanager
def _opened(stream: IO[bytes]) -> Iterator[Any]:
    """The Parquet file in `stream`, spooled to be seekable."""
    pa = _arrow()
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as spool:
        shutil.copyfileobj(stream, spool, 1 << 20)
        spool.seek(0)
        try:
            yield pa.parquet.ParquetFile(spool)
        except (pa.ArrowException, OSError) as exc:
            raise BadInput(f"not a readable Parquet file: {exc}") from None


def schema_of(stream: IO[bytes]) -> Any:
    """The Arrow schema of the Parquet file in `stream`."""
    with _opened(stream) as parquet:
        return parquet.schema_arrow


def rows(
    stream: IO[bytes],
    columns: tuple[str, ...],
    json_columns: frozenset[str],
    unknown: str = "ignore",
    rescue: str | None = None,
) -> Iterator[list[Any]]:
    """Every row of the Parquet file in `stream`, as values for `columns`. Columns of the
    file that are not among them are left out (`unknown` ignore), fail it (fail), or go into
    the `rescue` column as one JSON object per row (rescue)."""
    pa = _arrow()
    with _opened(stream) as parquet:
        schema = parquet.schema_arrow
        present = [c for c in columns if c != rescue and schema.get_field_index(c) >= 0]
        extra = [n for n in schema.names if n not in columns or n == rescue]
        if extra and unknown == "fail":
            raise BadInput(
                f"columns the table lacks: {', '.join(map(repr, extra))} (--on-new-columns fail)"
            )
        rescued = extra if unknown == "rescue" else []
        converters = {c: _converter(schema.field(c).type, c in json_columns) for c in present}
        try:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=present + rescued):
                count = batch.num_rows
                values: list[list[Any]] = []
                for column in columns:
                    if column == rescue:
                        values.append(_rescued(pa, batch, rescued, count))
                    elif column in converters:
                        items = _microseconds(pa, batch.column(column)).to_pylist()
                        convert = converters[column]
                        values.append(items if convert is None else [convert(v) for v in items])
                    else:
                        values.append([None] * count)
                for row in zip(*values, strict=True):
                    yield list(row)
        except pa.ArrowException as exc:
            raise BadInput(f"Parquet: {exc}") from None


def _rescued(pa: Any, batch: Any, names: list[str], count: int) -> list[str | None]:
    """Per row, the JSON object of the named columns' values that are not null."""
    columns = [(n, _microseconds(pa, batch.column(n)).to_pylist()) for n in names]
    out: list[str | None] = []
    for i in range(count):
        found = {n: values[i] for n, values in columns if values[i] is not None}
        out.append(as_json(found) if found else None)
    return out


def _microseconds(pa: Any, array: Any) -> Any:
    """Nanosecond timestamps as microseconds, refused if that would lose a digit."""
    kind = array.type
    if pa.types.is_timestamp(kind) and kind.unit == "ns":
        try:
            return array.cast(pa.timestamp("us", kind.tz), safe=True)
        except pa.ArrowInvalid:
            raise BadInput(
                "a Parquet timestamp has nanoseconds, which PostgreSQL cannot hold"
            ) from None
    return array
