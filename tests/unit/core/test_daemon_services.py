"""The daemon's services one at a time, on the memory backends: each says a trouble once when
it starts and once when it ends, and reports what the others need."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from structlog.testing import capture_logs

from ingestd.contracts.ledger import Heartbeat
from ingestd.core.daemon import Daemon
from ingestd.core.daemon.publishing import Publishing
from ingestd.core.publishing.plan import Marks
from ingestd.core.publishing.publisher import PassReport
from ingestd.handlers.simulate import Options
from ingestd.handlers.simulate import handle as simulate
from ingestd.ledgers.memory import MemoryInspector, MemoryLedger, MemoryStore
from ingestd.runtime.settings import Settings
from ingestd.sources.memory import MemorySource


def daemon(store: MemoryStore | None = None, ledger: MemoryLedger | None = None) -> Daemon:
    settings = Settings(source="memory", state_dir=None, worker_id="w", host="h",
                        source_id="memory", heartbeat_interval=0.01)  # fmt: skip
    ledger = ledger or MemoryLedger(store)
    return Daemon(settings, MemorySource(), ledger, simulate, structlog.get_logger(),
                  options=Options(0.0))  # fmt: skip


class Failing:
    """A publisher whose passes fail `times` times, then work."""

    def __init__(self, times: int) -> None:
        self.times = times

    def run(self) -> PassReport:
        if self.times > 0:
            self.times -= 1
            raise OSError("the output dir is gone")
        return PassReport(marks=Marks(published={"": "2018_06_28_00_00.txt"}))


async def test_a_failing_publishing_pass_is_said_once_and_its_recovery_once() -> None:
    shared = daemon().shared
    publishing = Publishing(shared, Failing(3), None)  # type: ignore[arg-type]
    with capture_logs() as logs:
        for _ in range(3):
            await publishing.run_pass()
            assert publishing.error == "the output dir is gone"  # heartbeats carry it
        await publishing.run_pass()
    assert [e["event"] for e in logs] == ["publish_failed", "publish_recovered"]
    assert publishing.error is None and publishing.published == {"": "2018_06_28_00_00.txt"}


class Unwritable(MemoryLedger):
    failing = True

    def write_heartbeat(self, beat: Heartbeat) -> None:
        if self.failing:
            raise OSError("No space left on device")
        super().write_heartbeat(beat)


async def test_a_failing_heartbeat_is_said_once_and_the_probe_says_why() -> None:
    store = MemoryStore()
    ledger = Unwritable(store)
    worker = daemon(ledger=ledger)
    with capture_logs() as logs:
        task = asyncio.create_task(worker.heartbeats.loop())
        while len([e for e in logs if e["event"] == "heartbeat_failed"]) < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # a few more failing beats
        assert worker.shared.probes.beat_error == "No space left on device"
        ledger.failing = False
        while not MemoryInspector(store).workers():  # noqa: ASYNC110 - polls the store
            await asyncio.sleep(0.01)
        task.cancel()
    events = [e["event"] for e in logs if e["event"].startswith("heartbeat_")]
    assert events == ["heartbeat_failed", "heartbeat_recovered"]
    (beat,) = MemoryInspector(store).workers()
    assert (beat.worker, beat.state, beat.instance) == ("w", "running", worker.heartbeats.instance)


async def test_the_fleets_pause_stops_claims_and_is_said_once_each_way(tmp_path: Path) -> None:
    store = MemoryStore()
    worker = daemon(store)
    inspector = MemoryInspector(store)
    with capture_logs() as logs:
        inspector.set_paused(True)
        await worker.claiming.check_pause()
        await worker.claiming.check_pause()
        assert worker.shared.paused and worker.shared.probes.paused
        assert worker.shared.status_line().startswith("paused:")
        inspector.set_paused(False)
        await worker.claiming.check_pause()
    assert [e["event"] for e in logs] == ["paused", "resumed"]
    assert not worker.shared.paused
