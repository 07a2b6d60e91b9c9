"""--handler pg against a real PostgreSQL server: every value exact, every file's rows in the
table exactly once whatever dies when, and the database's outages cost no attempt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_held, done_names, hold_copy, manifest_records, wait_for

from ingestd.postgres.schema import SCHEMA_VERSION

A, B = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt"

# The hostile set: values that break naive converters. Numbers are written by hand so their
# text is what a provider might send.
HOSTILE = [
    '{"id": 1, "big": 123456789012345678901234567890, "num": 0.1000000000000000055511151231257827,'
    ' "dbl": -0.0, "flag": true, "doc": {"a": [1, 2.5, null], "s": "x"},'
    ' "txt": "tab\\there\\nnew\\rline \\\\ \\\\N \\u2028 \\ud83d\\ude00",'
    ' "at": "2018-06-28T00:15:00Z"}',
    '{"id": 2, "big": -9223372036854775809, "num": 1e-7, "dbl": 1e-7, "flag": false,'
    ' "doc": "just a string", "txt": "\\\\N", "at": null}',
    '{"id": 3, "big": 0, "num": -0.0, "dbl": 1.5, "doc": 12.5, "txt": ""}',
    '{"id": 4, "doc": [[[[[{"deep": [{"deeper": [1]}]}]]]]], "txt": "plain"}',
]
TYPED = "id bigint, big numeric, num numeric, dbl double precision, flag boolean, doc jsonb, " \
    "txt text, at timestamptz"  # fmt: skip


def spawn_pg(spawn, data: Path, pg: Any, *args: str, **kw: Any):  # type: ignore[no-untyped-def]
    return spawn(data, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t", *args, **kw)


def rows(pg: Any, order: str = "id") -> list[dict[str, Any]]:
    out = pg.psql(f"SELECT coalesce(json_agg(t ORDER BY {order}), '[]') FROM t")
    return list(json.loads(out))


def test_every_hostile_value_arrives_exactly_typed_and_as_text(data: Path, spawn, pg: Any) -> None:
    (data / A).write_text("\n".join(HOSTILE) + "\n")
    pg.psql(f"CREATE TABLE t ({TYPED})")
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5")
    assert w.wait() == 0
    assert [r["status"] for r in manifest_records(data)] == ["done"], w.text
    got = json.loads(pg.psql(
        "SELECT json_agg(json_build_array(id, big::text, num::text, dbl, flag, doc, txt, "
        "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')) ORDER BY id) FROM t"
    ))  # fmt: skip
    sources = [json.loads(line) for line in HOSTILE]
    assert [g[1] for g in got] == ["123456789012345678901234567890", "-9223372036854775809", "0",
                                   None]  # fmt: skip
    assert [g[2] for g in got] == ["0.1000000000000000055511151231257827", "0.0000001", "0.0",
                                   None]  # numeric: exact (it has no negative zero)  # fmt: skip
    assert got[0][3] == 0.0 and got[1][3] == 1e-7
    assert [g[4] for g in got] == [True, False, None, None]
    assert [g[5] for g in got] == [s.get("doc") for s in sources]  # a string stays a JSON string
    assert [g[6] for g in got] == [s.get("txt") for s in sources]  # every character, \N too
    assert got[0][7] == "2018-06-28 00:15:00" and got[1][7] is None
    loads = pg.psql("SELECT file || ' ' || rows FROM ingestd.loads")
    assert loads.split() == [A, "4"]

    # The same file into all-text columns: the text of each value as it was written.
    pg.psql("DROP TABLE t", "CREATE TABLE t (id text, big text, num text, doc text, txt text)")
    (data / B).write_text("\n".join(HOSTILE) + "\n")
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5")
    assert w.wait() == 0
    text = rows(pg, "id::int")
    assert [r["big"] for r in text] == ["123456789012345678901234567890",
                                        "-9223372036854775809", "0", None]  # fmt: skip
    assert [r["num"] for r in text][:2] == ["0.1000000000000000055511151231257827", "1e-7"]
    assert json.loads(text[0]["doc"]) == sources[0]["doc"]
    assert [r["txt"] for r in text] == [s.get("txt") for s in sources]


def test_bad_input_fails_the_file_and_leaves_no_row(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint NOT NULL, v text)")
    (data / A).write_text('{"id": 1}\n{"id": 2}\n{"id": "three"}\n')  # a value it refuses
    (data / B).write_text('{"id": 1}\n{"id": 2, "v": }\n')  # malformed
    c = "2018_06_28_00_30.txt"
    (data / c).write_text('{"id": 1}\n{"v": "no id"}\n')  # a required column missing
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5")
    assert w.wait() == 0
    records = {r["file"]: r for r in manifest_records(data)}
    assert {r["status"] for r in records.values()} == {"failed"}
    assert "three" in records[A]["error"] and "line 3" in records[A]["error"]
    assert "malformed JSON" in records[B]["error"]
    assert "null value" in records[c]["error"] and "line 2" in records[c]["error"]
    assert all(r["attempt"] == 1 for r in records.values())  # bad input: never retried
    assert rows(pg) == []
    assert pg.psql("SELECT count(*) FROM ingestd.loads").strip() == "0"


def test_same_content_new_name_loads_again_same_name_new_content_does_not(
    data: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    (data / A).write_text('{"id": 1}\n')
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5")
    assert w.wait() == 0
    (data / B).write_text('{"id": 1}\n')  # a new file that happens to hold the same
    # The same name with new content: refused even for a fresh manifest (a new state dir).
    (data / ".ingestd" / "manifest.jsonl").rename(data / "old-manifest")
    (data / A).write_text('{"id": 2}\n')
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5")
    assert w.wait() == 0
    records = {r["file"]: r for r in manifest_records(data)}
    assert records[B]["status"] == "done"
    assert records[A]["status"] == "failed"
    assert "content_changed_after_load" in records[A]["error"]
    assert [r["id"] for r in rows(pg)] == [1, 1]


KILL_AFTER_COMMIT = textwrap.dedent(
    """
    import os, signal
    from ingestd.handlers import pg
    from ingestd.handlers.pg import OPTIONS, watermarks  # its options and watermark too

    async def handle(job):
        outcome = await pg.handle(job)
        outcome.transaction.commit()  # rows and load record are in (the file ledger's order)
        os.kill(os.getpid(), signal.SIGKILL)  # dead before the done record
        return outcome
    """
)


def test_killed_after_commit_before_the_record_the_redo_loads_nothing(
    data: Path, tmp_path: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    (tmp_path / "killer.py").write_text(KILL_AFTER_COMMIT)
    (data / A).write_text("".join(f'{{"id": {i}}}\n' for i in range(1000)))
    doomed = spawn(data, "--handler", "killer:handle", "--pg-url", pg.url, "--pg-table", "t",
                   env={"PYTHONPATH": str(tmp_path)}, name="doomed")  # fmt: skip
    assert doomed.wait(timeout=60) == -signal.SIGKILL
    assert pg.psql("SELECT count(*) FROM t").strip() == "1000"
    heir = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5", name="heir")
    assert heir.wait() == 0
    assert heir.events("already_loaded")[0]["rows"] == 1000
    assert pg.psql("SELECT count(*), count(DISTINCT id) FROM t").strip() == "1000|1000"
    (record,) = manifest_records(data)
    assert (record["status"], record["worker"], record["records"]) == ("done", "heir", 1000)


def test_killed_mid_copy_a_peer_loads_it_once(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint, pad text)")
    lift = hold_copy(pg, "t", 150_000)  # the COPY partly sent for sure
    pad = "x" * 200
    (data / A).write_text("".join(f'{{"id": {i}, "pad": "{pad}"}}\n' for i in range(300_000)))
    doomed = spawn_pg(spawn, data, pg, name="doomed")
    wait_for(lambda: copy_held(pg), what="a COPY held mid-way")
    doomed.kill()
    lift()
    heir = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5", name="heir")
    assert heir.wait(timeout=120) == 0
    assert pg.psql("SELECT count(*), count(DISTINCT id) FROM t").strip() == "300000|300000"
    assert pg.psql("SELECT count(*) FROM ingestd.loads").strip() == "1"
    assert [r["worker"] for r in manifest_records(data)] == ["heir"]


def test_a_database_restart_loses_and_doubles_nothing_and_spends_no_attempt(
    data: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (file text, i int)")
    workers = [spawn_pg(spawn, data, pg, "--rescan-interval", "0.2", name=f"w{i}")
               for i in range(2)]  # fmt: skip
    names = [f"2018_06_28_{h:02d}_{m:02d}.txt" for h in range(6) for m in (0, 15, 30, 45)]
    for n, name in enumerate(names):
        (data / name).write_text("".join(f'{{"file": "{name}", "i": {i}}}\n' for i in range(2000)))
        if n == 8:
            wait_for(lambda: len(done_names(data)) >= 3, what="some loaded")
            pg.cluster.restart()  # pg_ctl restart -m immediate, mid-run
    wait_for(lambda: len(done_names(data)) == len(names), timeout=120, what="all loaded")
    assert all(w.popen.poll() is None for w in workers)  # both still running
    counts = pg.psql("SELECT file, count(*), count(DISTINCT i) FROM t GROUP BY file ORDER BY 1")
    assert counts.split() == [f"{name}|2000|2000" for name in names]
    records = manifest_records(data)
    assert Counter(r["file"] for r in records if r["status"] == "done") == Counter(names)
    assert {r["attempt"] for r in records} == {1}  # an outage is not the file's fault
    for w in workers:
        assert w.terminate() == 0
    assert any(w.events("handler_retry_later") for w in workers)


@pytest.mark.parametrize("missing", ["--pg-table", "table"])
def test_start_up_errors_are_one_line(
    data: Path, pg: Any, missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingestd.commands import cli

    args = [str(data), "--handler", "pg", "--pg-url", pg.url, "--log-format", "json"]
    if missing == "table":
        args += ["--pg-table", "nowhere"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("--pg-table" in err)


def test_the_duckdb_converter_loads_the_same_rows(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint, n numeric, ok boolean, doc jsonb, txt text)")
    lines = [
        '{"id": 1, "n": 2.5, "ok": true, "doc": {"a": [1, null]},'
        ' "txt": "tab\\there \\\\N \\u2028"}',
        '{"id": 2, "n": 123456789012345678901234567890, "doc": "a string", "txt": ""}',
        '{"id": 3}',
    ]
    (data / A).write_text("\n".join(lines) + "\n")
    (data / B).write_text('{"id": 1}\n{"id": 2,, }\n')
    w = spawn_pg(spawn, data, pg, "--pg-converter", "duckdb", "--exit-when-idle", "0.5")
    assert w.wait() == 0
    records = {r["file"]: r for r in manifest_records(data)}
    assert records[A]["status"] == "done" and records[A]["records"] == 3
    assert records[B]["status"] == "failed" and "malformed JSON" in records[B]["error"]
    got = rows(pg)
    sources = [json.loads(line) for line in lines]
    assert [r["id"] for r in got] == [1, 2, 3]
    assert [r["n"] for r in got] == [2.5, 123456789012345678901234567890, None]
    assert [r["ok"] for r in got] == [True, None, None]
    assert [r["doc"] for r in got] == [s.get("doc") for s in sources]
    assert [r["txt"] for r in got] == [s.get("txt") for s in sources]


def test_a_table_dropped_mid_run_costs_no_attempt(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    w = spawn_pg(spawn, data, pg, "--rescan-interval", "0.2")
    wait_for(lambda: w.events("ready"))
    pg.psql("DROP TABLE t")
    (data / A).write_text('{"id": 1}\n')
    wait_for(lambda: w.events("handler_retry_later"), what="the file given back")
    pg.psql("CREATE TABLE t (id bigint)")
    wait_for(lambda: done_names(data) == [A], timeout=30, what="loaded once the table is back")
    assert [r["attempt"] for r in manifest_records(data)] == [1]
    assert rows(pg) == [{"id": 1}]
    assert w.terminate() == 0


def test_a_load_record_says_where_its_file_stands_and_an_older_schema_gains_that(
    data: Path, spawn, pg: Any
) -> None:
    pg.psql(
        "CREATE TABLE t (id bigint)",
        "CREATE SCHEMA ingestd",
        "CREATE TABLE ingestd.schema_version (version integer NOT NULL)",
        "INSERT INTO ingestd.schema_version VALUES (2)",
        "CREATE TABLE ingestd.loads (target text NOT NULL, file text NOT NULL, sha256 text NOT"
        " NULL, rows bigint NOT NULL, worker text NOT NULL, loaded_at timestamptz NOT NULL"
        " DEFAULT now(), PRIMARY KEY (target, file))",
        f"INSERT INTO ingestd.loads VALUES ('t', '{A}', 'x', 0, 'old')",
    )
    (data / "acme_2018_06_28_00_15.txt").write_text('{"id": 1}\n')
    refused = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5", "--publish-in-order")
    assert refused.wait() == 2 and "ingestd migrate" in refused.text
    migrate = subprocess.run(
        [sys.executable, "-m", "ingestd", "migrate", str(data), "--pg-url", pg.url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert migrate.returncode == 0 and f"from version 2 to {SCHEMA_VERSION}" in migrate.stdout, (
        migrate.stderr
    )
    assert "state dir" in migrate.stdout  # the file ledger: nothing to do, and said
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5", "--publish-in-order")
    assert w.wait() == 0
    # Nothing to move: the watermark alone says how far every file of a key is loaded, in
    # the database the rows are in (no output dir).
    marks = pg.psql("SELECT concat_ws(' ', target, key, published) FROM ingestd.watermarks")
    assert marks.strip() == "public.t acme acme_2018_06_28_00_15.txt"
    assert not (data / "out").exists()
    got = pg.psql(
        "SELECT string_agg(concat_ws(' ', file, file_key, file_time), ',' ORDER BY file)"
        " FROM ingestd.loads"
    )
    assert got.strip() == f"{A},acme_2018_06_28_00_15.txt acme 2018-06-28 00:15:00"
    assert pg.psql("SELECT max(version) FROM ingestd.schema_version").strip() == str(SCHEMA_VERSION)
    # Version 5 counts rejected rows: none for the loads from before.
    assert pg.psql("SELECT string_agg(rejected::text, ',') FROM ingestd.loads").strip() == "0,0"
    # ... and gives every load an id, the ones from before too.
    assert pg.psql("SELECT count(DISTINCT load_id) FROM ingestd.loads").strip() == "2"
    # The rows from before belong to the source that migrated them, under the target as
    # PostgreSQL resolves it.
    assert pg.psql("SELECT DISTINCT target || ' ' || source FROM ingestd.loads").strip() == (
        f"public.t {os.path.realpath(data)}"
    )


def _failed_once(pg: Any, w: Any, data: Path, names: list[str]) -> dict[str, str]:
    """Each of `names` failed on its first attempt (never retried); their errors by name."""
    records = {r["file"]: r for r in manifest_records(data)}
    for name in names:
        assert records[name]["status"] == "failed", (name, records[name])
        assert records[name]["attempt"] == 1, (name, records[name])
    assert not w.events("handler_retry_later"), w.events("handler_retry_later")
    return {name: records[name]["error"] for name in names}


def test_content_postgresql_refuses_fails_once_by_its_sqlstate(data: Path, spawn, pg: Any) -> None:
    # 54000: an index row over btree's maximum (an OperationalError in psycopg, like an outage);
    # a lone surrogate no encoder writes; nesting deeper than any parser follows; NaN.
    pg.psql("CREATE TABLE t (id bigint, k text, doc jsonb)", "CREATE INDEX ON t (k)")
    noise = os.urandom(9000).hex()
    deep = "[" * 100_000 + "]" * 100_000
    files = {
        "2018_06_28_00_00.txt": f'{{"id": 1, "k": "{noise}"}}\n',
        "2018_06_28_00_15.txt": '{"id": 2, "k": "\\ud800"}\n',
        "2018_06_28_00_30.txt": f'{{"id": 3, "doc": {deep}}}\n',
        "2018_06_28_00_45.txt": '{"id": 4, "doc": NaN}\n',
        "2018_06_28_01_00.txt": '{"id": 5, "k": "fine"}\n',
    }
    for name, text in files.items():
        (data / name).write_text(text)
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "1", "--seconds-in-min", "0")
    assert w.wait(timeout=120) == 0
    errors = _failed_once(pg, w, data, sorted(files)[:4])
    assert "SQLSTATE 54000" in errors["2018_06_28_00_00.txt"]
    assert "not JSON" in errors["2018_06_28_00_45.txt"]
    assert rows(pg) == [{"id": 5, "k": "fine", "doc": None}]


def test_any_column_name_postgresql_takes_loads(data: Path, spawn, pg: Any) -> None:
    pg.psql('CREATE TABLE t ("we""ird" text, "note\\x" text, "tab\tname" bigint)')
    (data / A).write_text('{"we\\"ird": "a", "note\\\\x": "b", "tab\\tname": 7}\n')
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5")
    assert w.wait() == 0
    assert done_names(data) == [A], w.text
    assert rows(pg, '"tab\tname"') == [{'we"ird': "a", "note\\x": "b", "tab\tname": 7}]


@pytest.mark.parametrize("converter_line", ["plain", "mixed"])
def test_floats_are_rounded_once_by_postgresql_on_either_path(
    data: Path, spawn, pg: Any, converter_line: str
) -> None:
    """A value's fate does not depend on which path another line sent its file down."""
    pg.psql("CREATE TABLE t (id bigint, r real, d double precision, s text)")
    lines = [
        '{"id": 1, "r": 1.0000000596046447, "d": -0, "s": "x"}',
        '{"id": 2, "r": 3.4e38, "d": -0.0, "s": "y"}',
    ]
    if converter_line == "mixed":
        lines.append('{"id": 3, "s": 5}')  # a number in a text column: the standard path
    (data / A).write_text("\n".join(lines) + "\n")
    (data / B).write_text('{"id": 9, "d": 1e-400}\n')  # out of range for PostgreSQL
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5")
    assert w.wait() == 0
    got = pg.psql("SELECT string_agg(concat_ws(' ', id, r, d), ',' ORDER BY id) FROM t")
    expected = "1 1 -0,2 3.4e+38 -0" + (",3" if converter_line == "mixed" else "")
    assert got.strip() == expected
    assert "out of range" in _failed_once(pg, w, data, [B])[B]


def test_a_table_name_is_resolved_as_postgresql_resolves_it(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE lower_ev (id bigint)")
    (data / A).write_text('{"id": 1}\n')
    w = spawn(data, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "LOWER_EV",
              "--exit-when-idle", "0.5")  # fmt: skip
    assert w.wait() == 0
    assert done_names(data) == [A], w.text
    assert pg.psql("SELECT target FROM ingestd.loads").strip() == "public.lower_ev"
