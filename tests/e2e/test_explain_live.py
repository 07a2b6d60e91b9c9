"""`ingestd explain` against a real killed worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import done_names, wait_for

NAME = "2018_06_28_00_00.txt"


def run(data: Path, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", "explain", str(data), name, "--json"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip


def test_a_killed_attempt_then_the_takeover(data: Path, spawn) -> None:
    (data / NAME).write_text("30\n")
    a = spawn(data, "--seconds-in-min", "10", name="a")
    wait_for(lambda: a.events("file_claimed"), what="a at work")
    working = json.loads(run(data, NAME).stdout)
    assert working["state"] == "in progress" and "by a" in working["why"]
    a.kill()
    lost = json.loads(run(data, NAME).stdout)
    assert lost["state"] == "waiting", lost
    assert "attempt 1 ended (its worker died)" in lost["why"]
    b = spawn(data, "--seconds-in-min", "0.001", name="b")
    wait_for(lambda: done_names(data) == [NAME], what="b takes it over")
    assert b.terminate() == 0
    finished = run(data, NAME)
    assert finished.returncode == 0
    result = json.loads(finished.stdout)
    assert result["state"] == "done" and result["why"].startswith("done by b")
    assert [h["what"] for h in result["history"]] == ["source", "record"]
    assert "attempt 2" in result["history"][1]["detail"]
    unknown = run(data, "2018_06_28_00_15.txt")
    assert unknown.returncode == 1 and json.loads(unknown.stdout)["state"] == "unknown"
