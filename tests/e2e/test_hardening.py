"""Real worker processes under what a hostile operator does: restarts mid-file, a replaced
manifest, a starved thread pool, SIGHUP, a closed pipe, a second Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from conftest import done_names, manifest_records, wait_for

A = "2018_06_28_00_00.txt"

# A sync handler that sleeps, writing when it starts and ends (pid, file, time) to a log.
SLEEPER = textwrap.dedent(
    """
    import json, os, time

    def handle(job):
        log = os.environ["SLEEPER_LOG"]
        def mark(what):
            with open(log, "a") as out:
                out.write(json.dumps({"what": what, "pid": os.getpid(), "file": job.name,
                                      "t": time.time()}) + "\\n")
        mark("start")
        time.sleep(float(os.environ.get("SLEEPER_SECONDS", "15")))
        mark("end")
        return 1.0
    """
)


def marks(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def sleeper_env(tmp_path: Path, seconds: float) -> dict[str, str]:
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    return {
        "PYTHONPATH": str(tmp_path),
        "SLEEPER_LOG": str(tmp_path / "marks.jsonl"),
        "SLEEPER_SECONDS": str(seconds),
    }


def test_a_threaded_handler_never_runs_beside_the_peer_that_takes_its_file(
    data: Path, tmp_path: Path, spawn
) -> None:
    env = sleeper_env(tmp_path, 15)
    (data / A).write_text("1")
    first = spawn(data, "--handler", "sleeper:handle", "--drain-timeout", "2", env=env)
    wait_for(lambda: marks(tmp_path / "marks.jsonl"), what="the handler to start")
    first.popen.send_signal(signal.SIGTERM)
    second = spawn(data, "--handler", "sleeper:handle", env={**env, "SLEEPER_SECONDS": "0.1"})
    assert first.wait(timeout=10) == 0  # ends after the drain, not after the 15 s thread
    exited_at = time.time()
    wait_for(lambda: done_names(data) == [A], timeout=30, what="the peer to finish it")
    starts = [m for m in marks(tmp_path / "marks.jsonl") if m["what"] == "start"]
    assert [m["pid"] for m in starts] == [first.popen.pid, second.popen.pid]
    assert starts[1]["t"] >= exited_at - 0.5  # the peer began only once the first was gone
    assert [m["pid"] for m in marks(tmp_path / "marks.jsonl") if m["what"] == "end"] == [
        second.popen.pid
    ]
    still = first.events("handler_still_running")
    assert still and still[0]["files"] == [A]
    assert first.events("shutdown")[-1]["still_running"] == [A]
    # Given back without spending an attempt: the peer's run is attempt 1.
    assert [r["attempt"] for r in manifest_records(data)] == [1]
    second.terminate()


def test_handlers_get_their_own_threads_and_heartbeats_go_on(
    data: Path, tmp_path: Path, spawn
) -> None:
    env = sleeper_env(tmp_path, 6)
    for i in range(8):
        (data / f"2018_06_28_00_{i:02d}.txt").write_text("1")
    w = spawn(data, "--handler", "sleeper:handle", "--concurrency", "8",
              "--heartbeat-interval", "0.5", env=env)  # fmt: skip
    beat = data / ".ingestd" / "workers" / "w0.json"
    wait_for(lambda: len(marks(tmp_path / "marks.jsonl")) == 8, timeout=20, what="8 handlers")
    first = beat.stat().st_mtime
    wait_for(lambda: beat.stat().st_mtime > first + 1, timeout=5, what="heartbeats while busy")
    assert len({m["file"] for m in marks(tmp_path / "marks.jsonl")}) == 8
    wait_for(lambda: len(done_names(data)) == 8, timeout=30, what="all 8 done")
    assert w.terminate() == 0


def test_a_manifest_renamed_away_never_makes_a_file_run_twice(data: Path, spawn) -> None:
    (data / A).write_text("0")
    workers = [spawn(data, "--seconds-in-min", "0") for _ in range(2)]
    wait_for(lambda: done_names(data) == [A], what="the first file")
    # Both workers read the manifest at their rescans (0.2 s): let them see A done first. (A
    # worker that never read A's record cannot know it once the file is moved away: README.)
    time.sleep(1.0)
    state = data / ".ingestd"
    (state / "manifest.jsonl").rename(state / "manifest.jsonl.1")
    b = "2018_06_28_00_15.txt"
    (data / b).write_text("0")
    wait_for(lambda: b in done_names(data), what="the new file")
    time.sleep(1.5)  # several rescans: a stale reader would claim it again and again
    assert Counter(r["file"] for r in manifest_records(data)) == {b: 1}
    for w in workers:
        assert w.terminate() == 0
    assert sum(len(w.events("file_done")) for w in workers) == 2
    assert any(w.events("manifest_replaced") for w in workers)


def test_sighup_drains_like_sigterm(data: Path, spawn) -> None:
    w = spawn(data, "--seconds-in-min", "0")
    wait_for(lambda: w.events("ready"))
    w.popen.send_signal(signal.SIGHUP)
    assert w.wait(timeout=10) == 0
    assert w.events("stop_requested")[0]["signal"] == "SIGHUP"
    assert w.events("shutdown")


def test_sigint_exits_130_and_a_second_one_exits_at_once(data: Path, tmp_path: Path, spawn) -> None:
    env = sleeper_env(tmp_path, 30)
    (data / A).write_text("1")
    w = spawn(data, "--handler", "sleeper:handle", "--drain-timeout", "60", env=env)
    wait_for(lambda: marks(tmp_path / "marks.jsonl"), what="the handler to start")
    w.popen.send_signal(signal.SIGINT)
    wait_for(lambda: w.events("draining"), what="draining")
    assert "again" in w.events("stop_requested")[0]["hint"]
    w.popen.send_signal(signal.SIGINT)
    assert w.wait(timeout=5) == 130
    assert w.events("forced_exit")

    quiet = spawn(data, "--seconds-in-min", "0", name="quiet")
    wait_for(lambda: quiet.events("ready") or quiet.popen.poll() is not None)
    quiet.popen.send_signal(signal.SIGINT)
    assert quiet.wait(timeout=10) == 130


def test_a_closed_pipe_ends_the_worker_without_a_traceback(data: Path, tmp_path: Path) -> None:
    (data / A).write_text("0")
    command = (
        f"{sys.executable} -m ingestd run {data} --log-format json --seconds-in-min 0 "
        "--rescan-interval 0.2 | head -1"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr


def test_exit_when_idle_fires_while_waiting_for_a_missing_dir(tmp_path: Path, spawn) -> None:
    w = spawn(tmp_path / "never", "--exit-when-idle", "0.5")
    assert w.wait(timeout=10) == 0
    assert w.events("idle_exit")


def test_final_stats_only_when_they_add_something(data: Path, spawn) -> None:
    idle = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.3")
    assert idle.wait() == 0
    assert idle.events("stats") == []  # "Files processed: 0" says nothing
    for i in range(5):
        (data / f"2018_06_28_00_{i:02d}.txt").write_text("0")
    five = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.3")
    assert five.wait() == 0
    assert [s["files_processed"] for s in five.events("stats")] == [5]  # not repeated


def test_two_workers_with_one_id_on_one_host_are_refused(data: Path, spawn) -> None:
    first = spawn(data, "--seconds-in-min", "0", name="same")
    wait_for(lambda: first.events("ready"))
    wait_for(lambda: (data / ".ingestd" / "workers" / "same.json").exists())
    log = data.parent / "same-again.log"
    with open(log, "wb") as out:
        second = subprocess.Popen(
            [sys.executable, "-m", "ingestd", str(data), "--worker-id", "same",
             "--log-format", "json", "--exit-when-idle", "0.2", "--rescan-interval", "0.2"],
            stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy(),
        )  # fmt: skip
    assert second.wait(timeout=20) == 2
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any("worker_id_in_use" in e.get("error", "") for e in events)
    first.terminate()


def test_atomic_writers_temp_files_are_not_reported(data: Path, spawn, provider) -> None:
    w = spawn(data, "--seconds-in-min", "0")
    wait_for(lambda: w.events("ready"))
    sim = provider(data, "--files", "20", "--seconds-in-min", "0.002", "--atomic", "--slow-write")
    assert sim.wait(timeout=60) == 0
    wait_for(lambda: len(done_names(data)) == 20, what="20 done")
    (data / "notes.md").write_text("x")  # a real stray entry is still reported, once
    wait_for(lambda: w.events("entry_ignored"), what="the stray entry")
    time.sleep(0.5)
    assert [e["entry"] for e in w.events("entry_ignored")] == ["notes.md"]
    w.terminate()


def test_a_state_dir_removed_under_a_holder_never_lets_a_peer_run_its_file(
    data: Path, spawn
) -> None:
    name = "2018_06_28_00_00.txt"
    (data / name).write_text("4")  # four seconds of work
    holder = spawn(data, "--seconds-in-min", "1", name="holder")
    wait_for(lambda: holder.events("file_claimed"), what="held")
    peer = spawn(data, "--seconds-in-min", "1", name="peer")
    wait_for(lambda: peer.events("ready"), what="the peer ready")
    shutil.rmtree(data / ".ingestd")  # an operator "cleans up" under a running fleet
    wait_for(lambda: holder.events("claim_reasserted"), timeout=10, what="the claim put back")
    wait_for(lambda: holder.events("file_done"), timeout=30, what="the holder finishes")
    time.sleep(1.0)  # the peer's scans go on
    assert peer.events("file_claimed") == []  # never two at once, not even for a moment
    assert holder.events("claim_lost") == [] and peer.events("duplicate_suppressed") == []
    assert holder.terminate() == 0 and peer.terminate() == 0


def test_a_worker_started_right_after_the_removal_never_runs_a_held_file(data: Path, spawn) -> None:
    name = "2018_06_28_00_00.txt"
    (data / name).write_text("3")  # three seconds of work
    holder = spawn(data, "--seconds-in-min", "1", name="holder")
    wait_for(lambda: holder.events("file_claimed"), what="held")
    shutil.rmtree(data / ".ingestd")
    newcomer = spawn(data, "--seconds-in-min", "1", name="newcomer")  # makes a new state dir
    wait_for(lambda: holder.events("file_done"), timeout=30, what="the holder finishes")
    wait_for(lambda: newcomer.events("ready"), what="the newcomer ready")
    time.sleep(0.5)
    assert newcomer.events("file_claimed") == [], newcomer.text
    assert holder.events("claim_reasserted") and holder.events("claim_lost") == []
    assert holder.terminate() == 0 and newcomer.terminate() == 0
