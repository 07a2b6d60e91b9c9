"""The pg handler's fast exact path: typed rows decoded by msgspec, and the files it must hand back
to the standard converter."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from ingestd.handlers.pgrows import NotPlain, RowDecoder, decoder_for

msgspec = pytest.importorskip("msgspec")

COLUMNS = ("id", "num", "dbl", "flag", "doc", "txt", "at")

KINDS = ("int8", "numeric", "float8", "bool", "jsonb", "text", "timestamptz")


def rows(data: bytes, columns: tuple[str, ...] = COLUMNS, kinds: tuple[str, ...] = KINDS) -> list:
    return list(RowDecoder(msgspec, columns, kinds).rows(io.BytesIO(data)))


def test_each_type_holds_the_value_exactly() -> None:
    line = (
        b'{"id": 123456789012345678901234567890, "num": 0.1000000000000000055511151231257827,'
        b' "dbl": -0.0, "flag": true, "doc": {"a" : [1, 2.50]}, "txt": "\\\\N\\t\\u2028",'
        b' "at": "2018-06-28T00:15:00Z", "extra": [1]}\n'
    )
    ((id_, num, dbl, flag, doc, txt, at),) = rows(line)
    assert id_ == 123456789012345678901234567890
    assert num == Decimal("0.1000000000000000055511151231257827") and str(num).endswith("27")
    assert str(dbl) == "-0.0" and flag is True
    assert doc == '{"a" : [1, 2.50]}'  # the JSON as written: 2.50 is not respelled
    assert txt == "\\N\t\u2028" and at == "2018-06-28T00:15:00Z"


def test_null_and_missing_are_none_and_a_json_string_stays_json() -> None:
    data = b'{"doc": null, "txt": null}\n\n{"doc": "just a string", "num": 1e-7}\r\n{}'
    got = rows(data)
    assert got[0] == [None] * 7
    assert got[1][1] == Decimal("1e-7") and got[1][4] == '"just a string"'
    assert got[2] == [None] * 7


def test_a_byte_order_mark_and_lines_across_chunks() -> None:
    lines = b"".join(b'{"id": %d, "txt": "%s"}\n' % (i, b"x" * 500) for i in range(5000))
    got = rows(b"\xef\xbb\xbf" + lines)  # > 2 MB: lines cross the 1 MiB read boundary
    assert [r[0] for r in got] == list(range(5000))


@pytest.mark.parametrize(
    "data",
    [
        b'{"txt": 1.50}\n',  # a number in a text column: its text as written must be kept
        b'{"id": 1.0}\n',  # not an integer: PostgreSQL must say so, with the line
        b'{"flag": "yes"}\n',  # PostgreSQL's boolean input takes it; this path does not
        b"[1, 2]\n",
        b'{"txt": "\\ud800"}\n',  # a lone surrogate
        b'{"txt": "\xff"}\n',  # not UTF-8
        b'{"id": 1',  # truncated
    ],
)
def test_anything_not_plain_goes_back_to_the_standard_converter(data: bytes) -> None:
    with pytest.raises(NotPlain):
        rows(data)


def test_objects_over_several_lines_or_several_on_one_line() -> None:
    data = b'{"id": 1,\n "txt": "pretty"}\n{"id": 2} {"id": 3}\n'
    assert [r[0] for r in rows(data)] == [1, 2, 3]


def test_decoders_are_made_once_per_target() -> None:
    assert decoder_for(COLUMNS, KINDS) is decoder_for(COLUMNS, KINDS)
