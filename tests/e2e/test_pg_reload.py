"""ingestd reload against a real PostgreSQL server: a loaded file's rows replaced by its
current content in one transaction, on either ledger; a reader never sees the table without
the file's rows or with them twice, even when the reloading worker is killed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import ROOT, copy_held, hold_copy, manifest_records, wait_for

A, B, C = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "2018_06_28_00_30.txt"


def spawn_pg(spawn, data: Path, pg: Any, *args: str, **kw: Any):  # type: ignore[no-untyped-def]
    return spawn(data, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t",
                 "--pg-file-column", "load_id", *args, **kw)  # fmt: skip


def ingestd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)  # fmt: skip


def ids(pg: Any) -> str:
    return pg.psql("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM t").strip()


@pytest.mark.parametrize("ledger", ["file", "postgres"])
def test_a_fixed_file_replaces_its_rows_and_the_old_load_is_kept_as_history(
    data: Path, spawn, pg: Any, ledger: str
) -> None:
    pg.psql("CREATE TABLE t (id bigint, v text)")
    (data / A).write_text('{"id": 1, "v": "wrong"}\n{"id": 2, "v": "bad"}\n{"id": "x"}\n')
    (data / B).write_text('{"id": 10, "v": "other file"}\n')
    extra = ("--ledger", pg.url) if ledger == "postgres" else ()
    common = ("--bad-rows", "reject", "--exit-when-idle", "0.5", *extra)
    assert spawn_pg(spawn, data, pg, *common).wait() == 0
    assert ids(pg) == "1,2,10"
    # Every row is stamped with its load; the rows of A and B carry different ids.
    assert pg.psql("SELECT count(DISTINCT load_id), count(load_id) FROM t").strip() == "2|3"
    (data / A).write_text('{"id": 1, "v": "fixed"}\n{"id": 3, "v": "new"}\n')
    asked = ingestd("reload", str(data), A, "--pg-table", "t", "--pg-url", pg.url, *extra[:2])
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip() == f"{A}: will be reloaded into public.t"
    w = spawn_pg(spawn, data, pg, *common, name="reloader")
    assert w.wait() == 0
    (event,) = w.events("reloading")
    assert (event["deleted"], event["file"]) == (2, A)
    assert json.loads(pg.psql("SELECT json_agg(json_build_array(id, v) ORDER BY id) FROM t")) == [
        [1, "fixed"], [3, "new"], [10, "other file"]
    ]  # fmt: skip
    assert pg.psql("SELECT count(*) FROM ingestd.rejects").strip() == "0"  # the old load's
    history = pg.psql(
        "SELECT file || ' ' || h.rows || ' ' || (replaced_by = l.load_id) FROM "
        "ingestd.load_history h JOIN ingestd.loads l USING (target, source, file)"
    )
    assert history.strip() == f"{A} 2 true"  # fmt: skip
    assert pg.psql("SELECT count(*) FROM ingestd.reloads").strip() == "0"
    verify = ingestd("verify", str(data), *extra[:2])
    assert verify.returncode == 0, verify.stdout
    # The same content again (a fixed converter, say) is a reload too, not a refusal.
    asked = ingestd("reload", str(data), "--since", A, "--pg-table", "t", "--pg-url", pg.url,
                    *extra[:2])  # fmt: skip
    assert asked.returncode == 0 and asked.stdout.count("will be reloaded") == 2, asked.stderr
    assert spawn_pg(spawn, data, pg, *common).wait() == 0
    assert ids(pg) == "1,3,10"
    assert pg.psql("SELECT count(*) FROM ingestd.load_history").strip() == "3"


def test_a_reader_never_sees_a_reloaded_file_missing_or_doubled(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint, v int)")
    (data / A).write_text("".join(f'{{"id": {i}, "v": 1}}\n' for i in range(40_000)))
    assert spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5").wait() == 0
    (data / A).write_text("".join(f'{{"id": {i}, "v": 2}}\n' for i in range(50_000)))
    assert ingestd("reload", str(data), A, "--pg-table", "t", "--pg-url", pg.url).returncode == 0
    seen: set[tuple[int, int]] = set()
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute("SELECT count(*), coalesce(sum(v), 0) FROM t").fetchone()
                assert row is not None
                seen.add((int(row[0]), int(row[1])))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        lift = hold_copy(pg, "t", 25_000)  # the reload's COPY, half-way: killed there
        doomed = spawn_pg(spawn, data, pg, name="doomed")
        wait_for(lambda: copy_held(pg), what="the reload's COPY held")
        doomed.kill()
        lift()
        heir = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5", name="heir")
        assert heir.wait(timeout=120) == 0
        assert [e["deleted"] for e in heir.events("reloading")] == [40_000]
    finally:
        stop.set()
        reader.join()
    # All of the old rows or all of the new, at every reading.
    assert seen <= {(40_000, 40_000), (50_000, 100_000)}, seen
    assert (50_000, 100_000) in seen
    assert pg.psql("SELECT count(*), count(DISTINCT id), sum(v) FROM t").strip() == (
        "50000|50000|100000"
    )


def test_refusals_say_why_one_line_each(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint)", "CREATE TABLE plain (id bigint)")
    (data / A).write_text('{"id": 1}\n')
    (data / B).write_text('{"id": 2}\n')
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5", "--on-done", "move:done")
    assert w.wait() == 0
    (data / C).write_text('{"id": 3}\n')  # never loaded
    for args, code, words in (
        (("reload", str(data), A, "--pg-url", pg.url), 2, "needs --pg-table"),
        (("reload", str(data), "--pg-table", "t", "--pg-url", pg.url), 2, "needs file names"),
        (("reload", str(data), A, "--pg-table", "plain", "--pg-url", pg.url), 2,
         "no column stamped"),
        (("reload", str(data), A, "--pg-table", "nope", "--pg-url", pg.url), 2, "no such table"),
        (("reload", str(data), A, C, "--pg-table", "t", "--pg-url", pg.url), 1,
         "no longer in the source"),
    ):  # fmt: skip
        out = ingestd(*args)
        assert out.returncode == code, (args, out.stderr)
        assert words in out.stderr and "Traceback" not in out.stderr
    out = ingestd("reload", str(data), C, "--pg-table", "t", "--pg-url", pg.url)
    assert out.returncode == 1 and f"{C}: not loaded into public.t" in out.stderr
    assert pg.psql("SELECT count(*) FROM ingestd.reloads").strip() == "0"


def test_rows_loaded_before_the_file_column_are_refused_not_doubled(
    data: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint)")
    (data / A).write_text('{"id": 1}\n')
    plain = spawn(data, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t",
                  "--exit-when-idle", "0.5")  # fmt: skip
    assert plain.wait() == 0
    (data / B).write_text('{"id": 2}\n')
    assert spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5").wait() == 0
    out = ingestd("reload", str(data), A, B, "--pg-table", "t", "--pg-url", pg.url)
    assert out.returncode == 1 and "carry no load id" in out.stderr
    assert out.stdout.strip() == f"{B}: will be reloaded into public.t"
    assert spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5").wait() == 0
    assert ids(pg) == "1,2"
    assert {r["file"]: r["status"] for r in manifest_records(data)} == {A: "done", B: "done"}


def test_a_file_column_of_another_kind_is_refused_at_start_up(data: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (id bigint, load_id text)")
    w = spawn_pg(spawn, data, pg, "--exit-when-idle", "0.5")
    assert w.wait() == 2
    assert "--pg-file-column load_id" in w.text and "SET DEFAULT" in w.text
