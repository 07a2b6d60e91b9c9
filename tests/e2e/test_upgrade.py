"""A fleet upgraded from the previous release to this one, by the steps of the Upgrading guide,
on each ledger: the previous release is this repository's own commit of 0.2.0, run from its
source next to the current code (same dependencies, no network). At the end every file of the
appendix day is done once, every row loaded once, each worker's stats lines match its records,
and a worker of the older version is refused by the migrated store, changing nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    ROOT,
    Proc,
    assert_stats_match_manifest,
    manifest_records,
    read_json_log,
    wait_for,
)

from ingestd.postgres.schema import SCHEMA_VERSION

PREVIOUS = "e56b69bed00afc3c7e55b69215f2291b3e882219"  # 0.2.0, which still said 0.1.0
DAY = [
    (name, int(float(minutes)))
    for name, minutes in (
        line.split("\t")
        for line in (ROOT / "data" / "appendix-2018-06-28.tsv").read_text().splitlines()[1:]
        if line
    )
]


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's package, from this repository's history."""
    where = tmp_path_factory.mktemp("previous")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS, "ingestd"],
                             capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    return where


def drop(data: Path, files: list[tuple[str, int]]) -> None:
    for name, rows in files:
        temp = data / f".{name}.tmp"
        temp.write_text("".join(json.dumps({"file": name, "n": i}) + "\n" for i in range(rows)))
        temp.rename(data / name)


def run(release: Path | None, tmp: Path, *args: str, name: str = "", background: bool = False,
        ) -> Any:  # fmt: skip
    """`python -m ingestd ARGS` of the previous release (its source on PYTHONPATH) or of this
    one; in the background as a worker with a JSON log, else to completion."""
    env = {**os.environ, "PYTHONPATH": str(release) if release else str(ROOT)}
    command = [sys.executable, "-m", "ingestd", *args]
    if not background:
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env,
                              timeout=120)  # fmt: skip
    log = tmp / f"{name}.log"
    with open(log, "ab") as out:
        options = ["--worker-id", name, "--log-format", "json", "--rescan-interval", "0.2"]
        popen = subprocess.Popen([*command, *options, "--settle", "0.2"], stdout=out,
                                 stderr=subprocess.STDOUT, cwd=tmp, env=env)  # fmt: skip
    return Proc(popen, log, name)


@pytest.mark.parametrize("ledger", ["file", "postgres"])
def test_a_fleet_upgraded_by_the_documented_steps_loses_and_doubles_nothing(
    previous: Path, tmp_path: Path, pg: Any, ledger: str
) -> None:
    data = tmp_path / "drop"
    data.mkdir()
    pg.psql("CREATE TABLE events (file text, n int)")
    where = ("--ledger", pg.url) if ledger == "postgres" else ()
    worker = ("run", str(data), "--handler", "pg", "--pg-url", pg.url, "--pg-table", "events",
              "--seconds-in-min", "0", *where)  # fmt: skip
    procs: list[Proc] = []
    try:
        # The old fleet works through the first half of the day, the provider still dropping.
        old = [run(previous, tmp_path, *worker, name=f"old-{i}", background=True) for i in (1, 2)]
        procs += old
        drop(data, DAY[:40])
        wait_for(lambda: sum(len(p.events("file_done")) for p in old) >= 20, timeout=120,
                 what="the old fleet at work")  # fmt: skip
        drop(data, DAY[40:60])
        # 1. pause (the old version's command: the store is still the old one's)
        paused = run(previous, tmp_path, "pause", str(data), *where)
        assert paused.returncode == 0, paused.stderr
        wait_for(lambda: _in_progress(previous, tmp_path, data, where) == 0, timeout=120,
                 what="the drain")  # fmt: skip
        # 2. stop every old worker
        assert [p.terminate(timeout=60) for p in old] == [0, 0]
        # 3-4. the new version: migrate (the ledger's schema and the loader's, one database)
        migrate = run(None, tmp_path, "migrate", str(data), *where, "--pg-url", pg.url)
        assert migrate.returncode == 0, migrate.stderr
        assert f"migrated from version 4 to {SCHEMA_VERSION}" in migrate.stdout
        # 5. new workers, resume, the rest of the day
        new = [run(None, tmp_path, *worker, name=f"new-{i}", background=True) for i in (1, 2)]
        procs += new
        resumed = run(None, tmp_path, "resume", str(data), *where)
        assert resumed.returncode == 0, resumed.stderr
        drop(data, DAY[60:])
        verify = ("verify", str(data), *where, "--expect", str(len(DAY)))
        wait_for(lambda: run(None, tmp_path, *verify).returncode == 0, timeout=240,
                 what="the whole day done")  # fmt: skip
        assert [p.terminate(timeout=60) for p in new] == [0, 0]
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                proc.kill()
    # Every file done once, by some worker of either version, every row loaded once.
    records = _records(pg, data) if ledger == "postgres" else manifest_records(data)
    done = [r["file"] for r in records if r["status"] == "done"]
    assert sorted(done) == sorted(name for name, _ in DAY)
    workers = {r["worker"] for r in records if r["status"] == "done"}
    assert workers & {"old-1", "old-2"} and workers & {"new-1", "new-2"}, workers
    counts = pg.psql("SELECT count(*), count(DISTINCT (file, n)) FROM events").strip()
    total = sum(rows for _, rows in DAY)
    assert counts == f"{total}|{total}"
    assert pg.psql("SELECT count(*) FROM ingestd.loads").strip() == str(len(DAY))
    for proc in procs:
        assert_stats_match_manifest(read_json_log(proc.log_path), records, proc.name, True)
    # A downgrade: a worker of the previous release meets the migrated store and stops.
    before = pg.psql("SELECT count(*) FROM events").strip()
    back = run(previous, tmp_path, *worker, "--exit-when-idle", "0.5")
    assert back.returncode == 2, back.stdout + back.stderr
    assert "newer than this ingestd understands" in back.stdout + back.stderr
    assert pg.psql("SELECT count(*) FROM events").strip() == before
    assert run(None, tmp_path, *verify).returncode == 0


def _in_progress(release: Path, tmp: Path, data: Path, where: tuple[str, ...]) -> int:
    status = run(release, tmp, "status", str(data), *where, "--json")
    return len(json.loads(status.stdout)["in_progress"]) if status.stdout else -1


def _records(pg: Any, data: Path) -> list[dict[str, Any]]:
    out = pg.psql("SELECT coalesce(json_agg(r ORDER BY seq), '[]') FROM ingestd.records r")
    return list(json.loads(out))
