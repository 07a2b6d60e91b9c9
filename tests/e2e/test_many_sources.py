"""Many sources on one ledger: each source's files, claims, workers, pause flag and loads kept
apart; a state dir serves one source; a schema from before sources is migrated, not redone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT, read_json_log

from ingestd.postgres.schema import SCHEMA_VERSION
from ingestd.sources import identity as source_identity

A, B = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt"


def ingestd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingestd", *args], capture_output=True, text=True, cwd=ROOT,
        timeout=60,
    )  # fmt: skip


def test_a_source_is_its_real_path_its_bucket_prefix_or_its_fleet(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert source_identity(tmp_path / "link") == str((tmp_path / "real").resolve())
    assert source_identity("s3://b/p1") == "s3://b/p1/" == source_identity("s3://b//p1/")
    assert source_identity("s3://b") == "s3://b/"
    assert (
        source_identity(tmp_path / "link", "day") == "fleet:day" == source_identity("s3://x", "day")
    )


def test_two_directories_with_the_same_names_on_one_postgresql_ledger_are_two_sources(
    tmp_path: Path, spawn, pg: Any
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for data in (first, second):
        data.mkdir()
        (data / A).write_text("1")
        (data / B).write_text("2")
    args = ("--ledger", pg.url, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    one = spawn(first, *args, "--on-done", "delete", name="one")
    assert one.wait() == 0
    assert os.listdir(first) == []  # both processed, then deleted
    # The second fleet: the same names, not yet processed, and nothing of it deleted unseen.
    two = spawn(second, *args, "--on-done", "move:done", name="two")
    assert two.wait() == 0
    assert sorted(e["file"] for e in two.events("file_done")) == [A, B]
    assert sorted(os.listdir(second / "done")) == [A, B]
    for data, worker in ((first, "one"), (second, "two")):
        report = ingestd("verify", str(data), "--ledger", pg.url, "--expect", "2", "--json")
        assert report.returncode == 0, report.stdout + report.stderr
        # Each source's records are its own workers'.
        assert set(json.loads(report.stdout)["workers"]) == {worker}
    sources = pg.psql("SELECT DISTINCT source FROM ingestd.records ORDER BY 1").split()
    assert sources == sorted([str(first), str(second)])
    # Pausing one source leaves the other claiming.
    assert ingestd("pause", str(first), "--ledger", pg.url).returncode == 0
    assert pg.psql("SELECT source FROM ingestd.flags").strip() == str(first)


def test_two_providers_with_the_same_names_load_one_table(tmp_path: Path, spawn, pg: Any) -> None:
    pg.psql("CREATE TABLE t (v int)")
    for value, fleet in ((1, "north"), (2, "south")):
        data = tmp_path / fleet
        data.mkdir()
        (data / A).write_text(f'{{"v": {value}}}\n')
        w = spawn(data, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t",
                  "--fleet", fleet, "--exit-when-idle", "0.5", name=fleet)  # fmt: skip
        assert w.wait() == 0
        assert w.events("file_done"), w.text
    assert pg.psql("SELECT string_agg(v::text, ',' ORDER BY v) FROM t").strip() == "1,2"
    loads = pg.psql(
        "SELECT string_agg(source || ' ' || file, ',' ORDER BY source) FROM ingestd.loads"
    )
    assert loads.strip() == f"fleet:north {A},fleet:south {A}"


def test_a_state_dir_belongs_to_one_source(tmp_path: Path, spawn) -> None:
    state = tmp_path / "state"
    first, second = tmp_path / "first", tmp_path / "second"
    for data in (first, second):
        data.mkdir()
        (data / A).write_text("1")
    args = ("--state-dir", str(state), "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert spawn(first, *args).wait() == 0
    refused = spawn(second, *args)
    assert refused.wait() == 2
    errors = [r for r in read_json_log(refused.log_path) if r["event"] == "startup_failed"]
    assert f"belongs to {first}" in errors[0]["error"], refused.text
    assert refused.text.count("Traceback") == 0
    # The same directory by another path (an NFS mount elsewhere) is the same source.
    (tmp_path / "again").symlink_to(first)
    assert spawn(tmp_path / "again", *args).wait() == 0


def test_a_ledger_from_before_sources_is_migrated_and_nothing_is_done_twice(
    data: Path, spawn, pg: Any
) -> None:
    # Version 3's shape, with A done and a worker's heartbeat.
    pg.psql(
        "CREATE SCHEMA ingestd",
        "CREATE TABLE ingestd.schema_version (version integer NOT NULL)",
        "INSERT INTO ingestd.schema_version VALUES (3)",
        "CREATE TABLE ingestd.records (seq bigserial PRIMARY KEY, file text NOT NULL,"
        " status text NOT NULL, worker text NOT NULL, host text, pid integer, attempt integer,"
        " minutes double precision, size bigint, sha256 text, seen_at text, started_at text,"
        " finished_at text, error text, outputs jsonb, records bigint, requested_at text,"
        " previous_error text, recorded_at timestamptz NOT NULL DEFAULT now())",
        "CREATE UNIQUE INDEX records_one_done ON ingestd.records (file) WHERE status = 'done'",
        "CREATE TABLE ingestd.claims (file text PRIMARY KEY, token bigint NOT NULL,"
        " holder text, lease_until timestamptz, owner jsonb)",
        "CREATE TABLE ingestd.workers (worker text PRIMARY KEY, beat jsonb NOT NULL,"
        " beat_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE ingestd.flags (name text PRIMARY KEY)",
        f"INSERT INTO ingestd.records (file, status, worker, attempt, minutes) VALUES"
        f" ('{A}', 'done', 'old', 1, 1)",
    )
    (data / A).write_text("1")
    (data / B).write_text("2")
    # An operator command does not migrate: it says what to do.
    early = ingestd("status", str(data), "--ledger", pg.url)
    assert early.returncode == 2 and "version 3" in early.stderr, early.stderr
    # Nor does a worker: an older fleet may still be running on it.
    refused = spawn(data, "--ledger", pg.url, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert refused.wait() == 2
    assert f"is at version 3, this ingestd needs {SCHEMA_VERSION}" in refused.text
    assert "ingestd migrate" in refused.text
    dry = ingestd("migrate", str(data), "--ledger", pg.url, "--dry-run")
    assert (
        dry.returncode == 0 and f"would migrate from version 3 to {SCHEMA_VERSION}" in dry.stdout
    ), dry.stderr
    assert pg.psql("SELECT max(version) FROM ingestd.schema_version").strip() == "3"
    done = ingestd("migrate", str(data), "--ledger", pg.url)
    assert done.returncode == 0 and f"migrated from version 3 to {SCHEMA_VERSION}" in done.stdout, (
        done.stderr
    )
    again = ingestd("migrate", str(data), "--ledger", pg.url)
    assert f"at version {SCHEMA_VERSION} already" in again.stdout
    w = spawn(data, "--ledger", pg.url, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert w.wait() == 0
    assert [e["file"] for e in w.events("file_done")] == [B]
    assert pg.psql("SELECT max(version) FROM ingestd.schema_version").strip() == str(SCHEMA_VERSION)
    owners = pg.psql("SELECT string_agg(DISTINCT source, ',') FROM ingestd.records")
    assert owners.strip() == str(data)
    assert ingestd("verify", str(data), "--ledger", pg.url, "--expect", "2").returncode == 0


def test_two_prefixes_of_one_bucket_on_one_ledger_each_process_their_own(
    s3_server: Any, spawn, pg: Any
) -> None:
    name = s3_server.bucket()
    client = s3_server.client()
    for prefix in ("p1", "p2"):
        for key in (A, B):
            client.put_object(Bucket=name, Key=f"{prefix}/{key}", Body=b"1")
    args = ("--ledger", pg.url, "--seconds-in-min", "0", "--exit-when-idle", "1",
            "--on-done", "delete")  # fmt: skip
    for prefix in ("p1", "p2"):
        w = spawn(f"s3://{name}/{prefix}", *args, name=prefix)
        assert w.wait(timeout=60) == 0
        assert sorted(e["file"] for e in w.events("file_done")) == [A, B], w.text
    assert client.list_objects_v2(Bucket=name).get("KeyCount", 0) == 0
    sources = pg.psql("SELECT string_agg(DISTINCT source, ',') FROM ingestd.records")
    assert sources.strip() == f"s3://{name}/p1/,s3://{name}/p2/"


def test_hosts_reaching_one_directory_by_two_paths_are_one_fleet_with_fleet(
    tmp_path: Path, spawn, pg: Any
) -> None:
    real = tmp_path / "export"
    real.mkdir()
    (tmp_path / "mount-b").symlink_to(real)  # host B mounts it elsewhere
    (real / A).write_text("1")
    (real / B).write_text("1")
    args = ("--ledger", pg.url, "--fleet", "drop", "--seconds-in-min", "0",
            "--exit-when-idle", "0.5")  # fmt: skip
    assert spawn(real, *args, name="host-a").wait() == 0
    # Host B, by its own path and the same fleet name: nothing left to do.
    other = spawn(tmp_path / "mount-b", *args, name="host-b")
    assert other.wait() == 0 and other.events("file_claimed") == []
    # The operator commands read the fleet by its name, from either path.
    for path in (real, tmp_path / "mount-b"):
        report = ingestd("verify", str(path), "--ledger", pg.url, "--fleet", "drop",
                         "--expect", "2")  # fmt: skip
        assert report.returncode == 0, report.stdout + report.stderr
    assert pg.psql("SELECT DISTINCT source FROM ingestd.records").strip() == "fleet:drop"
