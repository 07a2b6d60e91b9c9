"""One file through the claim protocol, in-process, with faults injected where a real one
cannot be staged (root reads every file, so "permission denied" is simulated)."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import threading
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from ingestd.core.processor import Processor
from ingestd.core.recording import Result
from ingestd.handlers.simulate import Options
from ingestd.handlers.simulate import handle as simulate
from ingestd.ledgers.file import claim as claim_module
from ingestd.ledgers.file.kind import KIND as FILE_LEDGER
from ingestd.runtime.settings import Settings
from ingestd.sources import local as local_module
from ingestd.sources.local import LocalSource

NAME = "2018_06_28_00_00.txt"


@pytest.fixture
def worker(tmp_path: Path) -> Processor:
    settings = Settings(source=str(tmp_path), source_id=str(tmp_path), state_dir=tmp_path / ".s",
                        worker_id="t", host="h", seconds_in_min=0)  # fmt: skip
    (settings.state_dir / "locks").mkdir(parents=True)
    (settings.state_dir / "workers").mkdir()
    ledger = FILE_LEDGER.for_run(settings, structlog.get_logger(), lambda: None)
    source = LocalSource(tmp_path, hide=".s")
    yield Processor(settings, ledger, source, simulate, structlog.get_logger(),
                    options=Options(seconds_in_min=0))  # fmt: skip
    ledger.close()


async def test_done_file_is_recorded_and_the_lock_file_removed(
    worker: Processor, tmp_path: Path
) -> None:
    (tmp_path / NAME).write_text("7")
    with capture_logs() as logs:
        assert await worker.process(NAME) is Result.DONE
    assert [e["event"] for e in logs] == ["file_claimed", "file_done"]
    assert worker.ledger.manifest.is_finished(NAME)
    assert list(worker.ledger.locks_dir.iterdir()) == []
    assert await worker.process(NAME) is Result.SKIPPED


async def test_unreadable_file_is_given_back_without_spending_an_attempt(
    worker: Processor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / NAME).write_text("7")
    real_open = os.open

    def denied(path: object, flags: int, *args: int) -> int:
        if str(path).endswith(NAME) and "locks" not in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(local_module.os, "open", denied)
    with capture_logs() as logs:
        assert await worker.process(NAME) is Result.RETRY
    assert [e["event"] for e in logs] == ["file_unreadable"]
    assert list(worker.ledger.locks_dir.iterdir()) == []  # no attempt recorded
    monkeypatch.undo()
    with capture_logs() as logs:
        assert await worker.process(NAME) is Result.DONE
    assert logs[0]["attempt"] == 1


async def test_handler_crash_spends_an_attempt(worker: Processor, tmp_path: Path) -> None:
    (tmp_path / NAME).write_text("7")

    async def crash(job: object) -> None:
        raise RuntimeError("handler bug")

    worker.handler = crash  # type: ignore[assignment]
    with capture_logs() as logs:
        assert await worker.process(NAME) is Result.RETRY
    assert logs[-1]["event"] == "handler_error"
    worker.handler = simulate
    with capture_logs() as logs:
        assert await worker.process(NAME) is Result.DONE
    assert logs[0]["attempt"] == 2


async def test_a_name_in_hand_is_not_claimed_twice_in_one_process(worker: Processor) -> None:
    worker.in_hand[NAME] = 0.0
    assert await worker.process(NAME) is Result.BUSY


async def test_process_first_takes_the_oldest_claimable_and_gives_back_the_rest(
    worker: Processor, tmp_path: Path
) -> None:
    from ingestd.ledgers.file import claim as claims

    names = [f"2018_06_28_00_{i:02d}.txt" for i in range(4)]
    for name in names:
        (tmp_path / name).write_text("1")
    peer = claims.try_claim(worker.ledger.locks_dir, names[0])  # a peer holds the oldest
    given_back: list[str] = []
    with capture_logs() as logs:
        results = await worker.process_first(names, {}, given_back.append)
    assert results == {names[0]: Result.BUSY, names[1]: Result.DONE}
    assert given_back == names[2:]  # untried, handed back at once
    assert [e["event"] for e in logs] == ["peer_busy", "file_claimed", "file_done"]
    assert worker.in_hand == {}
    peer.release()


async def test_leftover_lock_files_of_finished_files_are_removed_and_no_others(
    worker: Processor,
) -> None:
    locks = worker.ledger.locks_dir
    done, retried, held = NAME, "2018_06_28_00_15.txt", "2018_06_28_00_30.txt"
    worker.ledger.manifest.commit({"file": done, "status": "done", "worker": "dead"})
    worker.ledger.manifest.commit({"file": held, "status": "done", "worker": "dead"})
    worker.ledger.manifest.commit({"file": retried, "status": "failed", "worker": "dead"})
    worker.ledger.manifest.commit({"file": retried, "status": "retry", "worker": "operator"})
    owner = b'{"worker": "dead", "attempt": 3}\n'
    for name in (done, retried, held):
        (locks / f"{name}.lock").write_bytes(owner)
    fd = os.open(locks / f"{held}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a live holder: never disturbed
        removed = await worker.remove_leftovers([done, retried, held])
    finally:
        os.close(fd)
    assert removed == [done]
    assert {p.name for p in locks.iterdir()} == {f"{held}.lock", f"{retried}.lock"}
    assert (locks / f"{retried}.lock").read_bytes() == owner  # attempt count kept as it was
    assert worker.in_hand == {} and worker.sweeping == set()


async def test_a_lock_file_being_swept_is_excluded_but_not_reported_as_work(
    worker: Processor, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker.ledger.manifest.commit({"file": NAME, "status": "done", "worker": "dead"})
    (worker.ledger.locks_dir / f"{NAME}.lock").write_bytes(b"{}\n")
    entered, let_go = threading.Event(), threading.Event()
    real_try_claim = claim_module.try_claim

    def slow_try_claim(locks_dir: Path, name: str) -> claim_module.Claim:
        entered.set()
        let_go.wait(timeout=30)
        return real_try_claim(locks_dir, name)

    monkeypatch.setattr(claim_module, "try_claim", slow_try_claim)
    sweep = asyncio.create_task(worker.remove_leftovers([NAME]))
    assert await asyncio.to_thread(entered.wait, 10)
    assert worker.in_hand == {}  # heartbeats and the shutdown report show files in work only
    assert await worker.process(NAME) is Result.BUSY  # but no task of ours may claim it now
    let_go.set()
    assert await sweep == [NAME]


async def test_an_environment_error_spends_no_attempt_and_stalls_the_worker_once(
    worker: Processor, tmp_path: Path
) -> None:
    (tmp_path / NAME).write_text("7")

    async def read_only(job: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", "/out/x.tsv")

    worker.handler = read_only  # type: ignore[assignment]
    with capture_logs() as logs:
        assert await worker.process(NAME) is Result.STALLED
        assert await worker.process(NAME) is Result.STALLED
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["handler_retry_later"]  # once per streak
    assert "Read-only file system" in errors[0]["error"]
    assert worker.recording.stall.delay(asyncio.get_running_loop().time()) > 0
    assert list(worker.ledger.locks_dir.iterdir()) == []  # no attempt recorded
    worker.handler = simulate
    with capture_logs() as logs:
        assert await worker.process(NAME) is Result.DONE
    assert logs[0]["attempt"] == 1
    assert "stall_ended" in [e["event"] for e in logs]


async def test_retry_later_from_a_handler_spends_no_attempt(
    worker: Processor, tmp_path: Path
) -> None:
    from ingestd.contracts.errors import RetryLater

    (tmp_path / NAME).write_text("7")

    async def unreachable(job: object) -> None:
        raise RetryLater("database unreachable")

    worker.handler = unreachable  # type: ignore[assignment]
    assert await worker.process(NAME) is Result.STALLED
    assert list(worker.ledger.locks_dir.iterdir()) == []
    assert not worker.ledger.manifest.is_finished(NAME)


async def test_own_retry_is_not_a_takeover_and_poison_keeps_the_last_error(
    worker: Processor, tmp_path: Path
) -> None:
    (tmp_path / NAME).write_text("7")

    async def crash(job: object) -> None:
        raise ValueError("cannot parse row 7")

    worker.handler = crash  # type: ignore[assignment]
    worker.settings = worker.settings.__class__(**{**worker.settings.__dict__, "max_attempts": 2})
    with capture_logs() as logs:
        for _ in range(3):
            await worker.process(NAME)
    claimed = [e for e in logs if e["event"] == "file_claimed"]
    assert [e.get("taken_over_from") for e in claimed] == [None, None, None]
    assert [e.get("retry") for e in claimed] == [None, True, True]
    assert worker.redone == 0
    owner_errors = [e["error"] for e in logs if e["event"] == "handler_error"]
    assert owner_errors == ["ValueError: cannot parse row 7"] * 2
    record = worker.ledger.manifest.last_record(NAME)
    assert record is not None and record["status"] == "failed"
    assert record["error"].startswith("poison: 2 attempts")
    assert "last error: ValueError: cannot parse row 7" in record["error"]


@pytest.mark.parametrize("minutes", [float("nan"), float("inf"), -1.0])
async def test_a_handler_result_that_is_not_a_real_duration_is_a_crash(
    worker: Processor, tmp_path: Path, minutes: float
) -> None:
    (tmp_path / NAME).write_text("7")

    async def bogus(job: object) -> object:
        from ingestd.handlers import to_outcome

        return to_outcome(minutes)

    worker.handler = bogus  # type: ignore[assignment]
    with capture_logs() as logs:
        assert await worker.process(NAME) is Result.RETRY
    assert "finite and >= 0" in next(e for e in logs if e["event"] == "handler_error")["error"]
    assert not worker.ledger.manifest.is_finished(NAME)  # nothing like NaN reaches the manifest


async def test_a_symlink_at_the_lock_path_blocks_only_that_file(
    worker: Processor, tmp_path: Path
) -> None:
    other = "2018_06_28_00_15.txt"
    (tmp_path / NAME).write_text("1")
    (tmp_path / other).write_text("1")
    target = tmp_path / "elsewhere"
    (worker.ledger.locks_dir / f"{NAME}.lock").symlink_to(target)
    with capture_logs() as logs:
        results = await worker.process_first([NAME, other], {})
    assert results == {NAME: Result.RETRY, other: Result.DONE}
    assert "lock_path_unusable" in [e["event"] for e in logs]
    assert not target.exists()  # never followed
    assert worker.recording.stall.failures == 0  # one bad path does not stall the worker


async def test_a_removed_state_dir_is_made_again(worker: Processor, tmp_path: Path) -> None:
    import shutil

    from ingestd.ledgers.file.ledger import RECREATE_GRACE

    (tmp_path / NAME).write_text("1")
    shutil.rmtree(worker.settings.state_dir)
    with capture_logs() as logs:
        assert await worker.process(NAME) is Result.STALLED
    assert "state_dir_recreated" in [e["event"] for e in logs]
    assert worker.ledger.locks_dir.is_dir()
    # Live holders get a moment (RECREATE_GRACE) to put their lock files back; the claim
    # waits it out instead of giving the file up.
    assert RECREATE_GRACE > 0
    assert await worker.process(NAME) is Result.DONE
