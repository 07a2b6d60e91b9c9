"""The daemon's start-up, in-process."""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from ingestd.daemon import Daemon
from ingestd.handlers import simulate
from ingestd.settings import Settings


def test_peers_with_the_same_pid_prepare_the_state_dir_at_once(tmp_path: Path) -> None:
    # Workers on two hosts (or in two containers) can both be PID 1 and start together;
    # threads of one process are the same case on one machine.
    settings = Settings(data_dir=tmp_path, state_dir=tmp_path / ".ingestd", worker_id="t",
                        host="h")  # fmt: skip
    daemons = [Daemon(settings, simulate, structlog.get_logger()) for _ in range(8)]
    start = threading.Barrier(len(daemons))
    errors: list[BaseException] = []

    def prepare(daemon: Daemon) -> None:
        start.wait()
        for _ in range(200):
            try:
                daemon._prepare_state_dir()
            except Exception as exc:  # collected: the assertion below shows them
                errors.append(exc)

    threads = [threading.Thread(target=prepare, args=(d,)) for d in daemons]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for daemon in daemons:
        daemon.manifest.close()
    assert errors == []
    assert sorted(p.name for p in settings.state_dir.iterdir()) == ["locks", "workers"]
