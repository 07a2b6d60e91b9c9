"""Start-up against PostgreSQL as an operator meets it: a wrong database or role, a role with
only a worker's grants, a read-only database, a second worker with the same id; passwords
never printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

A = "2018_06_28_00_00.txt"

WORKER_GRANTS = (
    "GRANT USAGE ON SCHEMA ingestd TO runner",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ingestd TO runner",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA ingestd TO runner",
)


def _url(pg: Any, **params: str) -> str:
    base = pg.url
    return base + "".join(f"&{k}={v}" for k, v in params.items())


@pytest.mark.parametrize("how", ["database", "role"])
@pytest.mark.parametrize("option", ["--ledger", "--pg-url"])
def test_a_wrong_database_or_role_is_one_line_and_exit_2(
    data: Path, spawn, pg: Any, how: str, option: str
) -> None:
    url = pg.url.replace(pg.url.split("?")[0].rsplit("/", 1)[1], "nosuchdb", 1)
    if how == "role":
        url = pg.url.replace("postgres@", "nobody@", 1)
    pg.psql("CREATE TABLE t (id bigint)")
    (data / A).write_text('{"id": 1}\n')
    args = [option, url]
    if option == "--pg-url":
        args += ["--handler", "pg", "--pg-table", "t"]
    w = spawn(data, *args)
    assert w.wait(timeout=30) == 2
    failed = w.events("startup_failed")
    assert failed and ("does not exist" in failed[0]["error"]), w.text
    assert "Traceback" not in w.text


def test_a_password_in_the_url_is_never_printed(data: Path, spawn, pg: Any) -> None:
    (data / A).write_text("1")
    w = spawn(data, "--ledger", _url(pg, password="s3cretpw"), "--seconds-in-min", "0",
              "--exit-when-idle", "0.5")  # fmt: skip
    assert w.wait() == 0
    assert w.events("worker_started") and "s3cretpw" not in w.text


def test_a_role_with_the_documented_grants_runs_workers_and_a_bare_one_is_refused(
    data: Path, spawn, pg: Any
) -> None:
    (data / A).write_text("1")
    first = spawn(data, "--ledger", pg.url, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert first.wait() == 0  # the owner made the schema
    pg.psql("CREATE ROLE runner LOGIN")
    runner = pg.url.replace("postgres@", "runner@", 1)
    (data / "2018_06_28_00_15.txt").write_text("1")
    bare = spawn(data, "--ledger", runner, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert bare.wait(timeout=30) == 2
    assert "permission denied" in bare.events("startup_failed")[0]["error"], bare.text
    pg.psql(*WORKER_GRANTS)
    granted = spawn(data, "--ledger", runner, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert granted.wait(timeout=30) == 0, granted.text
    assert [e["file"] for e in granted.events("file_done")] == ["2018_06_28_00_15.txt"]
    assert "Traceback" not in bare.text + granted.text


def test_a_read_only_database_without_the_schema_is_one_line(data: Path, spawn, pg: Any) -> None:
    name = pg.url.split("?")[0].rsplit("/", 1)[1]
    pg.psql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    w = spawn(data, "--ledger", pg.url)
    assert w.wait(timeout=30) == 2
    assert "read-only" in w.events("startup_failed")[0]["error"], w.text


def test_a_second_worker_with_the_same_id_is_refused_and_obeys_signals(
    data: Path, spawn, pg: Any
) -> None:
    (data / A).write_text("600")
    first = spawn(data, "--ledger", pg.url, name="same")
    wait_for(lambda: first.events("ready"), what="the first worker ready")
    second = spawn(data, "--ledger", pg.url, "--worker-id", "same", name="second")
    assert second.wait(timeout=30) == 2
    assert "worker_id_in_use" in second.events("startup_failed")[0]["error"], second.text
    assert first.terminate() == 0


def test_a_wrong_password_is_one_line_and_exit_2_not_a_wait(data: Path, spawn, pg: Any) -> None:
    """A role that must give a password (scram), given the wrong one: a configuration error
    at start-up, never `waiting_for_ledger`."""
    cluster = pg.cluster
    hba = cluster.data / "pg_hba.conf"
    original = hba.read_text()
    pg.psql("SET password_encryption = 'scram-sha-256'", "CREATE ROLE pwuser LOGIN PASSWORD 'r'")
    hba.write_text("local all pwuser scram-sha-256\n" + original)
    cluster.psql("SELECT pg_reload_conf()")
    try:
        wrong = pg.url.replace("postgres@", "pwuser@", 1) + "&password=Hunter2x"
        w = spawn(data, "--ledger", wrong)
        assert w.wait(timeout=30) == 2
        [failed] = w.events("startup_failed")
        assert "password authentication failed" in failed["error"], w.text
        assert "Hunter2x" not in w.text
        assert w.events("waiting_for_ledger") == []
    finally:
        hba.write_text(original)
        cluster.psql("SELECT pg_reload_conf()")


def test_the_tests_run_on_the_postgresql_server_chosen(pg: Any) -> None:
    """`INGESTD_TEST_POSTGRES` picks the server (CI runs the PostgreSQL tests on both): what
    answers is that one, of a version README says is supported."""
    import os

    server = pg.cluster.server
    version = int(pg.psql("SHOW server_version_num")) // 10000
    assert version == server.version and version in (15, 16, 17, 18)
    chosen = os.environ.get("INGESTD_TEST_POSTGRES")
    assert server.kind == chosen if chosen else server.kind in ("system", "wheel")
