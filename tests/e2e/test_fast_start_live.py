"""A fast start with real workers: a directory that appears is noticed by its parent's events, not
the poll; a file complete before anyone looked is not held back a settle period."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import done_names, wait_for

NAME = "2018_06_28_00_00.txt"


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
