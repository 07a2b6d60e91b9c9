"""status / pause / resume / verify / failed / retry against real daemons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import done_names, manifest_records, wait_for

A, B, C = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "2018_06_28_01_00.txt"


def ingestd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", *args], capture_output=True, text=True)


def status(data: Path) -> tuple[int, dict]:
    result = ingestd("status", str(data), "--json")
    return result.returncode, json.loads(result.stdout)


def test_status_mid_file_shows_the_owner_without_disturbing_it(data: Path, spawn) -> None:
    (data / A).write_text("20")  # 20 minutes at 0.1 s: 2 s of work
    (data / C).write_text("1")
    w = spawn(data, "--seconds-in-min", "0.1", name="busy-worker")
    wait_for(lambda: w.events("file_claimed"))
    code, report = status(data)
    assert code == 0
    assert [(i["file"], i["worker"], i["attempt"]) for i in report["in_progress"]] == [
        (A, "busy-worker", 1)
    ]
    assert report["pending"] == 1  # C waits; A is in progress, not pending
    assert [b["worker"] for b in report["workers"]] == ["busy-worker"]
    assert report["workers"][0]["in_hand"].keys() == {A} or report["workers"][0]["in_hand"] == {}
    assert report["missing_slots"] == ["2018_06_28_00_15.txt", "2018_06_28_00_30.txt",
                                       "2018_06_28_00_45.txt"]  # fmt: skip
    wait_for(lambda: len(done_names(data)) == 2, what="both done")
    assert [c["attempt"] for c in w.events("file_claimed")] == [1, 1]  # nobody lost a claim
    code, report = status(data)
    assert (code, report["done"], report["low_watermark"], report["in_progress"]) == (0, 2, C, [])
    text = ingestd("status", str(data)).stdout
    assert "done 2" in text and "busy-worker" in text
    assert w.terminate() == 0
    code, report = status(data)
    assert report["workers"] == [] and report["lost_workers"] == []  # removed at clean exit


def test_pause_and_resume_the_fleet(data: Path, spawn) -> None:
    w = spawn(data, "--seconds-in-min", "0")
    wait_for(lambda: w.events("ready"))
    assert ingestd("pause", str(data)).stdout.strip() == "paused"
    assert ingestd("pause", str(data)).stdout.strip() == "already paused"
    wait_for(lambda: w.events("paused"), what="paused event")
    (data / A).write_text("1")
    time.sleep(1.0)  # several rescans: a paused worker must claim nothing
    assert w.events("file_claimed") == []
    assert status(data)[1]["paused"] is True
    assert ingestd("resume", str(data)).stdout.strip() == "resumed"
    assert ingestd("resume", str(data)).stdout.strip() == "already resumed"
    wait_for(lambda: done_names(data) == [A], what="processed after resume")
    assert w.events("resumed")
    assert w.terminate() == 0


def test_verify_catches_a_hand_made_duplicate(data: Path, spawn) -> None:
    (data / A).write_text("1")
    w = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert w.wait() == 0
    ok = ingestd("verify", str(data), "--expect", "1")
    assert ok.returncode == 0 and "OK" in ok.stdout
    manifest = data / ".ingestd" / "manifest.jsonl"
    manifest.write_text(manifest.read_text() * 2)
    bad = ingestd("verify", str(data), "--json")
    assert bad.returncode == 1
    summary = json.loads(bad.stdout)
    assert summary["duplicates"] == 1 and summary["overlaps"] == 1
    assert any("duplicate" in v for v in summary["violations"])
    (data / B).write_text("1")  # a file nobody processed
    assert "not done nor failed: " + B in ingestd("verify", str(data)).stdout


def test_failed_and_retry(data: Path, spawn) -> None:
    (data / A).write_text("garbage")
    (data / B).write_text("2")
    w = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert w.wait() == 0
    listing = ingestd("failed", str(data))
    assert listing.stdout.startswith(A + "\tbad input: not a number")
    assert status(data)[0] == 1  # a failed file needs attention
    assert ingestd("retry", str(data), B).returncode == 1  # done, not failed
    (data / A).write_text("3")  # the provider fixed it
    retried = ingestd("retry", str(data), A)
    assert retried.returncode == 0, retried.stderr
    w2 = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert w2.wait() == 0
    statuses = [(r["file"], r["status"]) for r in manifest_records(data)]
    assert statuses.count((A, "done")) == 1 and (A, "retry") in statuses  # history kept
    assert json.loads(ingestd("failed", str(data), "--json").stdout) == []
    assert status(data)[0] == 0


def test_a_stale_heartbeat_is_reported_lost(data: Path) -> None:
    workers = data / ".ingestd" / "workers"
    workers.mkdir(parents=True)
    beat = workers / "ghost.json"
    beat.write_text(json.dumps({"worker": "ghost", "interval": 1, "heartbeat_at": time.time()}))
    os.utime(beat, (time.time() - 60, time.time() - 60))  # by the state dir's clock: stale
    code, report = status(data)
    assert code == 1
    assert [b["worker"] for b in report["lost_workers"]] == ["ghost"]
    assert "LOST worker    ghost" in ingestd("status", str(data)).stdout


def test_pause_without_a_state_dir_is_a_clear_error(data: Path) -> None:
    result = ingestd("pause", str(data))
    assert result.returncode == 2 and "no state dir" in result.stderr


def test_heartbeat_age_is_judged_by_the_state_dirs_clock(data: Path) -> None:
    workers = data / ".ingestd" / "workers"
    workers.mkdir(parents=True)
    # Written just now by a host whose clock is an hour behind: alive, not lost.
    (workers / "skewed.json").write_text(
        json.dumps({"worker": "skewed", "interval": 1, "heartbeat_at": time.time() - 3600})
    )
    code, report = status(data)
    assert code == 0 and [b["worker"] for b in report["workers"]] == ["skewed"]


def test_long_lost_workers_stop_failing_status_and_can_be_pruned(data: Path) -> None:
    workers = data / ".ingestd" / "workers"
    workers.mkdir(parents=True)
    for name, age in (("recent", 60), ("ancient", 3 * 3600)):
        path = workers / f"{name}.json"
        path.write_text(json.dumps({"worker": name, "interval": 1}))
        os.utime(path, (time.time() - age, time.time() - age))
    code, report = status(data)
    assert code == 1
    assert [b["worker"] for b in report["lost_workers"]] == ["recent"]
    assert [b["worker"] for b in report["gone_workers"]] == ["ancient"]
    (workers / "recent.json").unlink()
    assert status(data)[0] == 0  # lost long ago: listed, no longer an alarm
    listed = ingestd("workers", str(data), "--prune", "--json")
    assert json.loads(listed.stdout)["pruned"] == ["ancient"]
    assert list(workers.iterdir()) == []


def test_a_running_worker_prunes_long_lost_heartbeats(data: Path, spawn) -> None:
    workers = data / ".ingestd" / "workers"
    workers.mkdir(parents=True)
    ghost = workers / "ghost.json"
    ghost.write_text(json.dumps({"worker": "ghost", "interval": 1}))
    os.utime(ghost, (time.time() - 3 * 3600, time.time() - 3 * 3600))
    w = spawn(data, "--seconds-in-min", "0")
    # The log line follows the removal: wait for the line, not for the file to go.
    pruned = wait_for(lambda: w.events("lost_workers_pruned"), what="the ghost pruned")
    assert pruned[0]["workers"] == ["ghost"] and not ghost.exists()
    w.terminate()


def test_a_far_future_name_is_counted_not_listed(data: Path) -> None:
    (data / A).write_text("1")
    (data / "9999_12_31_23_45.txt").write_text("1")
    result = subprocess.run(
        [sys.executable, "-m", "ingestd", "status", str(data), "--json"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    report = json.loads(result.stdout)
    span = datetime(9999, 12, 31, 23, 45) - datetime(2018, 6, 28)
    expected = span // timedelta(minutes=15) - 1  # every 15-minute slot in between
    assert report["missing_slot_count"] == expected
    assert report["missing_slots"][:2] == ["2018_06_28_00_15.txt", "2018_06_28_00_30.txt"]
    assert len(report["missing_slots"]) == 100
    assert f"(and {expected - 10} more)" in ingestd("status", str(data)).stdout


def test_status_has_no_none_in_its_text(data: Path) -> None:
    text = ingestd("status", str(data)).stdout
    assert "None" not in text
    assert "low watermark  - (nothing done yet)" in text and "oldest waiting -" in text


@pytest.mark.parametrize("interval", ["0", "-15", "0.001", "nan", "inf", "soon"])
def test_a_bad_interval_is_a_usage_error(data: Path, interval: str) -> None:
    result = ingestd("status", str(data), "--interval-minutes", interval)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("command", ["status", "verify", "failed", "workers", "pause"])
def test_a_missing_or_wrong_dir_is_one_line_and_exit_2(data: Path, command: str) -> None:
    (data / "file").write_text("x")
    for target, why in ((data / "typo", "no such directory"), (data / "file", "not a directory")):
        result = ingestd(command, str(target))
        assert result.returncode == 2, (command, result)
        assert result.stderr.startswith(f"ingestd: error: {why}"), result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_retry_and_pause_on_a_read_only_state_dir_are_one_line(data: Path) -> None:
    state = data / ".ingestd"
    state.mkdir()
    (state / "manifest.jsonl").write_text(
        json.dumps({"file": A, "status": "failed", "worker": "w", "error": "x"}) + "\n"
    )
    # Root ignores file modes: a read-only bind mount is what makes it read-only.
    if subprocess.run(["mount", "--bind", str(state), str(state)]).returncode != 0:
        pytest.skip("needs root to make a read-only bind mount")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(state)], check=True)
        for args in (("retry", str(data), A), ("pause", str(data))):
            result = ingestd(*args)
            assert result.returncode == 2, result
            assert result.stderr.startswith("ingestd: error: Read-only file system")
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    finally:
        subprocess.run(["umount", str(state)], check=True)


def test_status_and_verify_agree_on_invalid_name_records(data: Path) -> None:
    state = data / ".ingestd"
    state.mkdir()
    (state / "manifest.jsonl").write_text(
        json.dumps({"file": "garbage.txt", "status": "done", "worker": "w"})
        + "\n"
        + json.dumps({"file": A, "status": "done", "worker": "w", "minutes": 1})
        + "\n"
    )
    verified = json.loads(ingestd("verify", str(data), "--json").stdout)
    assert status(data)[1]["done"] == verified["done"] == 1


def test_status_names_a_symlink_planted_at_a_lock_path(data: Path) -> None:
    locks = data / ".ingestd" / "locks"
    locks.mkdir(parents=True)
    (locks / f"{A}.lock").symlink_to("/etc/passwd")
    code, report = status(data)
    assert code == 1 and report["problems"] == [
        f"{A}.lock: not a regular file (that file cannot be claimed)"
    ]
    assert f"PROBLEM        {A}.lock: not a regular file" in ingestd("status", str(data)).stdout
