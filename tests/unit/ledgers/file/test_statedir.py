"""The state dir: peers preparing it at once."""

from __future__ import annotations

import threading
from pathlib import Path

from ingestd.ledgers.file.statedir import prepare_state_dir
from ingestd.runtime.settings import Settings


def test_peers_with_the_same_pid_prepare_the_state_dir_at_once(tmp_path: Path) -> None:
    # Workers on two hosts (or in two containers) can both be PID 1 and start together;
    # threads of one process are the same case on one machine.
    settings = Settings(source=str(tmp_path), source_id=str(tmp_path),
                        state_dir=tmp_path / ".ingestd", worker_id="t", host="h")  # fmt: skip
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def prepare() -> None:
        start.wait()
        for _ in range(200):
            try:
                prepare_state_dir(settings.state_dir)
            except Exception as exc:  # collected: the assertion below shows them
                errors.append(exc)

    threads = [threading.Thread(target=prepare) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in settings.state_dir.iterdir()) == ["locks", "workers"]


def test_a_state_dir_says_its_format_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    import json

    import pytest

    from ingestd.contracts.errors import StartupError
    from ingestd.ledgers.file.statedir import FORMAT, SOURCE_FILE, claim_source

    state = tmp_path / ".ingestd"
    state.mkdir()
    claim_source(state, "src", None)
    written = json.loads((state / SOURCE_FILE).read_text())
    assert written == {"source": "src", "inode": None, "format": FORMAT}
    claim_source(state, "src", None)  # its own format: taken
    (state / SOURCE_FILE).write_text(json.dumps({"source": "src", "inode": None}))
    claim_source(state, "src", None)  # none said: format 1, as before formats were written
    (state / SOURCE_FILE).write_text(json.dumps({**written, "format": FORMAT + 1}))
    with pytest.raises(StartupError, match=f"format {FORMAT + 1}, newer than this ingestd"):
        claim_source(state, "src", None)
