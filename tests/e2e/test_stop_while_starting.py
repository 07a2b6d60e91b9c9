"""A stop asked for while a worker is still starting (importing its handler, reaching its
ledger) ends it at once with exit 0: it holds nothing yet, so there is nothing to drain."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

from conftest import wait_for


def test_sigterm_while_the_handler_is_still_importing_exits_0(
    tmp_path: Path, data: Path, spawn
) -> None:
    marker = tmp_path / "importing"
    (tmp_path / "slowstart.py").write_text(textwrap.dedent(f"""
        import pathlib, time
        pathlib.Path({str(marker)!r}).touch()
        time.sleep(30)  # a heavy import, a slow mount

        def handle(job):
            return 1.0
    """))  # fmt: skip
    (data / "2018_06_28_00_00.txt").write_text("1")
    worker = spawn(data, "--handler", "slowstart:handle", env={"PYTHONPATH": str(tmp_path)})
    wait_for(marker.exists, what="the handler importing")
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    assert "stopped by SIGTERM while starting; nothing was claimed" in worker.text
    assert not worker.events("file_claimed")
