"""--format with --handler pg against a real PostgreSQL server: CSV and TSV straight into COPY,
Parquet exact, auto telling each file by its bytes, every compression, and the hostile values
of each format arriving exactly."""

from __future__ import annotations

import bz2
import datetime
import decimal
import gzip
import json
import lzma
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from conftest import manifest_records

NAMES = [f"2018_06_28_00_{m:02d}.txt" for m in range(0, 60, 5)]
COMPRESS = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "bz2": bz2.compress,
    "xz": lzma.compress,
}

# CSV that breaks naive readers: quotes, doubled quotes, a delimiter and line breaks (LF and
# CRLF) inside quotes, a quoted empty string (text) beside an unquoted empty field (NULL), a
# backslash and \N (CSV has no escapes: both are text), non-ASCII text.
HOSTILE_CSV = (
    'id,name,note\r\n'
    '1,"a ""quoted"" word","x,y"\r\n'
    '2,"two\r\nlines\nhere",""\r\n'
    '3,,\\N\r\n'
    '4,ünïcødé ✓ 😀,"back\\slash\ttab"\r\n'
)  # fmt: skip
HOSTILE_ROWS = [
    [1, 'a "quoted" word', "x,y"],
    [2, "two\r\nlines\nhere", ""],
    [3, None, "\\N"],
    [4, "ünïcødé ✓ 😀", "back\\slash\ttab"],
]


def spawn_pg(spawn, data: Path, pg: Any, *args: str, **kw: Any):  # type: ignore[no-untyped-def]
    return spawn(data, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t",
                 "--exit-when-idle", "0.5", *args, **kw)  # fmt: skip


def table(pg: Any, columns: str = "id, name, note", order: str = "id") -> list[list[Any]]:
    out = pg.psql(f"SELECT coalesce(json_agg(json_build_array({columns}) ORDER BY {order}), "
                  "'[]') FROM t")  # fmt: skip
    return list(json.loads(out))


def statuses(data: Path) -> dict[str, str]:
    return {r["file"]: r["status"] for r in manifest_records(data)}


@pytest.mark.parametrize("kind", list(COMPRESS))
def test_hostile_csv_goes_straight_into_copy_exactly_under_every_compression(
    data: Path, spawn, pg: Any, kind: str
) -> None:
    pg.psql("CREATE TABLE t (id bigint, name text, note text)")
    # A byte order mark too: an editor's, never part of the first column's name.
    (data / NAMES[0]).write_bytes(COMPRESS[kind](b"\xef\xbb\xbf" + HOSTILE_CSV.encode()))
    w = spawn_pg(spawn, data, pg, "--format", "csv", "--csv-header")
    assert w.wait() == 0
    assert statuses(data) == {NAMES[0]: "done"}, w.text
    assert table(pg) == HOSTILE_ROWS
    (record,) = manifest_records(data)
    assert record["records"] == 4
    assert not w.events("pg_standard_converter")


def test_csv_options_delimiter_null_and_a_header_choosing_columns(
    data: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint, name text, note text DEFAULT 'default')")
    # The header names two columns in its own order; `note` keeps its default.
    (data / NAMES[0]).write_text('name;id\nalpha;1\nNULL;2\n"NULL";3\n')
    w = spawn_pg(spawn, data, pg, "--format", "csv", "--csv-header", "--csv-delimiter", ";",
                 "--csv-null", "NULL")  # fmt: skip
    assert w.wait() == 0
    # A quoted NULL is the text, as PostgreSQL's CSV reads it.
    assert table(pg) == [[1, "alpha", "default"], [2, None, "default"], [3, "NULL", "default"]]


def test_a_header_naming_a_column_twice_fails_the_file_with_nothing_loaded(
    data: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint, name text, note text)")
    (data / NAMES[0]).write_text("id,nickname\n1,x\n")  # not a column: left out (ignore)
    (data / NAMES[1]).write_text("id,name,id\n2,y,3\n")
    w = spawn_pg(spawn, data, pg, "--format", "csv", "--csv-header")
    assert w.wait() == 0
    records = {r["file"]: r for r in manifest_records(data)}
    assert records[NAMES[0]]["status"] == "done"
    assert records[NAMES[1]]["status"] == "failed"
    assert "each column once" in records[NAMES[1]]["error"]
    assert table(pg) == [[1, None, None]]


def test_a_bad_csv_row_fails_the_file_with_its_line_by_default(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint, name text, note text)")
    (data / NAMES[0]).write_text("1,a,b\n2,c,d\nthree,e,f\n")
    w = spawn_pg(spawn, data, pg, "--format", "csv")
    assert w.wait() == 0
    (record,) = manifest_records(data)
    assert record["status"] == "failed" and "line 3" in record["error"], record
    assert pg.psql("SELECT count(*) FROM t").strip() == "0"


def test_tsv_is_postgresql_text_format_as_the_tsv_handler_writes_it(
    data: Path, tmp_path: Path, spawn, pg: Any
) -> None:
    """The tsv handler's output loads with --format tsv into the same rows the JSON makes."""
    objects = [
        {"id": 1, "name": "tab\there", "note": "back\\slash \\N"},
        {"id": 2, "name": None, "note": "new\nline"},
        {"id": 3, "name": "ünïcødé", "note": ""},
    ]
    source = tmp_path / "json"
    source.mkdir()
    (source / NAMES[0]).write_text("".join(json.dumps(o) + "\n" for o in objects))
    out = tmp_path / "tsv"
    w = spawn(source, "--handler", "tsv", "--output-dir", str(out), "--columns", "id,name,note",
              "--tsv-header", "--exit-when-idle", "0.5")  # fmt: skip
    assert w.wait() == 0
    tsv = (out / NAMES[0].replace(".txt", ".tsv")).read_bytes()
    (data / NAMES[1]).write_bytes(tsv)
    pg.psql("CREATE TABLE t (id bigint, name text, note text)")
    w = spawn_pg(spawn, data, pg, "--format", "tsv", "--csv-header")
    assert w.wait() == 0
    assert statuses(data) == {NAMES[1]: "done"}, w.text
    assert table(pg) == [[o["id"], o["name"], o["note"]] for o in objects]


def _parquet(path: Path, table: pa.Table) -> bytes:
    pq.write_table(table, path)
    return path.read_bytes()


def test_parquet_values_arrive_exactly(data: Path, tmp_path: Path, spawn, pg: Any) -> None:
    utc = datetime.UTC
    dec = pa.decimal128(38, 10)
    content = pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "big": pa.array([2**63 - 1, -(2**63), None], pa.int64()),
        "amount": pa.array([decimal.Decimal("1234567890123456789012345678.0123456789"),
                            decimal.Decimal("-0.0000000001"), None], dec),
        "ratio": pa.array([0.1, -0.0, 1e-300], pa.float64()),
        "at": pa.array([datetime.datetime(2018, 6, 28, 0, 15, 0, 123456, tzinfo=utc), None,
                        datetime.datetime(1970, 1, 1, tzinfo=utc)], pa.timestamp("us", "UTC")),
        "day": pa.array([datetime.date(2018, 6, 28), None, datetime.date(1, 1, 1)]),
        "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
        "doc": pa.array([{"n": 1, "s": "x"}, None, {"n": None, "s": "\u2028"}],
                        pa.struct([("n", pa.int64()), ("s", pa.string())])),
        "name": pa.array(["tab\there", None, "ünïcødé"]),
        "extra": pa.array(["not", "in", "table"]),  # a column the table lacks: left out
    })  # fmt: skip
    (data / NAMES[0]).write_bytes(_parquet(tmp_path / "x.parquet", content))
    pg.psql("CREATE TABLE t (id bigint, big bigint, amount numeric, ratio double precision, "
            "at timestamptz, day date, tags jsonb, doc jsonb, name text, absent text)")  # fmt: skip
    w = spawn_pg(spawn, data, pg, "--format", "parquet")
    assert w.wait() == 0
    assert statuses(data) == {NAMES[0]: "done"}, w.text
    got = table(pg, "id, big::text, amount::text, ratio, to_char(at AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD HH24:MI:SS.US'), day::text, tags, doc, name, absent")  # fmt: skip
    assert got == [
        [1, "9223372036854775807", "1234567890123456789012345678.0123456789", 0.1,
         "2018-06-28 00:15:00.123456", "2018-06-28", ["a", "b"], {"n": 1, "s": "x"},
         "tab\there", None],
        [2, "-9223372036854775808", "-0.0000000001", 0, None, None, [], None, None, None],
        [3, None, None, 1e-300, "1970-01-01 00:00:00.000000", "0001-01-01", None,
         {"n": None, "s": "\u2028"}, "ünïcødé", None],
    ]  # fmt: skip


def test_parquet_nanoseconds_postgresql_cannot_hold_fail_the_file(
    data: Path, tmp_path: Path, spawn, pg: Any
) -> None:
    content = pa.table({"at": pa.array([1_000_000_001], pa.timestamp("ns", "UTC"))})
    (data / NAMES[0]).write_bytes(_parquet(tmp_path / "x.parquet", content))
    pg.psql("CREATE TABLE t (at timestamptz)")
    w = spawn_pg(spawn, data, pg, "--format", "parquet")
    assert w.wait() == 0
    (record,) = manifest_records(data)
    assert record["status"] == "failed" and "nanoseconds" in record["error"]


def test_auto_tells_json_csv_and_parquet_apart_whatever_the_compression(
    data: Path, tmp_path: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint, name text, note text)")
    parquet = _parquet(tmp_path / "x.parquet", pa.table({"id": [5], "name": ["pq"]}))
    files = {
        NAMES[0]: b'{"id": 1, "name": "json", "note": "0.10"}\n',
        NAMES[1]: zstandard.ZstdCompressor().compress(b'{"id": 2, "name": "json.zst"}\n'),
        # A header is told by every field naming a column; semicolons by sniffing.
        NAMES[2]: gzip.compress(b"name;id\ncsv.gz;3\n"),
        NAMES[3]: b"4,csv,no header\n",
        NAMES[4]: parquet,
        NAMES[5]: lzma.compress(parquet),
    }
    for name, body in files.items():
        (data / name).write_bytes(body)
    w = spawn_pg(spawn, data, pg, "--format", "auto")
    assert w.wait() == 0
    assert set(statuses(data).values()) == {"done"}, w.text
    assert table(pg, order="id, name") == [
        [1, "json", "0.10"], [2, "json.zst", None], [3, "csv.gz", None],
        [4, "csv", "no header"], [5, "pq", None], [5, "pq", None],
    ]  # fmt: skip


def test_format_options_are_checked_at_start_up(data: Path, spawn, pg: Any) -> None:
    for args, words in (
        (("--format", "xml"), "invalid choice"),
        (("--csv-delimiter", "ab"), "one character"),
        (("--bad-rows", "skip"), "reject:N"),
        (("--pg-converter", "duckdb", "--format", "csv"), "goes with --format json"),
        (("--pg-converter", "duckdb", "--bad-rows", "reject"), "--bad-rows fail and"),
    ):
        w = spawn_pg(spawn, data, pg, *args)
        assert w.wait() == 2
        assert words in w.text and "Traceback" not in w.text
    # The other built-in handlers read no formats: the options are a mistake there.
    w = spawn(data, "--handler", "tsv", "--output-dir", str(data / "out"), "--format", "csv",
              "--bad-rows", "reject")  # fmt: skip
    assert w.wait() == 2
    assert "--format, --bad-rows: for --handler pg, not --handler tsv" in w.text


def test_a_nul_in_csv_fails_the_file_or_under_reject_only_its_row(
    data: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint, name text, note text)")
    body = b"1,a,x\n2,b\x00c,y\n3,c,z\n"
    (data / NAMES[0]).write_bytes(body)
    w = spawn_pg(spawn, data, pg, "--format", "csv")
    assert w.wait() == 0
    assert statuses(data) == {NAMES[0]: "failed"}
    assert table(pg) == []
    (data / NAMES[1]).write_bytes(body)
    w = spawn_pg(spawn, data, pg, "--format", "csv", "--bad-rows", "reject")
    assert w.wait() == 0
    assert statuses(data)[NAMES[1]] == "done"
    assert table(pg) == [[1, "a", "x"], [3, "c", "z"]]
    assert pg.psql("SELECT line || ' ' || encode(raw, 'hex') FROM ingestd.rejects").strip() == (
        "2 " + b"2,b\x00c,y".hex()
    )
