"""`ingestd health` against real worker processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import wait_for


def health(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", "health", str(data), *args],
                          capture_output=True, text=True, timeout=30)  # fmt: skip


def test_the_probe_follows_a_real_worker(data: Path, spawn) -> None:
    w = spawn(data, "--heartbeat-interval", "0.3", name="probe-me")
    wait_for(lambda: w.events("ready"))
    ok = health(data, "--worker", "probe-me", "--ready")
    assert ok.returncode == 0 and ok.stdout.strip() == "ready", ok.stdout + ok.stderr
    subprocess.run([sys.executable, "-m", "ingestd", "pause", str(data)], check=True,
                   capture_output=True)  # fmt: skip
    paused = health(data, "--worker", "probe-me", "--ready")
    assert paused.returncode == 1 and "paused" in paused.stdout
    assert health(data, "--worker", "probe-me").returncode == 0  # live, though not ready
    # A worker whose event loop makes no progress (stopped here) stops beating: not live.
    w.popen.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.5)  # past 3 x 0.3 s
        stale = health(data, "--worker", "probe-me")
        assert stale.returncode == 1 and "stale" in stale.stdout, stale.stdout
    finally:
        w.popen.send_signal(signal.SIGCONT)
    wait_for(lambda: health(data, "--worker", "probe-me").returncode == 0, what="live again")
    assert w.terminate() == 0
    gone = health(data, "--worker", "probe-me")  # a clean stop removes the heartbeat
    assert gone.returncode == 1 and "no heartbeat" in gone.stdout


def test_after_a_crash_and_a_restart_health_and_status_are_clean(data: Path, spawn) -> None:
    (data / "2018_06_28_00_00.txt").write_text("1")
    first = spawn(data, "--heartbeat-interval", "0.2", "--seconds-in-min", "0")
    wait_for(lambda: first.events("file_done"))
    first.kill()  # its heartbeat stays, soon stale
    second = spawn(data, "--heartbeat-interval", "0.2")
    wait_for(lambda: second.events("ready"))
    time.sleep(1.0)  # the first one's heartbeat is past three intervals
    assert health(data).returncode == 0, health(data).stdout
    status = subprocess.run([sys.executable, "-m", "ingestd", "status", str(data)],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert status.returncode == 0, status.stdout
    assert "replaced       w0" in status.stdout
    assert second.terminate() == 0
