"""--format and --bad-rows where they meet the rest: a bucket source on the PostgreSQL ledger
with --on-done/--on-failed, and keyed files with --one-per-key and --publish-in-order on the
file ledger with files moved away once done or failed."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from conftest import ROOT, manifest_records

A, B, C, D = (f"2018_06_28_00_{m:02d}.txt" for m in (0, 15, 30, 45))


def ingestd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)  # fmt: skip


def _parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def test_a_bucket_of_mixed_formats_with_bad_rows_on_the_postgresql_ledger(
    s3_server: Any, spawn, pg: Any
) -> None:
    name = s3_server.bucket()
    client = s3_server.client()
    objects = {
        A: zstandard.ZstdCompressor().compress(b"name,id\na,1\nb,two\nc,3\n"),
        B: gzip.compress(b'{"id": 4, "name": "d"}\n{"id": 5, "name": \n'),
        C: _parquet(pa.table({"id": [6, 7], "name": ["e", "f"]})),
        D: b'{"id": "x"}\n{"id": "y"}\n{"id": "z"}\n{"id": 8}\n',  # over reject:2
    }
    for key, body in objects.items():
        client.put_object(Bucket=name, Key=f"in/{key}", Body=body)
    pg.psql("CREATE TABLE t (id bigint, name text)")
    w = spawn(f"s3://{name}/in", "--ledger", pg.url, "--handler", "pg", "--pg-url", pg.url,
              "--pg-table", "t", "--format", "auto", "--bad-rows", "reject:2",
              "--on-done", "delete", "--on-failed", "move:failed",
              "--exit-when-idle", "1")  # fmt: skip
    assert w.wait(timeout=120) == 0
    got = pg.psql("SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM t").strip()
    assert got == "1:a,3:c,4:d,6:e,7:f"
    kept = json.loads(pg.psql("SELECT json_agg(json_build_array(file, line) ORDER BY file) "
                              "FROM ingestd.rejects"))  # fmt: skip
    assert kept == [[A, 3], [B, 2]]
    left = sorted(o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", []))
    assert left == [f"in/failed/{D}"]  # done objects deleted, the failed one moved
    status = pg.psql("SELECT string_agg(file || ' ' || status, ',' ORDER BY file) "
                     "FROM ingestd.records").strip()  # fmt: skip
    assert status == f"{A} done,{B} done,{C} done,{D} failed"
    listed = ingestd("rejects", f"s3://{name}/in", "--ledger", pg.url, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["raw"] for line in listed.stdout.splitlines()] == [
        "b,two",
        '{"id": 5, "name": ',
    ]


def test_keyed_csv_with_bad_rows_one_per_key_published_in_order_and_moved_away(
    data: Path, spawn, pg: Any
) -> None:
    pg.psql("CREATE TABLE t (id bigint, note text)")
    files = {
        "acme_2018_06_28_00_00.txt": "1,ok\nx,bad\n",
        "acme_2018_06_28_00_15.txt": "y,bad\nz,bad\n",  # over reject:1: failed
        "acme_2018_06_28_00_30.txt": "2,ok\n",
        "beta_2018_06_28_00_00.txt": "3,ok\n",
    }
    for file, body in files.items():
        (data / file).write_text(body)
    w = spawn(data, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t", "--format", "csv",
              "--bad-rows", "reject:1", "--one-per-key", "--publish-in-order",
              "--on-done", "move:done", "--on-failed", "move:failed",
              "--exit-when-idle", "1")  # fmt: skip
    assert w.wait(timeout=120) == 0
    assert pg.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM t").strip() == "1,2,3"
    statuses = {r["file"]: r["status"] for r in manifest_records(data)}
    assert statuses == {f: "failed" if "00_15" in f and "acme" in f else "done" for f in files}
    assert sorted(p.name for p in (data / "done").iterdir()) == sorted(
        f for f in files if statuses[f] == "done"
    )
    assert [p.name for p in (data / "failed").iterdir()] == ["acme_2018_06_28_00_15.txt"]
    # One rejected row kept, of the done file; the failed file kept none.
    assert pg.psql("SELECT file || ' ' || line FROM ingestd.rejects").strip() == (
        "acme_2018_06_28_00_00.txt 2"
    )
    # The watermark passes the failed file: every file of each key is loaded or failed.
    marks = pg.psql("SELECT string_agg(key || ' ' || published || ' ' || skipped::text, ',' "
                    "ORDER BY key) FROM ingestd.watermarks").strip()  # fmt: skip
    assert marks == (
        'acme acme_2018_06_28_00_30.txt ["acme_2018_06_28_00_15.txt"],'
        "beta beta_2018_06_28_00_00.txt []"
    )


def test_two_bucket_prefixes_on_one_ledger_add_columns_and_reload_only_their_own(
    s3_server: Any, spawn, pg: Any
) -> None:
    """Two sources, one ledger, one table, the same file name in each: new columns added once,
    and a reload of one prefix's file replaces its rows only."""
    name = s3_server.bucket()
    client = s3_server.client()
    client.put_object(Bucket=name, Key=f"p1/{A}", Body=b'{"id": 1, "city": "Paris"}\n')
    client.put_object(Bucket=name, Key=f"p2/{A}", Body=b'{"id": 2, "zip": 75001}\n')
    pg.psql("CREATE TABLE t (id bigint)")
    common = ("--ledger", pg.url, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t",
              "--on-new-columns", "add", "--pg-file-column", "load_id",
              "--exit-when-idle", "1")  # fmt: skip
    for prefix in ("p1", "p2"):
        assert spawn(f"s3://{name}/{prefix}", *common).wait(timeout=120) == 0
    got = pg.psql("SELECT string_agg(concat_ws(':', id, city, zip), ',' ORDER BY id) FROM t")
    assert got.strip() == "1:Paris,2:75001"
    client.put_object(Bucket=name, Key=f"p2/{A}", Body=b'{"id": 3, "zip": 13001}\n')
    asked = ingestd("reload", f"s3://{name}/p2", A, "--ledger", pg.url, "--pg-table", "t")
    assert asked.returncode == 0, asked.stderr
    assert spawn(f"s3://{name}/p2", *common).wait(timeout=120) == 0
    got = pg.psql("SELECT string_agg(concat_ws(':', id, city, zip), ',' ORDER BY id) FROM t")
    assert got.strip() == "1:Paris,3:13001"
    for prefix in ("p1", "p2"):
        verify = ingestd("verify", f"s3://{name}/{prefix}", "--ledger", pg.url, "--expect", "1")
        assert verify.returncode == 0, verify.stdout + verify.stderr
