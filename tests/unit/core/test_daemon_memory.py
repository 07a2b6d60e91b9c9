"""The core is backend-neutral: it runs on in-memory backends (the layers themselves are
checked by `lint-imports` in `make lint`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from structlog.testing import capture_logs

from ingestd.core.daemon import Daemon
from ingestd.handlers.simulate import Options
from ingestd.handlers.simulate import handle as simulate
from ingestd.ledgers.memory import MemoryInspector, MemoryLedger, MemoryStore
from ingestd.runtime.settings import Settings
from ingestd.sources.memory import MemorySource


async def test_two_daemons_share_the_work_on_memory_backends(tmp_path: Path) -> None:
    store = MemoryStore()
    names = [f"2018_06_28_{h:02d}_{m:02d}.txt" for h in range(3) for m in (0, 15, 30, 45)]
    source = MemorySource({name: b"0.5" for name in names})
    daemons = []
    for worker in ("a", "b"):
        settings = Settings(
            source=str(tmp_path), source_id=str(tmp_path),
            state_dir=tmp_path / "unused", worker_id=worker, host="h",
            seconds_in_min=0.02, rescan_interval=0.1, exit_when_idle=0.5,
        )  # fmt: skip
        daemons.append(
            Daemon(
                settings,
                source,
                MemoryLedger(store),
                simulate,
                structlog.get_logger(),
                options=Options(seconds_in_min=0.02),
            )
        )
    with capture_logs():
        late = asyncio.get_running_loop().call_later(0.2, source.put, "2018_06_28_05_00.txt", b"1")
        codes = await asyncio.wait_for(asyncio.gather(*(d.run() for d in daemons)), 30)
        late.cancel()
    assert codes == [0, 0]
    records = list(MemoryInspector(store).records())
    assert sorted(r.file for r in records) == sorted([*names, "2018_06_28_05_00.txt"])
    assert {r.worker for r in records} == {"a", "b"}  # both did work
    assert all(r.status == "done" for r in records)
