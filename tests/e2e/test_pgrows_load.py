"""The pg handler's fast exact path against a real PostgreSQL table: the same files loaded both
ways hold the same values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingestd.handlers.pgrows import decoder_for

msgspec = pytest.importorskip("msgspec")

COLUMNS = ("id", "num", "dbl", "flag", "doc", "txt", "at")

KINDS = ("int8", "numeric", "float8", "bool", "jsonb", "text", "timestamptz")

HOSTILE = [
    {"id": 1, "num": 0.5, "dbl": 1e-7, "flag": False, "doc": [[{"deep": None}]],
     "txt": "tab\there\nnew\rline \\ \\N \u2028 \U0001f600", "at": "2018-06-28T00:15:00Z"},
    {"id": -9223372036854775808, "doc": "just a string", "txt": "", "at": None},
    {"id": 3, "num": -0.0, "dbl": 1.5, "doc": 12.5},
]  # fmt: skip


def test_both_paths_load_the_same_rows(pg: Any, tmp_path: Path) -> None:
    """The same objects through the fast path and the standard converter: equal tables."""
    import psycopg

    from ingestd.handlers.content import open_content
    from ingestd.handlers.pg import Target, _copy

    raw = (
        '{"id": 1, "num": 0.1000000000000000055511151231257827, "dbl": -0.0, "flag": true,'
        ' "doc": {"a": [1, 2.50]}, "txt": "\\\\N", "at": "2018-06-28T00:15:00Z"}\n'
    )
    path = tmp_path / "in.jsonl"
    path.write_text(raw + "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in HOSTILE))
    ddl = ("id bigint, num numeric, dbl double precision, flag boolean, doc jsonb, txt text, "
           "at timestamptz")  # fmt: skip
    pg.psql(f"CREATE TABLE fast ({ddl})", f"CREATE TABLE standard ({ddl})")
    with psycopg.connect(pg.url) as connection, connection.cursor() as cursor:
        decoder = decoder_for(COLUMNS, KINDS)
        assert decoder is not None
        with open(path, "rb") as stream, cursor.copy("COPY fast FROM STDIN") as sink:
            for row in decoder.rows(stream):
                sink.write_row(row)
        standard = Target("standard", ("public", "standard"), COLUMNS, frozenset({"doc"}), KINDS)
        with open_content(path) as (stream, _):
            assert _copy(cursor, standard, stream, "exact") == 4
    query = "SELECT json_agg(t ORDER BY id)::text FROM {} t"
    got_fast, got_standard = pg.psql(query.format("fast")), pg.psql(query.format("standard"))
    assert got_fast == got_standard
    first = json.loads(got_fast, parse_float=str)
    assert [r["id"] for r in first] == [-9223372036854775808, 1, 1, 3]
    one = next(r for r in first if r["id"] == 1 and r["num"] is not None and r["flag"])
    assert one["num"] == "0.1000000000000000055511151231257827"  # exact, not a double
