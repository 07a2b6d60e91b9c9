"""--on-new-columns and --pg-create-table against a real PostgreSQL server: fields the table
lacks left out, refused, rescued as JSON, or added as typed columns once for the fleet."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import copy_held, hold_copy, manifest_records, wait_for

NAMES = [f"2018_06_28_{h:02d}_{m:02d}.txt" for h in range(3) for m in (0, 15, 30, 45)]


def spawn_pg(spawn, data: Path, pg: Any, *args: str, **kw: Any):  # type: ignore[no-untyped-def]
    return spawn(data, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t",
                 "--exit-when-idle", "0.5", *args, **kw)  # fmt: skip


def rows(pg: Any, columns: str = "*", order: str = "id") -> list[dict[str, Any]]:
    out = pg.psql(f"SELECT coalesce(json_agg(r ORDER BY {order}), '[]') FROM "
                  f"(SELECT {columns} FROM t) r")  # fmt: skip
    return list(json.loads(out))


def columns(pg: Any) -> dict[str, str]:
    out = pg.psql("SELECT json_object_agg(attname, format_type(atttypid, atttypmod)) FROM "
                  "pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0")  # fmt: skip
    return dict(json.loads(out))


def statuses(data: Path) -> dict[str, tuple[str, str | None]]:
    return {r["file"]: (r["status"], r.get("error")) for r in manifest_records(data)}


FIELDS = '{"id": 1, "extra": 0.10, "more": {"a": [1]}}\n{"id": 2}\n'


def test_ignore_leaves_fields_out_as_before(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    (data / NAMES[0]).write_text(FIELDS)
    assert spawn_pg(spawn, data, pg).wait() == 0
    assert rows(pg) == [{"id": 1}, {"id": 2}]


@pytest.mark.parametrize("path", ["fast", "standard"])
def test_fail_refuses_a_file_with_fields_the_table_lacks(
    data: Path, spawn, pg: Any, path: str
) -> None:
    # A number in a text column sends the file down the standard converter from the start.
    pg.psql("CREATE TABLE t (id bigint, note text)")
    note = '"n"' if path == "fast" else "7"
    (data / NAMES[0]).write_text(f'{{"id": 1, "note": {note}}}\n{{"id": 2, "new": true}}\n')
    assert spawn_pg(spawn, data, pg, "--on-new-columns", "fail").wait() == 0
    status, error = statuses(data)[NAMES[0]]
    assert status == "failed" and "'new'" in (error or "") and "--on-new-columns fail" in error
    assert rows(pg) == []


def test_rescue_keeps_the_other_fields_as_json_exactly(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint, _rescued_data jsonb)")
    (data / NAMES[0]).write_text(FIELDS + '{"id": 3, "_rescued_data": "mine", "x": null}\n')
    assert spawn_pg(spawn, data, pg, "--on-new-columns", "rescue").wait() == 0
    got = pg.psql("SELECT string_agg(id || ' ' || coalesce(_rescued_data::text, 'NULL'), ';' "
                  "ORDER BY id) FROM t").strip()  # fmt: skip
    # Numbers as written (0.10), nested values whole, a null field kept, none: NULL; a field
    # named like the rescue column is rescued too, never taken for it.
    assert got == ('1 {"more": {"a": [1]}, "extra": 0.10};2 NULL;'
                   '3 {"x": null, "_rescued_data": "mine"}')  # fmt: skip


def test_rescue_for_parquet_and_under_bad_rows_reject(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint, rest jsonb)")
    out = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2], "tag": ["a", None], "n": [5, 6]}), out)
    (data / NAMES[0]).write_bytes(out.getvalue())
    (data / NAMES[1]).write_text('{"id": 3, "k": 1}\n{"id": "bad", "k": 2}\n')
    w = spawn_pg(spawn, data, pg, "--format", "auto", "--on-new-columns", "rescue",
                 "--rescue-column", "rest", "--bad-rows", "reject")  # fmt: skip
    assert w.wait() == 0
    got = pg.psql("SELECT string_agg(id || ' ' || rest::text, ';' ORDER BY id) FROM t").strip()
    assert got == '1 {"n": 5, "tag": "a"};2 {"n": 6};3 {"k": 1}'
    assert pg.psql("SELECT line FROM ingestd.rejects").strip() == "2"


def test_add_types_new_columns_from_their_values(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    (data / NAMES[0]).write_text(
        '{"id": 1, "n": 5, "big": 99999999999999999999, "f": 0.10, "b": true, "s": "x",'
        ' "at": "2018-06-28T00:15:00+02:00", "doc": {"a": 1}, "mix": 1, "num": 1, "nil": null}\n'
        '{"id": 2, "n": -5, "f": 1e3, "b": false, "s": "2018-06-28", "at": "2018-06-28T01:00Z",'
        ' "doc": [1], "mix": "one", "num": 2.5}\n'
    )
    w = spawn_pg(spawn, data, pg, "--on-new-columns", "add")
    assert w.wait() == 0, w.text
    assert columns(pg) == {
        "id": "bigint", "n": "bigint", "big": "numeric", "f": "numeric", "b": "boolean",
        "s": "text", "at": "timestamp with time zone", "doc": "jsonb", "mix": "jsonb",
        "num": "numeric", "nil": "text",
    }  # fmt: skip
    got = rows(pg, "id, big::text, f::text, at = '2018-06-28 00:15+02' AS at_ok, doc, mix, num")
    assert got == [
        {"id": 1, "big": "99999999999999999999", "f": "0.10", "at_ok": True, "doc": {"a": 1},
         "mix": 1, "num": 1},
        {"id": 2, "big": None, "f": "1000", "at_ok": False, "doc": [1],
         "mix": "one", "num": 2.5},
    ]  # fmt: skip
    (event,) = w.events("columns_added")
    assert event["columns"] == ["n", "big", "f", "b", "s", "at", "doc", "mix", "num", "nil"]


def test_add_from_a_csv_header_and_a_parquet_schema(
    data: Path, tmp_path: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    (data / NAMES[0]).write_text("id,city\n1,Paris\n")
    out = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([2], pa.int64()),
                             "score": pa.array([1.5], pa.float64()),
                             "day": pa.array([None], pa.date32())}), out)  # fmt: skip
    (data / NAMES[1]).write_bytes(out.getvalue())
    w = spawn_pg(spawn, data, pg, "--format", "auto", "--on-new-columns", "add")
    assert w.wait() == 0, w.text
    assert columns(pg) == {"id": "bigint", "city": "text", "score": "double precision",
                           "day": "date"}  # fmt: skip
    assert rows(pg, "id, city, score") == [
        {"id": 1, "city": "Paris", "score": None},
        {"id": 2, "city": None, "score": 1.5},
    ]


@pytest.mark.parametrize("ledger", ["file", "postgres"])
def test_two_workers_meeting_the_same_new_fields_add_each_column_once(
    data: Path, spawn, pg: Any, ledger: str
) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    for i, name in enumerate(NAMES):
        body = "".join(f'{{"id": {i * 1000 + j}, "a": {j}, "b{i % 3}": "x"}}\n' for j in range(500))
        (data / name).write_text(body)
    extra = ("--ledger", pg.url) if ledger == "postgres" else ()
    workers = [spawn_pg(spawn, data, pg, "--on-new-columns", "add", *extra) for _ in range(2)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    assert sorted(columns(pg)) == ["a", "b0", "b1", "b2", "id"]
    added = [c for w in workers for e in w.events("columns_added") for c in e["columns"]]
    assert sorted(added) == ["a", "b0", "b1", "b2"]  # each once, by whichever came first
    total = len(NAMES) * 500
    assert pg.psql("SELECT count(*), count(DISTINCT id), count(a) FROM t").strip() == (
        f"{total}|{total}|{total}"
    )
    assert pg.psql("SELECT count(b0) + count(b1) + count(b2) FROM t").strip() == str(total)


def test_create_table_makes_a_missing_table_once(data: Path, spawn, pg: Any) -> None:
    for i, name in enumerate(NAMES[:6]):
        (data / name).write_text(f'{{"id": {i}, "at": "2018-06-28T00:00:00Z"}}\n')
    workers = [spawn_pg(spawn, data, pg, "--pg-create-table", "--on-new-columns", "rescue")
               for _ in range(2)]  # fmt: skip
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    assert columns(pg) == {"id": "bigint", "at": "timestamp with time zone",
                           "_rescued_data": "jsonb"}  # fmt: skip
    assert sum(len(w.events("table_created")) for w in workers) == 1
    assert pg.psql("SELECT count(*), count(DISTINCT id) FROM t").strip() == "6|6"


def test_add_and_reject_pass_over_bad_lines_when_typing(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    (data / NAMES[0]).write_text('{"id": 1, "new": 2}\n{"id": 2, "new": \n{"id": 3, "new": "x"}\n')
    w = spawn_pg(spawn, data, pg, "--on-new-columns", "add", "--bad-rows", "reject")
    assert w.wait() == 0, w.text
    assert columns(pg)["new"] == "jsonb"  # 2 and "x": values that disagree
    assert pg.psql("SELECT string_agg(id || ':' || new::text, ',' ORDER BY id) FROM t").strip() \
        == '1:2,3:"x"'  # fmt: skip
    assert pg.psql("SELECT line FROM ingestd.rejects").strip() == "2"


def test_refusals_at_start_up(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint, rest text)")
    for args, words in (
        (("--on-new-columns", "rescue"), "needs a json or jsonb column _rescued_data"),
        (("--on-new-columns", "rescue", "--rescue-column", "rest"), "json or jsonb column rest"),
        (("--on-new-columns", "add", "--columns", "id"), "does not go with --columns"),
        (("--on-new-columns", "fail", "--pg-converter", "duckdb"), "--on-new-columns ignore"),
        (("--on-new-columns", "drop"), "invalid choice"),
    ):
        w = spawn_pg(spawn, data, pg, *args)
        assert w.wait() == 2, (args, w.text)
        assert words in w.text and "Traceback" not in w.text


@pytest.mark.parametrize("mode", ["ignore", "rescue", "fail"])
def test_a_csv_header_naming_columns_the_table_lacks(data: Path, spawn, pg: Any,
                                                      mode: str) -> None:  # fmt: skip
    pg.psql("CREATE TABLE t (id bigint, at timestamptz, price numeric(6,2), "
            "_rescued_data jsonb)")  # fmt: skip
    (data / NAMES[0]).write_text(
        'price,city,id,at,zip\n1.50,"Paris, FR",1,2018-06-28 00:15+00,""\n,,2,,75001\n'
    )
    w = spawn_pg(spawn, data, pg, "--format", "csv", "--csv-header", "--on-new-columns", mode)
    assert w.wait() == 0, w.text
    status, error = statuses(data)[NAMES[0]]
    if mode == "fail":
        assert status == "failed" and "'city', 'zip'" in (error or "")
        return
    got = rows(pg, "id, price::text, at = '2018-06-28 00:15+00' AS at_ok, _rescued_data")
    rescued = [{"zip": "", "city": "Paris, FR"}, {"zip": "75001"}] if mode == "rescue" else [
        None, None]  # fmt: skip
    assert got == [
        {"id": 1, "price": "1.50", "at_ok": True, "_rescued_data": rescued[0]},
        {"id": 2, "price": None, "at_ok": None, "_rescued_data": rescued[1]},
    ]


def test_a_headerless_csv_fills_the_columns_but_the_rescue_one(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint, name text, _rescued_data jsonb)")
    (data / NAMES[0]).write_text("1,a\n2,b\n")
    w = spawn_pg(spawn, data, pg, "--format", "csv", "--on-new-columns", "rescue")
    assert w.wait() == 0, w.text
    assert rows(pg) == [{"id": 1, "name": "a", "_rescued_data": None},
                        {"id": 2, "name": "b", "_rescued_data": None}]  # fmt: skip


def test_killed_after_adding_a_column_the_heir_loads_every_row_once(
    data: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    (data / NAMES[0]).write_text("".join(f'{{"id": {i}, "a": {i}}}\n' for i in range(60_000)))
    lift = hold_copy(pg, "t", 30_000)  # the column committed, the rows not
    doomed = spawn_pg(spawn, data, pg, "--on-new-columns", "add", name="doomed")
    wait_for(lambda: copy_held(pg), what="a COPY held mid-way")
    doomed.kill()
    lift()
    assert [c for e in doomed.events("columns_added") for c in e["columns"]] == ["a"]
    heir = spawn_pg(spawn, data, pg, "--on-new-columns", "add", name="heir")
    assert heir.wait(timeout=120) == 0
    assert not heir.events("columns_added")  # already there
    assert pg.psql("SELECT count(*), count(DISTINCT id), sum(a) FROM t").strip() == (
        f"60000|60000|{sum(range(60_000))}"
    )
    assert [r["worker"] for r in manifest_records(data)] == ["heir"]
