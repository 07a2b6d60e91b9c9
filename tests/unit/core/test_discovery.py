"""Discovery on the memory backends: what a rescan queues, counts and says, once."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from structlog.testing import capture_logs

from ingestd.contracts.source import ScanResult
from ingestd.core.discovery import Discovery
from ingestd.core.processor import Processor
from ingestd.handlers.simulate import Options
from ingestd.handlers.simulate import handle as simulate
from ingestd.ledgers.memory import MemoryLedger
from ingestd.runtime.settings import Settings
from ingestd.sources.memory import MemorySource

A, B, C = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "2018_06_28_00_30.txt"


class Flaky(MemorySource):
    """A memory source whose listing fails while `down` is set."""

    down = False

    def scan(self, skip: Callable[[str], bool]) -> ScanResult:
        if self.down:
            raise OSError(5, "Input/output error")
        return super().scan(skip)


def discovery(source: MemorySource, ledger: MemoryLedger | None = None) -> Discovery:
    settings = Settings(source="memory", state_dir=None, worker_id="w", host="h",
                        source_id="memory", settle=0.0)  # fmt: skip
    ledger = ledger or MemoryLedger()
    log = structlog.get_logger()
    processor = Processor(settings, ledger, source, simulate, log, options=Options(0.0))
    return Discovery(settings, ledger, source, processor, log)


async def test_a_rescan_queues_the_unfinished_oldest_first_and_says_what_it_ignores() -> None:
    found = discovery(MemorySource({C: b"1", A: b"1", B: b"1", "notes.md": b"x"}))
    with capture_logs() as logs:
        await found.rescan()
        await found.rescan()
    assert found.pending == 3
    assert [found.ready.pop_nowait() for _ in range(3)] == [A, B, C]
    ignored = [e for e in logs if e["event"] == "entry_ignored"]
    assert [(e["entry"], e["reason"]) for e in ignored] == [("notes.md", "name")]  # once


async def test_finished_files_are_neither_queued_nor_counted() -> None:
    ledger = MemoryLedger()
    found = discovery(MemorySource({A: b"1", B: b"1"}), ledger)
    processor = found.processor
    assert await processor.process(A) is not None
    await found.rescan()
    assert found.pending == 1 and found.ready.pop_nowait() == B
    assert found.ready.pop_nowait() is None


async def test_a_failing_listing_is_said_once_and_its_recovery_once() -> None:
    source = Flaky({A: b"1"})
    found = discovery(source)
    source.down = True
    with capture_logs() as logs:
        assert await found.rescan() is False
        assert await found.rescan() is False
        assert found.scan_error is not None and "Input/output" in found.scan_error
        source.down = False
        assert await found.rescan() is True  # it works again
        assert await found.rescan() is False
    events = [e["event"] for e in logs if e["event"].startswith("scan_")]
    assert events == ["scan_failed", "scan_recovered"]
    assert found.scan_error is None and found.pending == 1
