"""A fast start: a directory that appears is noticed by its parent's events, not the poll;
a file complete before anyone looked (closed, or older than --settle by the filesystem's own
clock) is not held back a settle period."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import done_names, wait_for

from ingestd.sources.local import LocalSource, no_writer

NAME = "2018_06_28_00_00.txt"


def test_the_lease_probe_tells_an_open_writer_from_a_closed_file(tmp_path: Path) -> None:
    path = tmp_path / NAME
    with open(path, "w") as writer:
        writer.write("12\n")
        assert no_writer(path) is False
    assert no_writer(path) is True
    assert no_writer(tmp_path / "missing.txt") is None


def test_the_clock_is_the_filesystems_and_leaves_nothing_behind(tmp_path: Path) -> None:
    state = tmp_path / ".ingestd"
    state.mkdir()
    source = LocalSource(tmp_path, hide=".ingestd", clock_dir=state)
    before = time.time_ns()
    clock = source.clock()
    assert clock is not None and abs(clock - before) < 5e9  # the same kernel here
    assert os.listdir(state) == [] and os.listdir(tmp_path) == [".ingestd"]


def test_a_directory_made_later_is_noticed_by_events_not_the_poll(tmp_path: Path, spawn) -> None:
    data = tmp_path / "a" / "b" / "drop"  # three levels still to come
    # A poll this slow would not find it within the wait below: only the watch can.
    w = spawn(data, "--rescan-interval", "120", "--seconds-in-min", "0")
    wait_for(lambda: w.events("waiting_for_directory"), what="waiting")
    data.parent.parent.mkdir()  # each level wakes it and moves its watch one level down
    data.parent.mkdir()
    data.mkdir()
    wait_for(lambda: w.events("ready"), timeout=20, what="the directory noticed")
    (data / NAME).write_text("12\n")
    wait_for(lambda: done_names(data) == [NAME], timeout=20, what="its first file done")


def test_files_complete_before_the_worker_looked_are_not_held_back(data: Path, spawn) -> None:
    old, closed, writing = NAME, "2018_06_28_00_15.txt", "2018_06_28_00_30.txt"
    (data / old).write_text("12\n")
    hour_ago = time.time() - 3600
    os.utime(data / old, (hour_ago, hour_ago))  # unchanged for an hour
    (data / closed).write_text("13\n")  # just written, and closed
    with open(data / writing, "w") as writer:
        writer.write("1")  # still open for writing: must wait
        # No events and a settle of two minutes: only the two shortcuts can make files ready.
        w = spawn(data, "--no-watch", "--settle", "120", "--seconds-in-min", "0")
        wait_for(lambda: sorted(done_names(data)) == [old, closed], timeout=20, what="two done")
        time.sleep(0.5)  # a few more scans
        assert writing not in done_names(data)
    assert w.terminate() == 0


def test_a_filesystem_without_leases_is_asked_once(tmp_path: Path, monkeypatch) -> None:
    import errno
    import fcntl

    from ingestd.sources import local

    (tmp_path / NAME).write_text("12\n")
    asked = []

    def no_leases(fd: int, command: int, *args: object) -> int:
        if command == fcntl.F_SETLEASE:
            asked.append(fd)
            raise OSError(errno.EINVAL, "leases not supported (as on NFS)")
        return 0

    monkeypatch.setattr(local.fcntl, "fcntl", no_leases)
    source = LocalSource(tmp_path)
    assert source.is_closed(NAME) is None and source.is_closed(NAME) is None
    assert len(asked) == 1  # then no more round trips: files settle as they always did
