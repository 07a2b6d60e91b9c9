"""The observer thread, its death and restart, and the directory scan, in-process."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs
from watchdog.events import FileClosedEvent, FileCreatedEvent, FileDeletedEvent, FileMovedEvent

from ingestd.commands.compose import build_daemon
from ingestd.runtime.settings import Settings
from ingestd.sources import watcher as watcher_module
from ingestd.sources.local import scan
from ingestd.sources.watcher import Watcher, classify

NAME = "2018_06_28_00_00.txt"


def test_classify_events() -> None:
    assert classify(FileClosedEvent(f"/d/{NAME}")) == ("written", NAME)
    assert classify(FileMovedEvent(f"/d/.{NAME}.tmp", f"/d/{NAME}")) == ("written", NAME)
    assert classify(FileCreatedEvent(f"/d/{NAME}")) == ("changed", NAME)
    assert classify(FileDeletedEvent(f"/d/{NAME}")) is None
    assert classify(FileClosedEvent("/d/notes.txt")) is None


def test_scan_judges_entries_without_following_links(tmp_path: Path) -> None:
    (tmp_path / NAME).write_text("1")
    (tmp_path / "2018_06_28_00_15.txt").mkdir()
    (tmp_path / "2018_06_28_00_30.txt").symlink_to(tmp_path / NAME)
    os.mkfifo(tmp_path / "2018_06_28_00_45.txt")
    (tmp_path / "2018_06_28_01_00.txt").write_text("done already")
    (tmp_path / ".ingestd").mkdir()
    (tmp_path / "junk").write_text("")
    result = scan(tmp_path, skip=lambda n: n == "2018_06_28_01_00.txt", hide=".ingestd")
    assert list(result.candidates) == [NAME]
    assert result.ignored == {
        "2018_06_28_00_15.txt": "directory",
        "2018_06_28_00_30.txt": "symlink",
        "2018_06_28_00_45.txt": "fifo",
        "junk": "name",
    }


async def next_event(queue: asyncio.Queue[tuple[str, str]]) -> tuple[str, str]:
    while True:
        event = await asyncio.wait_for(queue.get(), 5)
        if event[0] == "written":
            return event


async def test_observer_death_is_noticed_and_it_restarts(tmp_path: Path) -> None:
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    log = structlog.get_logger()
    w = Watcher(tmp_path, asyncio.get_running_loop(), lambda k, n: queue.put_nowait((k, n)), log)
    assert w.start()
    try:
        (tmp_path / NAME).write_text("1")
        assert await next_event(queue) == ("written", NAME)
        w._observer.stop()  # the thread dies under us
        w._observer.join()
        with capture_logs() as logs:
            w.ensure_alive()
        assert [e["event"] for e in logs] == ["observer_died"]
        assert w.restarts == 1
        (tmp_path / "2018_06_28_00_15.txt").write_text("1")
        assert await next_event(queue) == ("written", "2018_06_28_00_15.txt")
    finally:
        w.stop()


async def test_an_exception_in_the_handler_does_not_kill_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    calls = []

    def explode(event: object) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise ValueError("boom")
        return original(event)  # type: ignore[arg-type]

    original = watcher_module.classify
    monkeypatch.setattr(watcher_module, "classify", explode)
    w = Watcher(tmp_path, asyncio.get_running_loop(), lambda k, n: queue.put_nowait((k, n)),
                structlog.get_logger())  # fmt: skip
    w.start()
    try:
        with capture_logs() as logs:
            (tmp_path / NAME).write_text("1")
            assert await next_event(queue) == ("written", NAME)
        assert "watch_event_error" in [e["event"] for e in logs]
        assert w._observer.is_alive()
    finally:
        w.stop()


async def test_daemon_restarts_a_dead_observer_and_misses_nothing(tmp_path: Path) -> None:
    settings = Settings(
        source=str(tmp_path), source_id=str(tmp_path),
        state_dir=tmp_path / ".ingestd", worker_id="t", host="h", output_dir=tmp_path / "out",
        seconds_in_min=0, rescan_interval=0.1, settle=0.1, exit_when_idle=0.5,
    )  # fmt: skip
    daemon = build_daemon(settings, structlog.get_logger())
    with capture_logs() as logs:
        task = asyncio.create_task(daemon.run())
        while not any(e["event"] == "ready" for e in logs):  # noqa: ASYNC110 - polls a list
            await asyncio.sleep(0.02)
        assert daemon.ticking.watcher is not None
        daemon.ticking.watcher._observer.stop()
        daemon.ticking.watcher._observer.join()
        (tmp_path / NAME).write_text("1")  # no observer to see it: the rescan must
        assert await asyncio.wait_for(task, 10) == 0
    events = [e["event"] for e in logs]
    assert "observer_died" in events
    assert daemon.processor.recording.stats.count == 1
    assert daemon.ledger.is_finished(NAME)
