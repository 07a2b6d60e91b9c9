"""`--on-done`/`--on-failed` with real workers: files moved or deleted only once recorded, and a
crash between the record and the move finished by the next scan."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path

from conftest import manifest_records, wait_for

NAMES = [f"2018_06_28_{i // 4:02d}_{i % 4 * 15:02d}.txt" for i in range(40)]


def test_an_unusable_move_target_is_one_line_and_exit_2(data: Path, spawn) -> None:
    (data / "blocker").write_text("a file where the directory should be")
    w = spawn(data, "--on-done", "move:blocker/done")
    assert w.wait(timeout=30) == 2
    assert "--on-done target" in w.text and "Traceback" not in w.text
    same = spawn(data, "--on-failed", f"move:{data}")
    assert same.wait(timeout=30) == 2 and "the watched directory itself" in same.text
    (data.parent / "alias").symlink_to(data)  # a symlink to DIR is DIR
    alias = spawn(data, "--on-done", f"move:{data.parent / 'alias'}")
    assert alias.wait(timeout=30) == 2 and "the watched directory itself" in alias.text


def test_a_move_target_removed_while_workers_run_is_dispose_failed(data: Path, spawn) -> None:
    (data / NAMES[0]).write_text("1")
    w = spawn(data, "--on-done", "move:done", "--seconds-in-min", "0")
    wait_for(lambda: w.events("file_disposed"), what="the first one moved")
    (data / "done" / NAMES[0]).unlink()
    (data / "done").rmdir()  # an operator tidies up under a running fleet
    (data / NAMES[1]).write_text("1")
    wait_for(lambda: w.events("dispose_failed"), what="the failure said")
    assert "does not exist" in w.events("dispose_failed")[0]["error"]
    assert (data / NAMES[1]).exists()  # kept in place, tried again at the next scan
    assert w.terminate() == 0


def test_move_under_sigkill_storms_never_loses_a_file_or_keeps_two(data: Path, spawn) -> None:
    moved, failed = data / "done", data.parent / "failed"
    rng = random.Random(20261123)
    for name in NAMES:
        (data / name).write_text(f"{rng.randint(12, 37)}\n")
    (data / "2018_06_28_23_45.txt").write_text("not a number\n")  # goes to failed/
    everything = [*NAMES, "2018_06_28_23_45.txt"]
    # More attempts than kills: three kills in a row on one file's holders would make it
    # poison (failed by design), and the storm is about moves, not poison.
    args = ("--seconds-in-min", "0.004", "--on-done", "move:done",
            "--on-failed", f"move:{failed}", "--exit-when-idle", "2",
            "--max-attempts", "10")  # fmt: skip
    workers = [spawn(data, *args, name=f"w{i}") for i in range(3)]
    violations: list[str] = []

    def audit() -> None:
        # Listings first, records after: a file moved by the time of the listing was
        # recorded before it (the record comes first), so the later read must show it.
        there = set(os.listdir(data))
        gone_to = set(os.listdir(moved)) if moved.exists() else set()
        failed_to = set(os.listdir(failed)) if failed.exists() else set()
        status = {r["file"]: r["status"] for r in manifest_records(data)}
        for name in everything:
            places = (name in there) + (name in gone_to) + (name in failed_to)
            if places != 1:
                violations.append(f"{name} in {places} places")
            if name in gone_to and status.get(name) != "done":
                violations.append(f"{name} moved before its done record")
            if name in failed_to and status.get(name) != "failed":
                violations.append(f"{name} moved to failed/ before its record")

    kills = 0
    deadline = time.monotonic() + 90
    while len(os.listdir(moved) if moved.exists() else []) < len(NAMES):
        assert time.monotonic() < deadline, "the storm never finished"
        time.sleep(rng.uniform(0.05, 0.25))
        audit()
        if kills < 8:
            victim = rng.randrange(len(workers))
            workers[victim].kill()
            kills += 1
            workers[victim] = spawn(data, *args, name=f"w{victim}-{kills}")
    for w in workers:
        assert w.wait(timeout=60) == 0
    audit()
    assert violations == []
    assert sorted(os.listdir(moved)) == NAMES
    assert os.listdir(failed) == ["2018_06_28_23_45.txt"]
    assert sorted(os.listdir(data)) == [".ingestd", "done"]
    done = Counter(r["file"] for r in manifest_records(data) if r["status"] == "done")
    assert sorted(done) == NAMES and set(done.values()) == {1}


def test_a_crash_between_record_and_move_is_finished_by_the_next_scan(data: Path, spawn) -> None:
    (data / NAMES[0]).write_text("12\n")
    # Recorded first with --on-done keep (as if a worker died right after its record)...
    first = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert first.wait(timeout=30) == 0
    assert (data / NAMES[0]).exists()
    # ...then a worker that deletes done files finds it at its first scan.
    second = spawn(data, "--on-done", "delete", "--exit-when-idle", "0.5")
    assert second.wait(timeout=30) == 0
    assert not (data / NAMES[0]).exists()
    assert second.events("file_disposed")[0]["via"] == "scan"
    wait_for(lambda: len(manifest_records(data)) == 1, what="still one record")
