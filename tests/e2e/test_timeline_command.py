"""`ingestd timeline` as a command: the picture from a real ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from builders import day, rec

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_command_draws_a_real_runs_manifest(tmp_path: Path) -> None:
    data = tmp_path / "drop"
    (data / ".ingestd").mkdir(parents=True)
    records = [*day(96), rec("2018_06_29_00_00.txt", "w1", 20, 21, 22, attempt=2)]
    (data / ".ingestd" / "manifest.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records)
    )
    run = subprocess.run(
        [sys.executable, "-m", "ingestd", "timeline", str(data), "-o", str(tmp_path / "t.png")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "97 files on 2 workers" in run.stdout and "ideal FIFO" in run.stdout
    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")
    bad = subprocess.run(
        [sys.executable, "-m", "ingestd", "timeline", str(data), "-o", str(tmp_path / "t.gif")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and ".png or .svg" in bad.stderr


def test_timeline_since_and_last_on_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "drop"
    (data / ".ingestd").mkdir(parents=True)
    now = datetime.now(UTC)
    lines = []
    for i, age in enumerate((7200, 60)):  # two hours ago, a minute ago
        at = (now - timedelta(seconds=age)).isoformat()
        lines.append(json.dumps({"file": f"2018_06_28_00_{i * 15:02d}.txt", "status": "done",
                                 "worker": "a", "attempt": 1, "minutes": 1.0, "seen_at": at,
                                 "started_at": at, "finished_at": at}))  # fmt: skip
    (data / ".ingestd" / "manifest.jsonl").write_text("\n".join(lines) + "\n")

    def timeline(*args: str) -> subprocess.CompletedProcess[str]:
        command = ["timeline", str(data), "-o", str(tmp_path / "t.svg"), *args]
        return subprocess.run([sys.executable, "-m", "ingestd", *command],
                              capture_output=True, text=True)  # fmt: skip

    assert "2 files" in timeline().stdout
    assert "1 files" in timeline("--last", "1h").stdout
    assert "1 files" in timeline("--since", (now - timedelta(minutes=30)).isoformat()).stdout
    bad = timeline("--last", "soon")
    assert bad.returncode == 2 and "not a span" in bad.stderr
