"""Housekeeping: `--on-done`/`--on-failed` move or delete finished files, only once recorded,
and a crash between the record and the move is finished by the next scan."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import manifest_records, wait_for

from ingestd.source import Changed, Content, Disposal
from ingestd.sources.local import LocalSource
from ingestd.sources.memory import MemorySource

NAMES = [f"2018_06_28_{i // 4:02d}_{i % 4 * 15:02d}.txt" for i in range(40)]


def test_disposal_is_keep_delete_or_move_somewhere() -> None:
    assert Disposal.parse("keep") == Disposal() and str(Disposal.parse("delete")) == "delete"
    assert Disposal.parse("move:done") == Disposal("move", "done")
    for bad in ("move", "move:", "move:/", "archive", "mv:x"):
        with pytest.raises(ValueError, match="keep, delete or move:DIR"):
            Disposal.parse(bad)


def test_sources_move_and_delete_idempotently(tmp_path: Path) -> None:
    source = LocalSource(tmp_path)
    (tmp_path / NAMES[0]).write_text("12\n")
    (tmp_path / NAMES[1]).write_text("13\n")
    (tmp_path / "done").mkdir()
    first = Content(source.version(NAMES[0]))
    source.dispose(NAMES[0], Disposal("move", "done"), first)
    assert (tmp_path / "done" / NAMES[0]).read_text() == "12\n"
    with pytest.raises(FileNotFoundError):  # a peer did it: callers ignore this
        source.dispose(NAMES[0], Disposal("move", "done"), first)
    source.dispose(NAMES[1], Disposal("delete"), Content(source.version(NAMES[1])))
    assert sorted(os.listdir(tmp_path)) == ["done"]
    memory = MemorySource({NAMES[0]: b"1"})
    memory.dispose(NAMES[0], Disposal("delete"), Content(memory.version(NAMES[0])))
    with pytest.raises(FileNotFoundError):
        memory.dispose(NAMES[0], Disposal("delete"), Content(None))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("kind", ["local", "memory"])
@pytest.mark.parametrize("action", ["delete", "move"])
def test_a_redelivery_with_other_content_is_kept_and_the_same_content_is_disposed(
    tmp_path: Path, kind: str, action: str
) -> None:
    """Disposal happens only while the source holds what was processed; never replacing."""
    data = tmp_path / "drop"
    (data / "done").mkdir(parents=True)
    source: Any = LocalSource(data) if kind == "local" else MemorySource()

    def put(content: bytes) -> Content:
        if kind == "local":
            (data / NAMES[0]).unlink(missing_ok=True)
            (data / NAMES[0]).write_bytes(content)
        else:
            source.put(NAMES[0], content)
        return Content(source.version(NAMES[0]), _sha(content))

    disposal = Disposal(action, "done") if action == "move" else Disposal("delete")
    processed = put(b"12\n")
    source.dispose(NAMES[0], disposal, processed)  # the first delivery: disposed
    newer = put(b"13\n")
    with pytest.raises(Changed) as changed:
        source.dispose(NAMES[0], disposal, processed)  # other content: kept, untouched
    assert changed.value.sha256 == newer.sha256 and changed.value.version == newer.version
    assert source.version(NAMES[0]) == newer.version
    put(b"12\n")  # the same bytes delivered again: nothing to lose, disposed
    source.dispose(NAMES[0], disposal, processed)
    assert source.version(NAMES[0]) is None
    if kind == "local":
        # The archive's original was never replaced.
        expected = [NAMES[0]] if action == "move" else []
        assert sorted(os.listdir(data / "done")) == expected
        if action == "move":
            assert (data / "done" / NAMES[0]).read_bytes() == b"12\n"


def test_a_move_never_replaces_what_its_target_holds(tmp_path: Path) -> None:
    source = LocalSource(tmp_path)
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / NAMES[0]).write_text("an archived original\n")
    (tmp_path / NAMES[0]).write_text("12\n")
    source.dispose(NAMES[0], Disposal("move", "done"), Content(source.version(NAMES[0])))
    names = sorted(os.listdir(tmp_path / "done"))
    assert names[0] == NAMES[0] and names[1].startswith(NAMES[0] + ".") and len(names) == 2
    assert (tmp_path / "done" / NAMES[0]).read_text() == "an archived original\n"
    assert (tmp_path / "done" / names[1]).read_text() == "12\n"


def test_a_move_target_removed_at_run_time_is_an_error_not_a_peer(tmp_path: Path) -> None:
    source = LocalSource(tmp_path)
    (tmp_path / NAMES[0]).write_text("12\n")
    with pytest.raises(OSError, match="does not exist") as raised:
        source.dispose(NAMES[0], Disposal("move", "done"), Content(source.version(NAMES[0])))
    assert not isinstance(raised.value, FileNotFoundError)
    assert (tmp_path / NAMES[0]).read_text() == "12\n"


def test_a_move_across_filesystems_copies_then_removes(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    target = Path(shm / f"ingestd-test-{os.getpid()}")
    target.mkdir()
    try:
        (tmp_path / NAMES[0]).write_bytes(b"x" * 3_000_000)
        LocalSource(tmp_path).dispose(NAMES[0], Disposal("move", str(target)), Content())
        assert os.listdir(target) == [NAMES[0]] and not (tmp_path / NAMES[0]).exists()
        assert (target / NAMES[0]).stat().st_size == 3_000_000
    finally:
        for path in target.iterdir():
            path.unlink()
        target.rmdir()


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


@pytest.mark.parametrize("noreplace", [True, False])
def test_a_move_never_replaces_with_or_without_renameat2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noreplace: bool
) -> None:
    """Where the C library or the filesystem has no RENAME_NOREPLACE (NFS), a hard link and
    an unlink do the same; either way a taken name is never replaced."""
    from ingestd.sources import local

    if not noreplace:
        monkeypatch.setattr(local, "_renameat2", None)
    (tmp_path / "done").mkdir()
    for content in ("first\n", "second\n", "first\n"):
        (tmp_path / NAMES[0]).write_text(content)
        local.move_into(tmp_path / NAMES[0], tmp_path / "done")
        assert not (tmp_path / NAMES[0]).exists()
    names = sorted(os.listdir(tmp_path / "done"))
    assert names[0] == NAMES[0] and len(names) == 2  # the same bytes again: not kept twice
    assert (tmp_path / "done" / NAMES[0]).read_text() == "first\n"
    assert (tmp_path / "done" / names[1]).read_text() == "second\n"
