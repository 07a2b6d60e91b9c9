"""Claim lock files: flock per open file description, attempts counted across holders, unusable
lock paths."""

import errno
import json
import os
from pathlib import Path

import pytest
from builders import owner

from ingestd.ledgers.file import claim as claims


def test_second_claim_in_another_descriptor_is_busy(locks: Path) -> None:
    held = claims.try_claim(locks, "a.txt")
    # flock locks belong to the open file description, so even this process is refused.
    with pytest.raises(claims.Busy):
        claims.try_claim(locks, "a.txt")
    held.finish()
    assert not (locks / "a.txt.lock").exists()
    again = claims.try_claim(locks, "a.txt")
    again.finish()


def test_begin_counts_attempts_across_holders(locks: Path) -> None:
    first = claims.try_claim(locks, "a.txt")
    assert first.begin(owner("w1")) == 1
    first.release()  # the holder died: the owner record stays
    second = claims.try_claim(locks, "a.txt")
    assert (second.previous_owner.worker, second.previous_owner.attempt) == ("w1", 1)
    assert second.begin(owner("w2")) == 2
    second.finish()


def test_abandon_restores_the_previous_owner(locks: Path) -> None:
    first = claims.try_claim(locks, "a.txt")
    first.begin(owner("w1"))
    first.release()
    second = claims.try_claim(locks, "a.txt")
    second.begin(owner("w2"))
    second.abandon()
    assert json.loads((locks / "a.txt.lock").read_text())["attempt"] == 1
    fresh = claims.try_claim(locks, "b.txt")
    fresh.begin(owner("w"))
    fresh.abandon()
    assert not (locks / "b.txt.lock").exists()


def test_finish_abandon_release_are_idempotent(locks: Path) -> None:
    held = claims.try_claim(locks, "a.txt")
    held.finish()
    held.abandon()
    held.release()
    held.finish()


def test_symlinked_lock_file_is_not_followed(locks: Path, tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("precious")
    (locks / "a.txt.lock").symlink_to(target)
    with pytest.raises(claims.Unusable):
        claims.try_claim(locks, "a.txt")
    assert target.read_text() == "precious"


def test_unlinked_inode_is_not_a_claim(locks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The owner unlinks the lock file between our open and our flock: we must start over."""
    owner = claims.try_claim(locks, "a.txt")
    real_flock = claims.fcntl.flock
    calls = []

    def flock_after_owner_finishes(fd: int, op: int) -> None:
        if not calls:
            owner.finish()  # owner commits, unlinks and releases while we sit between steps
        calls.append(fd)
        real_flock(fd, op)

    monkeypatch.setattr(claims.fcntl, "flock", flock_after_owner_finishes)
    ours = claims.try_claim(locks, "a.txt")
    # The stale inode was locked first, then dropped; we hold the file at the path now.
    assert os.fstat(ours.fd).st_ino == (locks / "a.txt.lock").stat().st_ino
    assert len(calls) == 2  # the lock on the orphaned inode was won, seen stale, dropped
    assert ours.lost == 1
    assert os.fstat(ours.fd).st_nlink == 1
    with pytest.raises(claims.Busy):
        claims.try_claim(locks, "a.txt")
    ours.finish()


def test_probe_sees_a_live_owner_without_taking_it(locks: Path) -> None:
    held = claims.try_claim(locks, "a.txt")
    held.begin(owner("w1"))
    alive, found = claims.probe(locks / "a.txt.lock")
    assert alive and found is not None and found.worker == "w1"
    with pytest.raises(claims.Busy):
        claims.try_claim(locks, "a.txt")  # still held by its owner
    held.release()
    alive, found = claims.probe(locks / "a.txt.lock")
    assert not alive and found is not None


def test_a_shorter_owner_record_ignores_stale_bytes_after_it(locks: Path) -> None:
    first = claims.try_claim(locks, "a.txt")
    first.begin(owner("a-very-long-worker-name-" * 4))
    first.release()
    second = claims.try_claim(locks, "a.txt")
    second.begin(owner("w2"))
    second.release()
    third = claims.try_claim(locks, "a.txt")
    assert (third.previous_owner.worker, third.previous_owner.attempt) == ("w2", 2)
    third.finish()


def test_a_directory_or_fifo_at_the_lock_path_is_unusable(locks: Path) -> None:
    (locks / "a.txt.lock").mkdir()
    os.mkfifo(locks / "b.txt.lock")
    for name in ("a.txt", "b.txt"):
        with pytest.raises(claims.Unusable):
            claims.try_claim(locks, name)
    assert claims.unusable_lock_paths(locks) == ["a.txt.lock", "b.txt.lock"]


def test_enoent_on_create_starts_over(locks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On NFS a peer's unlink between lookup and create fails O_CREAT with ENOENT."""
    real_open = claims.os.open
    calls = []

    def flaky_open(path: object, flags: int, *args: int) -> int:
        calls.append(path)
        if len(calls) == 1:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(claims.os, "open", flaky_open)
    claim = claims.try_claim(locks, "a.txt")
    assert len(calls) == 2 and claim.lost == 1
    claim.finish()
