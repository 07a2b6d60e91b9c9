"""status / pause / resume / verify / failed / retry against real daemons."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

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
    (workers / "ghost.json").write_text(
        json.dumps({"worker": "ghost", "interval": 1, "heartbeat_at": time.time() - 60})
    )
    code, report = status(data)
    assert code == 1
    assert [b["worker"] for b in report["lost_workers"]] == ["ghost"]
    assert "LOST worker    ghost" in ingestd("status", str(data)).stdout


def test_pause_without_a_state_dir_is_a_clear_error(data: Path) -> None:
    result = ingestd("pause", str(data / "nowhere"))
    assert result.returncode == 2 and "no state dir" in result.stderr
