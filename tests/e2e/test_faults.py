"""Faults and hostile input against real worker processes: each must leave nothing lost,
nothing doubled, and the worker running."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import done_names, manifest_records, read_json_log, wait_for

from ingestd.ledgers.file.manifest import Manifest

GOOD = "2018_06_28_00_00.txt"


def write(data: Path, name: str, content: str | bytes) -> Path:
    path = data / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_bad_input_is_failed_with_a_reason_and_the_worker_keeps_going(data: Path, spawn) -> None:
    bad = {
        "2018_06_28_01_00.txt": "twelve",
        "2018_06_28_01_15.txt": "nan",
        "2018_06_28_01_30.txt": "-3",
        "2018_06_28_01_45.txt": "",
        "2018_06_28_02_00.txt": "9" * 10_000_000,  # 10 MB: read is capped, not slurped
    }
    for name, content in bad.items():
        write(data, name, content)
    (data / "2018_06_28_02_15.txt").mkdir()  # a directory named like a file
    (data / "2018_06_28_02_30.txt").symlink_to("/etc/passwd")  # pointing outside DIR
    os.mkfifo(data / "2018_06_28_02_45.txt")  # opening it would hang a careless worker
    longest = "x" * 251 + ".txt"  # NAME_MAX: Linux has no 10 kB names, this is the longest
    for name in ("notes.md", ".2018_06_28_03_00.txt.tmp", "2020_02_30_00_00.txt", "a\nb\x1b[31m",
                 longest):  # fmt: skip
        write(data, name, "1")
    w = spawn(data, "--seconds-in-min", "0")
    wait_for(lambda: len(manifest_records(data)) == len(bad), what="bad files recorded")
    write(data, GOOD, "1")
    wait_for(lambda: done_names(data) == [GOOD], what="a good file after the bad ones")
    records = {r["file"]: r for r in manifest_records(data)}
    for name in bad:
        assert records[name]["status"] == "failed"
        assert records[name]["error"].startswith("bad input:")
    assert "4096" in records["2018_06_28_02_00.txt"]["error"]
    ignored = {r["entry"]: r["reason"] for r in w.events("entry_ignored")}
    assert ignored["2018_06_28_02_15.txt"] == "directory"
    assert ignored["2018_06_28_02_30.txt"] == "symlink"
    assert ignored["2018_06_28_02_45.txt"] == "fifo"
    assert ignored["a\\nb\\x1b[31m"] == "name"
    assert ignored["2020_02_30_00_00.txt"] == "name"
    assert list(ignored).count("notes.md") == 1  # logged once, not at every scan
    assert ignored["x" * 120 + "..."] == "name"  # bounded in the log
    assert len(w.events("file_failed")) == len(bad)
    assert w.popen.poll() is None  # still running
    assert w.terminate() == 0
    # Failed files are never retried.
    again = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert again.wait() == 0
    assert again.events("file_claimed") == []


def test_a_killed_workers_file_is_taken_over(data: Path, spawn) -> None:
    write(data, GOOD, "1000")  # long enough to be killed in the middle
    doomed = spawn(data, "--seconds-in-min", "1", name="doomed")
    wait_for(lambda: doomed.events("file_claimed"))
    heir = spawn(data, "--seconds-in-min", "0", name="heir")
    wait_for(lambda: heir.events("ready"))
    doomed.kill()
    wait_for(lambda: done_names(data) == [GOOD], what="takeover")
    claim = heir.events("file_claimed")[0]
    assert claim["attempt"] == 2 and claim["taken_over_from"] == "doomed"
    assert manifest_records(data)[0]["worker"] == "heir"
    assert heir.terminate() == 0


CRASHY = textwrap.dedent(
    """
    import os, signal
    from ingestd.handlers.simulate import OPTIONS, handle as simulate  # its options too

    async def handle(job):
        if job.head.strip() == b"crash":
            os.kill(os.getpid(), signal.SIGKILL)  # the handler takes the whole process down
        return await simulate(job)
    """
)


def test_a_file_that_keeps_killing_workers_becomes_poison(
    data: Path, tmp_path: Path, spawn
) -> None:
    (tmp_path / "crashy.py").write_text(CRASHY)
    write(data, GOOD, "crash")
    write(data, "2018_06_28_00_15.txt", "1")
    env = {"PYTHONPATH": str(tmp_path)}
    args = ("--seconds-in-min", "0", "--handler", "crashy:handle", "--max-attempts", "3")
    for restart in range(3):  # what systemd's Restart=on-failure does
        w = spawn(data, *args, env=env, name=f"r{restart}")
        assert w.wait(timeout=30) == -9
    last = spawn(data, *args, "--exit-when-idle", "0.5", env=env, name="last")
    assert last.wait(timeout=30) == 0
    records = {r["file"]: r for r in manifest_records(data)}
    assert records[GOOD]["status"] == "failed"
    assert records[GOOD]["error"].startswith("poison")
    assert records[GOOD]["attempt"] == 4
    assert records["2018_06_28_00_15.txt"]["status"] == "done"
    assert not (data / ".ingestd" / "locks" / f"{GOOD}.lock").exists()


def test_lock_files_left_by_killed_workers_are_removed(data: Path, spawn) -> None:
    # A worker killed after its record was fsynced but before it unlinked its lock file
    # leaves one behind. Staged here: the records, and lock files with owner records.
    done, failed, held = GOOD, "2018_06_28_00_15.txt", "2018_06_28_00_30.txt"
    for name in (done, failed, held):
        write(data, name, "1")
    state = data / ".ingestd"
    (state / "locks").mkdir(parents=True)
    manifest = Manifest(state / "manifest.jsonl", state / "manifest.lock")
    for name in (done, held):
        manifest.commit({"file": name, "status": "done", "worker": "dead", "minutes": 1.0})
    manifest.commit({"file": failed, "status": "failed", "worker": "dead", "error": "bad input"})
    manifest.close()
    owner = json.dumps({"worker": "dead", "attempt": 1}).encode() + b"\n"
    for name in (done, failed, held):
        (state / "locks" / f"{name}.lock").write_bytes(owner)
    # A live peer still holds this one (it is between its fsync and its unlink).
    with open(state / "locks" / f"{held}.lock", "rb") as peer:
        fcntl.flock(peer, fcntl.LOCK_EX)
        w = spawn(data, "--seconds-in-min", "0")
        wait_for(lambda: w.events("leftover_locks_removed"), what="leftovers removed")
        assert sorted(p.name for p in (state / "locks").iterdir()) == [f"{held}.lock"]
        assert sorted(w.events("leftover_locks_removed")[0]["files"]) == [done, failed]
    assert len(manifest_records(data)) == 3  # nothing processed again, nothing recorded
    wait_for(lambda: not (state / "locks" / f"{held}.lock").exists(), what="released one removed")
    assert w.events("file_claimed") == []
    assert w.terminate() == 0


def test_a_worker_id_live_on_another_host_is_warned_about(data: Path, spawn) -> None:
    workers = data / ".ingestd" / "workers"
    workers.mkdir(parents=True)
    now = time.time()
    elsewhere = {"worker": "dup", "host": "other-host", "pid": 1, "interval": 5.0,
                 "heartbeat_at": now}  # fmt: skip
    (workers / "dup.json").write_text(json.dumps(elsewhere))
    # Our own host's last run, killed a moment ago: a restart, not a duplicate.
    here = {**elsewhere, "worker": "mine", "host": socket.gethostname(), "pid": 99999}
    (workers / "mine.json").write_text(json.dumps(here))
    dup = spawn(data, "--seconds-in-min", "0", name="dup")
    mine = spawn(data, "--seconds-in-min", "0", name="mine")
    assert dup.wait() == 2  # refused: one line, as the PostgreSQL ledger refuses it
    [refused] = dup.events("startup_failed")
    assert "worker_id_in_use" in refused["error"] and "other-host" in refused["error"]
    wait_for(lambda: mine.events("ready"), what="the restarted one ready")
    assert mine.terminate() == 0


def test_two_processes_under_one_id_are_seen_at_any_time_and_the_later_stops(
    data: Path, spawn
) -> None:
    w = spawn(data, "--worker-id", "same", "--heartbeat-interval", "0.2")
    beat = data / ".ingestd" / "workers" / "same.json"
    wait_for(beat.exists, what="its first heartbeat")
    # Another live process (this test's own pid, on this host), started earlier, writes
    # heartbeats under the same id: the running worker sees it at its next beat.
    other = {"worker": "same", "host": socket.gethostname(), "pid": os.getpid(),
             "interval": 60.0, "heartbeat_at": time.time(), "instance": "elsewhere",
             "started_at": "2000-01-01T00:00:00+00:00"}  # fmt: skip
    temp = beat.with_suffix(".tmp")
    temp.write_text(json.dumps(other))
    temp.rename(beat)
    assert w.wait(timeout=30) == 2
    [clash] = w.events("worker_id_in_use")
    assert clash["action"] == "stopping: started later" and clash["other_pid"] == os.getpid()
    assert json.loads(beat.read_text())["instance"] == "elsewhere"  # the other's, untouched


def test_torn_manifest_line_is_skipped_once_and_closed(data: Path, spawn) -> None:
    state = data / ".ingestd"
    state.mkdir()
    whole = json.dumps({"file": GOOD, "status": "done", "worker": "old", "minutes": 1}) + "\n"
    (state / "manifest.jsonl").write_text(whole + '{"file":"2018_06_28_00_15.txt","sta')
    write(data, GOOD, "1")
    write(data, "2018_06_28_00_15.txt", "2")
    w = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.5")
    assert w.wait() == 0
    assert len(w.events("manifest_bad_line")) == 1
    assert Counter(done_names(data)) == {GOOD: 1, "2018_06_28_00_15.txt": 1}
    lines = (state / "manifest.jsonl").read_text().splitlines()
    assert lines[1] == '{"file":"2018_06_28_00_15.txt","sta'  # closed, not rewritten


LOSER = textwrap.dedent(
    """
    from dataclasses import dataclass
    from pathlib import Path

    from ingestd.handlers import Outcome
    from ingestd.ledgers.file.manifest import Manifest

    @dataclass
    class Options:
        state_dir: Path

    OPTIONS = Options

    def handle(job):
        # While we work, a peer that took the file over (our claim was lost) records it done.
        state = job.options.state_dir
        peer = Manifest(state / "manifest.jsonl", state / "manifest.lock")
        peer.commit({"file": job.name, "status": "done", "worker": "peer", "minutes": 1.0})
        peer.close()
        return Outcome(minutes=1.0)
    """
)


def test_a_lost_claim_never_writes_a_second_record(data: Path, tmp_path: Path, spawn) -> None:
    (tmp_path / "loser.py").write_text(LOSER)
    write(data, GOOD, "1")
    w = spawn(data, "--handler", "loser:handle", "--exit-when-idle", "0.5",
              env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert w.wait() == 0
    assert [r["worker"] for r in manifest_records(data)] == ["peer"]
    assert len(w.events("duplicate_suppressed")) == 1
    assert w.events("file_done") == []
    assert w.events("shutdown")[-1]["files_processed"] == 0


@pytest.mark.parametrize("watch", ["--watch", "--no-watch"])
def test_slow_writes_are_never_read_half_written(data: Path, spawn, provider, watch: str) -> None:
    w = spawn(data, "--seconds-in-min", "0", watch, "--settle", "0.3")
    wait_for(lambda: w.events("ready"))
    sim = provider(
        data, "--files", "12", "--interval-minutes", "15", "--seconds-in-min", "0.005",
        "--slow-write", "--arrivals", str(data.parent / "arrivals.jsonl"),
    )  # fmt: skip
    assert sim.wait(timeout=60) == 0
    wait_for(lambda: len(manifest_records(data)) == 12, what="12 records")
    arrivals = [
        json.loads(line) for line in (data.parent / "arrivals.jsonl").read_text().splitlines()
    ]
    expected = {a["file"]: float(a["minutes"]) for a in arrivals}
    records = manifest_records(data)
    assert all(r["status"] == "done" for r in records), [r.get("error") for r in records]
    assert {r["file"]: r["minutes"] for r in records} == expected
    assert w.terminate() == 0


def test_vanishing_files_are_skipped(data: Path, spawn) -> None:
    w = spawn(data, "--seconds-in-min", "0", "--settle", "0")
    wait_for(lambda: w.events("ready"))
    for i in range(30):
        path = write(data, f"2018_06_28_00_{i:02d}.txt", "1")
        path.unlink()
    write(data, GOOD.replace("00_00", "23_59"), "1")
    wait_for(lambda: done_names(data) == ["2018_06_28_23_59.txt"], what="the survivor")
    assert w.popen.poll() is None
    assert w.terminate() == 0


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "256k"):
    path.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True, capture_output=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs root to mount a tmpfs (the OSError path is unit-tested)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass  # full: that was the point
    finally:
        os.close(fd)
    return filler


def test_disk_full_while_recording_marks_nothing_done_and_retries(
    data: Path, tmp_path: Path, spawn
) -> None:
    with tiny_tmpfs(tmp_path / "state") as state:
        write(data, GOOD, "10")  # 10 minutes at 0.1 s: 1 s of work
        w = spawn(data, "--seconds-in-min", "0.1", "--state-dir", str(state))
        wait_for(lambda: w.events("file_claimed"))
        filler = fill(state)
        wait_for(
            lambda: w.events("commit_failed") or w.events("claim_failed"), what="a write error"
        )
        assert done_names_in(state) == []
        filler.unlink()
        wait_for(lambda: done_names_in(state) == [GOOD], timeout=30, what="retry after space frees")
        assert w.popen.poll() is None
        assert w.events("task_crashed") == []
        claims = w.events("file_claimed")
        assert [c["attempt"] for c in claims] == [1] * len(claims)  # no attempt was spent
        assert w.terminate() == 0


def test_a_full_state_dir_is_said_once_and_backs_off_for_the_whole_worker(
    data: Path, tmp_path: Path, spawn
) -> None:
    with tiny_tmpfs(tmp_path / "state") as state:
        for i in range(20):
            write(data, f"2018_06_28_{i:02d}_00.txt", "1")  # 0.1 s of work each
        w = spawn(data, "--seconds-in-min", "0.1", "--state-dir", str(state))
        wait_for(lambda: w.events("file_claimed"))
        filler = fill(state)
        wait_for(
            lambda: w.events("commit_failed") or w.events("claim_failed"), what="a write error"
        )
        time.sleep(3)  # a dozen rescans; every queued file is ready to be tried
        failures = w.events("commit_failed") + w.events("claim_failed")
        runs_while_full = len(w.events("file_claimed"))
        filler.unlink()
        wait_for(lambda: len(done_names_in(state)) == 20, timeout=60, what="all 20 once free")
        assert len(failures) == 1, failures  # one line for the streak, not one per try
        assert failures[0]["streak"] == "started"
        # While full, the worker waited (0.2, 0.4, 0.8, 1.6 s: a handful of tries) instead of
        # running the handler for each of the 19 queued files in turn.
        assert runs_while_full < 10, runs_while_full
        assert w.events("stall_ended")
        assert w.terminate() == 0


def done_names_in(state: Path) -> list[str]:
    path = state / "manifest.jsonl"
    return (
        [r["file"] for r in read_json_log(path) if r["status"] == "done"] if path.exists() else []
    )


def test_unusable_state_dir_is_one_line_and_exit_2(data: Path, tmp_path: Path, spawn) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    w = spawn(data, "--state-dir", str(blocker / "state"))
    assert w.wait() == 2
    text = w.text
    assert "Traceback" not in text
    assert "ingestd: error: state dir" in text


def test_a_done_file_rewritten_with_new_content_is_reported(data: Path, spawn) -> None:
    write(data, GOOD, "1")
    w = spawn(data, "--seconds-in-min", "0")
    wait_for(lambda: done_names(data) == [GOOD])
    write(data, GOOD, "1")  # same content again: nothing to report
    write(data, GOOD, "2")  # changed after it was done
    wait_for(lambda: w.events("file_changed_after_done"), what="the change reported")
    changed = w.events("file_changed_after_done")
    assert len(changed) == 1 and changed[0]["file"] == GOOD
    assert changed[0]["recorded_sha256"] == manifest_records(data)[0]["sha256"]
    assert done_names(data) == [GOOD]  # reported, not processed again
    assert w.terminate() == 0


def test_directory_vanishing_mid_run_is_logged_once_and_survived(
    data: Path, tmp_path: Path, spawn
) -> None:
    # What an NFS mount going away looks like from the worker: the directory is gone.
    w = spawn(data, "--seconds-in-min", "0", "--state-dir", str(tmp_path / "state"))
    wait_for(lambda: w.events("ready"))
    data.rename(tmp_path / "away")
    wait_for(lambda: w.events("scan_failed"), what="scan_failed")
    time.sleep(0.6)  # several more rescans
    assert len(w.events("scan_failed")) == 1  # logged once, not at every rescan
    data.mkdir()  # back, as a new directory (a remount): the observer must watch the new one
    wait_for(lambda: w.events("observer_restarted"), what="observer restarted")
    write(data, GOOD, "1")
    wait_for(lambda: w.events("file_done"), what="processed after the directory came back")
    wait_for(lambda: w.events("scan_recovered"), what="scan_recovered")
    assert w.popen.poll() is None
    assert w.terminate() == 0
