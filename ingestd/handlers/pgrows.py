"""The `pg` handler's fast exact path: JSON Lines decoded by msgspec straight into typed rows.

Each target column gets the Python type that holds its values exactly, decoded in C by
msgspec: `int` for integer columns (any size), `Decimal` for `numeric` (the number as written:
`0.10` stays `0.10`), the number's text as written for `real`/`double precision` (PostgreSQL
rounds it once, itself: `-0`, `1e-400` and a `real` fare exactly as on the standard path),
`bool`, the raw JSON text for `json`/`jsonb` (the value as written, a string stays a
JSON string), and `str` for every other type (`text`, `timestamptz`, `uuid`, ...: PostgreSQL
parses the string, as it would from the standard converter). psycopg then writes the rows into
`COPY` in C. Measured at about 5x the standard library converter (bench/README.md).

Only plain cases take this path: each value of the JSON type its column expects (a string
for a text column, a number for a numeric one). The input is read in chunks cut after a
newline, so objects may sit one per line or several per line, and an object spread over
lines is fine unless a chunk's cut falls inside it. Anything else (a number in a text column,
whose text as written must be kept; an object cut by a chunk; malformed JSON) raises
`NotPlain`, and the caller loads the file again through the standard library converter, which
handles every case and says where bad input broke. Requires the `msgspec`
package (in the `postgres` extra); without it, `decoder_for` returns None.
"""

from __future__ import annotations

import decimal
import threading
from collections.abc import Iterator
from typing import IO, Any

from ingestd.handlers.content import line_blocks

INTEGERS = frozenset({"int2", "int4", "int8"})
FLOATS = frozenset({"float4", "float8"})
JSON_TYPES = frozenset({"json", "jsonb"})


class NotPlain(Exception):
    """This file needs the standard library converter (see the module docstring)."""


class RowDecoder:
    """Rows (lists of column values) from a stream of JSON Lines, for one target's columns."""

    def __init__(
        self, msgspec: Any, columns: tuple[str, ...], kinds: tuple[str, ...], strict: bool = False
    ) -> None:
        fields = []
        for i, kind in enumerate(kinds):
            python: Any
            if kind in INTEGERS:
                python = int
            elif kind == "numeric":
                python = decimal.Decimal
            elif kind in FLOATS:
                python = msgspec.Raw  # the number's text, checked and sent as written
            elif kind == "bool":
                python = bool
            elif kind in JSON_TYPES:
                python = msgspec.Raw  # missing: None; JSON null: Raw(b"null"), made NULL below
            else:
                python = str
            fields.append((f"c{i}", python if python is msgspec.Raw else python | None, None))
        # strict: a field the columns lack fails decoding (NotPlain), and the standard
        # converter, which names it, fails the file (--on-new-columns fail).
        row = msgspec.defstruct(
            "Row",
            fields,
            rename={f"c{i}": name for i, name in enumerate(columns)},
            forbid_unknown_fields=strict,
        )
        self._decoder = msgspec.json.Decoder(row)
        self._astuple = msgspec.structs.astuple
        self._json = [i for i, kind in enumerate(kinds) if kind in JSON_TYPES]
        self._floats = [i for i, kind in enumerate(kinds) if kind in FLOATS]
        self._errors = (msgspec.DecodeError, UnicodeError)

    def rows(self, stream: IO[bytes]) -> Iterator[list[Any]]:
        """Every object's row, in order; `NotPlain` when this path cannot take the file."""
        for data in line_blocks(stream):
            try:
                decoded = self._decoder.decode_lines(data)
            except self._errors as exc:
                raise NotPlain(str(exc)) from None
            for record in decoded:
                values = list(self._astuple(record))
                for i in self._json:
                    raw = values[i]
                    if raw is not None:
                        text = bytes(raw).decode()
                        values[i] = None if text == "null" else text
                for i in self._floats:
                    raw = values[i]
                    if raw is not None:
                        values[i] = _number_text(bytes(raw))
                yield values


def _number_text(raw: bytes) -> str | None:
    """A float column's JSON value as the text PostgreSQL parses; NotPlain unless a number."""
    if raw == b"null":
        return None
    if raw[:1] not in _NUMBER_START:
        raise NotPlain("a non-number in a float column")
    return raw.decode()


_NUMBER_START = frozenset(bytes([c]) for c in b"-0123456789")
_cache: dict[tuple[tuple[str, ...], tuple[str, ...], bool], RowDecoder | None] = {}
_cache_mutex = threading.Lock()


def decoder_for(
    columns: tuple[str, ...], kinds: tuple[str, ...], strict: bool = False
) -> RowDecoder | None:
    """The decoder for these columns and types; None without msgspec."""
    key = (columns, kinds, strict)
    with _cache_mutex:
        if key not in _cache:
            try:
                import msgspec
            except ImportError:
                _cache[key] = None
            else:
                try:
                    _cache[key] = RowDecoder(msgspec, columns, kinds, strict)
                except ValueError:
                    # msgspec refuses some names PostgreSQL takes (a `\` or `"` in a column
                    # name): the standard converter takes those.
                    _cache[key] = None
        return _cache[key]
