"""--ledger postgresql://: real worker processes coordinating through a real PostgreSQL
server, with nothing written into the data directory."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

A = "2018_06_28_00_00.txt"


def records(pg: Any) -> list[dict[str, Any]]:
    out = pg.psql("SELECT coalesce(json_agg(r ORDER BY seq), '[]') FROM ingestd.records r")
    return list(json.loads(out))


def started(spawn, data: Path, args: list[str], *names: str) -> list[Any]:  # type: ignore[no-untyped-def]
    """Workers named `names`, once each has logged `ready`."""
    workers = [spawn(data, *args, name=name) for name in names]
    for w in workers:
        wait_for(lambda w=w: w.events("ready"))
    return workers


def ingestd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_three_workers_race_over_200_files_and_each_is_done_once(
    data: Path, spawn, pg: Any
) -> None:
    names = [f"2018_06_{d:02d}_{h:02d}_00.txt" for d in range(1, 10) for h in range(23)][:200]
    for name in names:
        (data / name).write_text("0")
    workers = [spawn(data, "--ledger", pg.url, "--seconds-in-min", "0", "--exit-when-idle", "1")
               for _ in range(3)]  # fmt: skip
    for w in workers:
        assert w.wait(timeout=120) == 0, w.text[-2000:]
    done = [r["file"] for r in records(pg) if r["status"] == "done"]
    assert Counter(done) == Counter(names)
    assert sum(len(w.events("file_done")) for w in workers) == 200
    assert not (data / ".ingestd").exists()  # nothing written into the data dir
    verify = ingestd("verify", str(data), "--ledger", pg.url, "--expect", "200")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    status = json.loads(ingestd("status", str(data), "--ledger", pg.url, "--json").stdout)
    assert (status["done"], status["pending"]) == (200, 0)


def test_a_killed_workers_file_is_taken_over_without_waiting_for_the_lease(
    data: Path, spawn, pg: Any
) -> None:
    # A server that has just (re)started gives holders a grace to take their locks again.
    wait_for(lambda: pg.psql("SELECT now() - pg_postmaster_start_time() > interval '11 s'")
             .strip() == "t", what="the restart grace over")  # fmt: skip
    (data / A).write_text("100")  # 100 minutes at 1 s each: it would never finish in time
    long_lease = ("--heartbeat-interval", "60")  # lease = 180 s: far beyond the waits below
    doomed = spawn(data, "--ledger", pg.url, "--seconds-in-min", "1", *long_lease, name="doomed")
    wait_for(lambda: doomed.events("file_claimed"))
    heir = spawn(data, "--ledger", pg.url, "--seconds-in-min", "0", *long_lease, name="heir")
    wait_for(lambda: heir.events("ready"))
    doomed.kill()
    wait_for(lambda: heir.events("file_done"), timeout=30, what="takeover by the session check")
    claim = heir.events("file_claimed")[0]
    assert claim["attempt"] == 2 and claim["taken_over_from"] == "doomed"
    assert [(r["worker"], r["status"]) for r in records(pg)] == [("heir", "done")]
    assert heir.terminate() == 0


def test_a_cut_session_is_taken_over_and_its_late_commit_fenced_out(
    data: Path, spawn, pg: Any
) -> None:
    wait_for(lambda: pg.psql("SELECT now() - pg_postmaster_start_time() > interval '11 s'")
             .strip() == "t", what="the restart grace over")  # fmt: skip
    (data / A).write_text("4")  # 4 s of work
    cut = spawn(data, "--ledger", pg.url, "--seconds-in-min", "1", name="cut")
    wait_for(lambda: cut.events("file_claimed"))
    heir = spawn(data, "--ledger", pg.url, "--seconds-in-min", "0", name="heir")
    wait_for(lambda: heir.events("ready"))
    # The database cuts every session of the worker (what a failover or an admin does),
    # while the worker is stopped: else, on a loaded machine, it may reconnect and take its
    # session lock back before the heir's next scan, and rightly keep its file.
    cut.popen.send_signal(signal.SIGSTOP)
    try:
        pg.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN (SELECT pid "
            "FROM pg_locks WHERE locktype = 'advisory' AND objid = "
            f"hashtext('{os.path.realpath(data)} cut')::oid)"
        )
        wait_for(lambda: heir.events("file_done"), timeout=30, what="takeover")
    finally:
        cut.popen.send_signal(signal.SIGCONT)
    wait_for(lambda: cut.events("duplicate_suppressed"), timeout=30, what="the late commit")
    assert [(r["worker"], r["status"]) for r in records(pg)] == [("heir", "done")]
    assert cut.popen.poll() is None  # still running
    assert cut.terminate() == 0 and heir.terminate() == 0


@pytest.mark.parametrize("concurrency", [1, 4])  # 4: records go in groups, cut mid-group
def test_a_database_restart_mid_run_loses_and_doubles_nothing(
    data: Path, spawn, pg: Any, concurrency: int
) -> None:
    names = [f"2018_06_28_{h:02d}_{m:02d}.txt" for h in range(10) for m in (0, 15, 30, 45)]
    workers = [spawn(data, "--ledger", pg.url, "--seconds-in-min", "0.002", "--concurrency",
                     str(concurrency), name=f"w{i}") for i in range(2)]  # fmt: skip
    for w in workers:
        wait_for(lambda w=w: w.events("ready"))
    for n, name in enumerate(names):
        (data / name).write_text("10")  # 20 ms of work each
        if n == 15:
            wait_for(lambda: len(records(pg)) >= 5, what="some done")
            pg.cluster.restart()  # pg_ctl restart -m immediate
    wait_for(lambda: len(records(pg)) == len(names), timeout=120, what="all recorded")
    got = records(pg)
    assert Counter(r["file"] for r in got if r["status"] == "done") == Counter(names)
    assert all(w.popen.poll() is None for w in workers)  # both still running
    for w in workers:
        assert w.terminate() == 0
    claims = [c for w in workers for c in w.events("file_claimed")]
    assert {c["attempt"] for c in claims} == {1}  # an outage spent no attempt


SLOW_TO_RECORD = textwrap.dedent(
    """
    import asyncio
    from ingestd.handlers import pg
    from ingestd.handlers.pg import OPTIONS, watermarks  # its options and watermark too

    async def handle(job):
        outcome = await pg.handle(job)
        await asyncio.sleep(0.2)  # a slow step between the load and the record
        return outcome
    """
)


def test_rows_load_record_and_done_record_commit_together_through_kills(
    data: Path, tmp_path: Path, spawn, pg: Any
) -> None:
    """--handler pg with the ledger on the same database: in every snapshot, each loaded
    file has its done record and its rows, so a kill can never leave one without the other."""
    pg.psql("CREATE TABLE t (file text, i int)")
    names = [f"2018_06_28_{h:02d}_{m:02d}.txt" for h in range(8) for m in (0, 15, 30, 45)]
    for name in names:
        (data / name).write_text("".join(f'{{"file": "{name}", "i": {i}}}\n' for i in range(3000)))
    (tmp_path / "slow.py").write_text(SLOW_TO_RECORD)
    args = ["--handler", "slow:handle", "--pg-url", pg.url, "--pg-table", "t", "--ledger", pg.url]
    workers = started(spawn, data, args, "steady", "victim0")
    snapshot = (
        "SELECT (SELECT count(*) FROM ingestd.loads), (SELECT count(*) FROM ingestd.records"
        " WHERE status = 'done'), (SELECT count(*) FROM t)"
    )
    samples: list[tuple[int, int, int]] = []
    kills = 0
    while True:
        loads, done, rows = map(int, pg.psql(snapshot).strip().split("|"))
        samples.append((loads, done, rows))
        assert loads == done and rows == 3000 * loads, samples[-5:]
        if done == len(names):
            break
        if kills < 4 and done >= 5 * (kills + 1):
            workers[-1].kill()  # SIGKILL, wherever it is: mid-COPY, mid-commit, idle
            kills += 1
            workers.append(spawn(data, *args, name=f"victim{kills}"))
        time.sleep(0.02)
        assert len(samples) < 20_000, "never finished"
    assert kills == 4 and len({s[1] for s in samples}) > 5  # sampled as it went
    counts = pg.psql("SELECT file, count(*), count(DISTINCT i) FROM t GROUP BY file ORDER BY 1")
    assert counts.split() == [f"{name}|3000|3000" for name in names]
    assert not any(w.events("already_loaded") for w in workers)  # nothing half-finished


def test_a_fleet_with_no_shared_dir_publishes_its_watermark_in_the_database(
    data: Path, spawn, pg: Any
) -> None:
    """--publish-in-order with the pg handler and this ledger: in every snapshot, a key's
    watermark has only moved forward and every file at or before it is loaded (or failed)."""
    import random

    rng = random.Random(20261129)
    pg.psql("CREATE TABLE t (file text, i int)")
    names = [f"{key}_2018_06_28_00_{15 * i:02d}.txt" for i in range(4) for key in "abc"]
    poison = "b_2018_06_28_00_30.txt"
    for name in names:
        rows = rng.randint(1, 20_000)  # files finish out of order
        text = (
            "{bad\n"
            if name == poison
            else "".join(f'{{"file": "{name}", "i": {i}}}\n' for i in range(rows))
        )
        (data / name).write_text(text)
    args = ["--handler", "pg", "--pg-url", pg.url, "--pg-table", "t", "--ledger", pg.url,
            "--publish-in-order", "--concurrency", "2", "--heartbeat-interval", "0.3"]  # fmt: skip
    workers = started(spawn, data, args, "w0", "w1")
    snapshot = (
        "SELECT json_build_object("
        "'marks', (SELECT coalesce(json_object_agg(key, published), '{}') FROM ingestd.watermarks),"
        "'loaded', (SELECT coalesce(json_agg(file), '[]') FROM ingestd.loads))"
    )
    seen: dict[str, str] = {}
    last = {key: f"{key}_2018_06_28_00_45.txt" for key in "abc"}
    killed = False
    while seen != last:
        state = json.loads(pg.psql(snapshot))
        loaded = set(state["loaded"])
        for key, mark in state["marks"].items():
            assert mark >= seen.get(key, ""), f"{key}: back from {seen[key]} to {mark}"
            seen[key] = mark
            behind = [n for n in names if n.startswith(key) and n <= mark and n != poison]
            assert set(behind) <= loaded, f"{key}: {mark} is past {set(behind) - loaded}"
        if not killed and len(loaded) >= 3:
            workers[1].kill()  # mid-file or mid-pass: the other goes on alone
            killed = True
        time.sleep(0.02)
    assert killed
    skipped = pg.psql("SELECT skipped FROM ingestd.watermarks WHERE key = 'b'")
    assert json.loads(skipped) == [poison]
    wait_for(lambda: json.loads(ingestd("status", str(data), "--ledger", pg.url, "--json")
                                .stdout)["published"] == last, what="status saying so")  # fmt: skip
    assert workers[0].terminate() == 0


def test_keyed_files_one_per_key_moved_when_done_on_the_postgresql_ledger(
    data: Path, spawn, pg: Any
) -> None:
    """Claims of several files per call meet --one-per-key (a claim given back while its key's
    earlier file is in work), --concurrency and --on-done/--on-failed: every file recorded
    once, never two of a key in work at once, each moved by its status."""
    from builders import n

    names = [n(key, 15 * i) for key in "abc" for i in range(5)]
    bad = n("b", 30)
    for name in names:
        (data / name).write_text("not a number\n" if name == bad else "3\n")
    args = ["--ledger", pg.url, "--one-per-key", "--concurrency", "2", "--seconds-in-min",
            "0.02", "--on-done", "move:done", "--on-failed", "move:failed",
            "--exit-when-idle", "1"]  # fmt: skip
    workers = [spawn(data, *args, name=f"w{i}") for i in range(2)]
    for w in workers:
        assert w.wait(timeout=120) == 0
    statuses = Counter((r["file"], r["status"]) for r in records(pg))
    assert statuses == Counter({(name, "failed" if name == bad else "done"): 1 for name in names})
    assert sorted(p.name for p in (data / "done").iterdir()) == sorted(set(names) - {bad})
    assert [p.name for p in (data / "failed").iterdir()] == [bad]
    # Per key, from the ledger's own records: each file began only after the one before it
    # was recorded (its finished_at is set before its record commits). The workers' log lines
    # cannot tell: a peer may claim the next file before the first logs `file_done`.
    kept = sorted((r["started_at"], r["finished_at"], r["file"]) for r in records(pg))
    for key in "abc":
        mine = [k for k in kept if k[2].startswith(key)]
        for (_, end, first), (start, _, second) in itertools.pairwise(mine):
            assert start >= end and second > first, (key, first, second)
