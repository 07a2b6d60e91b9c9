"""--bad-rows reject against a real PostgreSQL server: every good row loaded once, every bad
row kept once in ingestd.rejects with its line, why and its bytes; limits fail the file with
nothing loaded; a worker killed mid-file leaves neither twice, on either ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, copy_held, hold_copy, manifest_records, wait_for

A, B = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt"


def spawn_pg(spawn, data: Path, pg: Any, *args: str, **kw: Any):  # type: ignore[no-untyped-def]
    return spawn(data, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t", *args, **kw)


def ingestd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)  # fmt: skip


def rejects(pg: Any) -> list[list[Any]]:
    out = pg.psql(
        "SELECT coalesce(json_agg(json_build_array(file, line, error, "
        "convert_from(raw, 'UTF8')) ORDER BY file, line), '[]') FROM ingestd.rejects"
    )
    return list(json.loads(out))  # fmt: skip


BAD_JSON = [
    '{"id": 1, "name": "good"}',
    '{"id": 2, "name": "broken"',  # malformed
    '{"id": "three", "name": "wrong type"}',  # PostgreSQL refuses it
    "",  # blank lines are skipped, and counted
    '{"id": 4, "name": "nul \\u0000 here"}',  # text cannot hold NUL
    "[1, 2]",  # not an object
    '{"id": 5, "name": "good \\t again"}',
    '{"id": 6, "name": "ünïcødé"}',
]


def test_bad_json_rows_are_kept_apart_with_line_error_and_bytes(data: Path, spawn,
                                                                  pg: Any) -> None:  # fmt: skip
    pg.psql("CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    (data / A).write_text("\n".join(BAD_JSON) + "\n")
    w = spawn_pg(spawn, data, pg, "--bad-rows", "reject", "--exit-when-idle", "0.5")
    assert w.wait() == 0
    (record,) = manifest_records(data)
    assert (record["status"], record["records"]) == ("done", 3), w.text
    got = json.loads(pg.psql("SELECT json_agg(json_build_array(id, name) ORDER BY id) FROM t"))
    assert got == [[1, "good"], [5, "good \t again"], [6, "ünïcødé"]]
    kept = rejects(pg)
    assert [(r[0], r[1], r[3]) for r in kept] == [
        (A, 2, BAD_JSON[1]), (A, 3, BAD_JSON[2]), (A, 5, BAD_JSON[4]), (A, 6, BAD_JSON[5]),
    ]  # fmt: skip
    assert "malformed JSON" in kept[0][2]
    assert "three" in kept[1][2] and "SQLSTATE 22P02" in kept[1][2]
    assert "NUL" in kept[2][2] and "object" in kept[3][2]
    assert pg.psql("SELECT rows || ' ' || rejected FROM ingestd.loads").strip() == "3 4"
    (event,) = w.events("rows_rejected")
    assert (event["rejected"], event["rows"], event["first_line"]) == (4, 3, 2)

    listed = ingestd("rejects", str(data), "--pg-url", pg.url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 4 and lines[0].startswith(f"{A}\tline 2\tpublic.t\tmalformed JSON")
    as_json = ingestd("rejects", str(data), "--pg-url", pg.url, "--json", "--limit", "2")
    assert [json.loads(line)["line"] for line in as_json.stdout.splitlines()] == [2, 3]
    assert json.loads(as_json.stdout.splitlines()[1])["raw"] == BAD_JSON[2]
    other = ingestd("rejects", str(data), "--pg-url", pg.url, "--file", B)
    assert other.returncode == 0 and other.stdout == "" and "no rejected rows" in other.stderr


def test_bad_csv_and_tsv_rows_are_cut_as_records(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint CHECK (id > 0), name text)")
    (data / A).write_bytes(
        b'id,name\r\n1,"two\r\nlines"\r\n-2,negative\r\n3,x,extra\r\n4,"say ""hi"""\r\nfive,x\r\n'
    )
    w = spawn_pg(spawn, data, pg, "--bad-rows", "reject", "--format", "csv", "--csv-header",
                 "--exit-when-idle", "0.5")  # fmt: skip
    assert w.wait() == 0
    assert json.loads(pg.psql("SELECT json_agg(json_build_array(id, name) ORDER BY id) FROM t")) \
        == [[1, "two\r\nlines"], [4, 'say "hi"']]  # fmt: skip
    assert [(r[1], r[3]) for r in rejects(pg)] == [(4, "-2,negative"), (5, "3,x,extra"),
                                                   (7, "five,x")]  # fmt: skip
    pg.psql("TRUNCATE t", "DELETE FROM ingestd.rejects")
    (data / B).write_bytes(b"10\tok\n\\N\tnull id\nx\tbad\n11\tok too\n")
    w = spawn_pg(spawn, data, pg, "--bad-rows", "reject", "--format", "tsv",
                 "--exit-when-idle", "0.5")  # fmt: skip
    assert w.wait() == 0
    assert pg.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM t").strip() == "10,11"
    assert [(r[1], r[3]) for r in rejects(pg)] == [(3, "x\tbad")]


def test_bad_parquet_rows_are_kept_as_json(data: Path, tmp_path: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint CHECK (id <> 2), name text)")
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b\x00", "c"]}), tmp_path / "p")
    pq.write_table(pa.table({"id": [1, 3, 4], "name": ["a", "c", "d\x00"]}), tmp_path / "q")
    (data / A).write_bytes((tmp_path / "p").read_bytes())
    w = spawn_pg(spawn, data, pg, "--bad-rows", "reject", "--format", "parquet",
                 "--exit-when-idle", "0.5")  # fmt: skip
    assert w.wait() == 0
    assert pg.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM t").strip() == "1,3"
    ((file, line, error, raw),) = rejects(pg)
    assert (line, json.loads(raw)) == (2, {"id": 2, "name": "b\x00"})
    # A NUL psycopg refuses before sending is kept the same way.
    pg.psql("TRUNCATE t", "DELETE FROM ingestd.rejects", "DELETE FROM ingestd.loads")
    (data / B).write_bytes((tmp_path / "q").read_bytes())
    w = spawn_pg(spawn, data, pg, "--bad-rows", "reject", "--format", "parquet",
                 "--exit-when-idle", "0.5")  # fmt: skip
    assert w.wait() == 0
    assert pg.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM t").strip() == "1,3"
    ((file, line, error, raw),) = rejects(pg)
    assert (file, line, json.loads(raw)) == (B, 3, {"id": 4, "name": "d\x00"})
    assert "NUL" in error


@pytest.mark.parametrize(
    ("policy", "loaded"),
    [("reject:1", False), ("reject:2", True), ("reject:40%", True), ("reject:30%", False)],
)
def test_past_the_limit_the_file_fails_with_nothing_loaded_or_kept(
    data: Path, spawn, pg: Any, policy: str, loaded: bool
) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    (data / A).write_text('{"id": 1}\n{"id": "x"}\n{"id": 3}\n{"id": "y"}\n{"id": 5}\n')
    w = spawn_pg(spawn, data, pg, "--bad-rows", policy, "--exit-when-idle", "0.5")
    assert w.wait() == 0
    (record,) = manifest_records(data)
    if loaded:
        assert record["status"] == "done" and record["records"] == 3
        assert len(rejects(pg)) == 2
    else:
        assert record["status"] == "failed"
        assert f"more than --bad-rows {policy} allows; the first at line 2" in record["error"]
        assert pg.psql("SELECT count(*) FROM t").strip() == "0"
        assert rejects(pg) == [] and pg.psql("SELECT count(*) FROM ingestd.loads").strip() == "0"


def _big_file(path: Path, rows: int, every: int) -> tuple[int, int]:
    """JSON Lines with a bad row every `every`-th line: (good rows, bad rows)."""
    pad = "x" * 100
    with open(path, "w") as out:
        for i in range(1, rows + 1):
            if i % every == 0:
                out.write(f'{{"id": "bad{i}", "pad": "{pad}"}}\n')
            else:
                out.write(f'{{"id": {i}, "pad": "{pad}"}}\n')
    return rows - rows // every, rows // every


@pytest.mark.parametrize("ledger", ["file", "postgres"])
def test_killed_mid_file_with_rejects_a_peer_keeps_each_row_once(
    data: Path, spawn, pg: Any, ledger: str
) -> None:
    pg.psql("CREATE TABLE t (id bigint PRIMARY KEY, pad text)")
    good, bad = _big_file(data / A, 60_000, 97)
    extra = ("--ledger", pg.url) if ledger == "postgres" else ()
    lift = hold_copy(pg, "t", 40_000)  # segments and rejects sent, none committed
    doomed = spawn_pg(spawn, data, pg, "--bad-rows", "reject", *extra, name="doomed")
    wait_for(lambda: copy_held(pg), what="a COPY held mid-way")
    doomed.kill()
    lift()
    heir = spawn_pg(spawn, data, pg, "--bad-rows", "reject", "--exit-when-idle", "0.5", *extra,
                    name="heir")  # fmt: skip
    assert heir.wait(timeout=120) == 0
    assert pg.psql("SELECT count(*), count(DISTINCT id) FROM t").strip() == f"{good}|{good}"
    assert pg.psql("SELECT count(*), count(DISTINCT line) FROM ingestd.rejects").strip() == (
        f"{bad}|{bad}"
    )
    assert pg.psql("SELECT rows || ' ' || rejected FROM ingestd.loads").strip() == f"{good} {bad}"
    if ledger == "file":
        done = [(r["worker"], r["records"]) for r in manifest_records(data)
                if r["status"] == "done"]  # fmt: skip
        assert done == [("heir", good)]
    else:
        done = pg.psql("SELECT string_agg(worker || ' ' || records, ',') FROM ingestd.records "
                       "WHERE status = 'done'")  # fmt: skip
        assert done.strip() == f"heir {good}"


def test_two_sources_on_one_ledger_keep_their_own_rejects(tmp_path: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    first, second = tmp_path / "first", tmp_path / "second"
    for data, bad in ((first, "x"), (second, "y")):
        data.mkdir()
        (data / A).write_text(f'{{"id": 1}}\n{{"id": "{bad}"}}\n')
    for data in (first, second):
        w = spawn_pg(spawn, data, pg, "--ledger", pg.url, "--bad-rows", "reject",
                     "--exit-when-idle", "0.5")  # fmt: skip
        assert w.wait() == 0
    assert pg.psql("SELECT count(*) FROM t").strip() == "2"
    for data, bad in ((first, "x"), (second, "y")):
        listed = ingestd("rejects", str(data), "--ledger", pg.url, "--json")
        assert [json.loads(line)["raw"] for line in listed.stdout.splitlines()] == [
            f'{{"id": "{bad}"}}'
        ], listed.stderr


def test_rejects_command_errors_are_one_line(data: Path, pg: Any) -> None:
    none = ingestd("rejects", str(data), "--pg-url", pg.url)
    assert none.returncode == 2 and "no ingestd schema" in none.stderr
    assert "Traceback" not in none.stderr
    down = ingestd("rejects", str(data), "--pg-url", "postgresql://u:secret@127.0.0.1:9/x")
    assert down.returncode == 2 and "secret" not in down.stderr and "Traceback" not in down.stderr
