"""Real `python -m ingestd` processes and `simulation.py` sharing one directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import assert_stats_match_manifest, done_names, manifest_records, wait_for


def test_two_workers_share_the_work_exactly_once(tmp_path: Path, spawn, provider) -> None:
    data = tmp_path / "drop"  # does not exist yet: workers must wait for it
    a = spawn(data, "--seconds-in-min", "0.004", name="a")  # slower than arrivals: both work
    b = spawn(data, "--seconds-in-min", "0.004", name="b")
    wait_for(lambda: a.events("waiting_for_directory") and b.events("waiting_for_directory"))
    assert not data.exists()  # never created by a worker
    sim = provider(
        data, "--files", "60", "--interval-minutes", "15", "--seconds-in-min", "0.002",
        "--minutes-dist", "uniform:12:37", "--seed", "3",
    )  # fmt: skip
    assert sim.wait(timeout=60) == 0
    wait_for(lambda: len(done_names(data)) == 60, timeout=90, what="60 done records")
    assert a.terminate() == 0
    assert b.terminate() == 0

    manifest = manifest_records(data)
    counts = Counter(r["file"] for r in manifest)
    assert len(counts) == 60 and set(counts.values()) == {1}
    by_worker = Counter(r["worker"] for r in manifest)
    assert by_worker["a"] > 0 and by_worker["b"] > 0, by_worker  # the work was shared
    for proc in (a, b):
        records = proc.records()
        assert_stats_match_manifest(records, manifest, proc.name, complete=True)
        assert records[-1]["event"] == "shutdown"
        assert records[-1]["exit_code"] == 0
        assert [r["event"] for r in records].count("ready") == 1
        assert not any(r["level"] in ("error", "critical") for r in records)
    for record in manifest:
        assert record["started_at"] <= record["finished_at"]
        assert len(record["sha256"]) == 64
    assert list((data / ".ingestd" / "locks").iterdir()) == []
    verify = subprocess.run(
        [sys.executable, "-m", "ingestd", "verify", str(data), "--expect", "60"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout


def test_oldest_first_with_one_worker(tmp_path: Path, spawn) -> None:
    data = tmp_path / "drop"
    data.mkdir()
    names = [f"2018_06_28_{h:02d}_00.txt" for h in (5, 1, 3, 0, 4, 2)]
    for name in names:
        (data / name).write_text("1")
    w = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert w.wait() == 0
    assert done_names(data) == sorted(names)


def test_sigterm_drains_in_flight_work_then_exits(tmp_path: Path, spawn) -> None:
    data = tmp_path / "drop"
    data.mkdir()
    (data / "2018_06_28_00_00.txt").write_text("10")  # 10 minutes at 0.1 s = 1 s of work
    (data / "2018_06_28_00_15.txt").write_text("10")
    w = spawn(data, "--seconds-in-min", "0.1", "--drain-timeout", "5")
    wait_for(lambda: w.events("file_claimed"))
    assert w.terminate() == 0
    assert done_names(data) == ["2018_06_28_00_00.txt"]  # finished, and nothing new claimed
    assert w.records()[-1]["event"] == "shutdown"


def test_drain_timeout_releases_unfinished_claims(tmp_path: Path, spawn) -> None:
    data = tmp_path / "drop"
    data.mkdir()
    (data / "2018_06_28_00_00.txt").write_text("1000")
    w = spawn(data, "--seconds-in-min", "1", "--drain-timeout", "0.2")
    wait_for(lambda: w.events("file_claimed"))
    assert w.terminate() == 0
    shutdown = w.events("shutdown")[-1]
    assert shutdown["released_unfinished"] == ["2018_06_28_00_00.txt"]
    assert done_names(data) == []
    # Released without spending an attempt: the next worker starts at attempt 1.
    assert not (data / ".ingestd" / "locks" / "2018_06_28_00_00.txt.lock").exists()
    heir = spawn(data, "--seconds-in-min", "0.0001", "--exit-when-idle", "0.3")
    assert heir.wait() == 0
    assert heir.events("file_claimed")[0]["attempt"] == 1
    assert done_names(data) == ["2018_06_28_00_00.txt"]


def test_concurrency_runs_several_files_at_once_in_one_process(tmp_path: Path, spawn) -> None:
    data = tmp_path / "drop"
    data.mkdir()
    for i in range(6):
        (data / f"2018_06_28_00_{i:02d}.txt").write_text("5")
    w = spawn(data, "--seconds-in-min", "0.05", "--concurrency", "3", "--exit-when-idle", "0.5")
    assert w.wait() == 0
    assert sorted(done_names(data)) == [f"2018_06_28_00_{i:02d}.txt" for i in range(6)]
    claimed = [r["timestamp"] for r in w.events("file_claimed")]
    done = [r["timestamp"] for r in w.events("file_done")]
    assert claimed[2] < done[0]  # three were in hand before the first finished


def test_env_defaults_and_version(tmp_path: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", "ingestd", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("ingestd ")
    bad = subprocess.run(
        [sys.executable, "-m", "ingestd", str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, "INGESTD_CONCURRENCY": "zero"},
    )  # fmt: skip
    assert bad.returncode == 2
    assert "INGESTD_CONCURRENCY" in bad.stderr and "Traceback" not in bad.stderr


def test_records_finishing_together_are_exact_with_their_disposals(tmp_path: Path, spawn) -> None:
    """Several files in work per worker finish together and share appends (group commit):
    each is recorded once, moved or deleted by its status, and each worker's stats lines
    follow its records in manifest order."""
    data = tmp_path / "drop"
    data.mkdir()
    names = [f"2018_06_28_{i // 60:02d}_{i % 60:02d}.txt" for i in range(80)]
    bad = set(names[5::17])
    for name in names:
        (data / name).write_text("not a number\n" if name in bad else "1")
    args = ("--seconds-in-min", "0", "--concurrency", "6", "--on-done", "delete",
            "--on-failed", "move:failed", "--exit-when-idle", "1")  # fmt: skip
    workers = [spawn(data, *args, name=name) for name in ("a", "b")]
    for w in workers:
        assert w.wait(timeout=120) == 0
    manifest = manifest_records(data)
    assert Counter(r["file"] for r in manifest) == Counter(names)
    assert {r["file"] for r in manifest if r["status"] == "failed"} == bad
    assert sorted(p.name for p in data.iterdir() if p.name.endswith(".txt")) == []
    assert sorted(p.name for p in (data / "failed").iterdir()) == sorted(bad)
    for proc in workers:
        assert_stats_match_manifest(proc.records(), manifest, proc.name, complete=True)
    verify = subprocess.run(
        [sys.executable, "-m", "ingestd", "verify", str(data), "--expect", str(80 - len(bad))],
        capture_output=True, text=True,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout
