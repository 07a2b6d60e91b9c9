"""The local source's clock and lease probe: a file complete before anyone looked is not held back
a settle period."""

from __future__ import annotations

import os
import time
from pathlib import Path

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
