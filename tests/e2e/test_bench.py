"""Every benchmark runs at a small size, so `make bench` keeps working. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_benchmarks_run_in_quick_mode(tmp_path: Path) -> None:
    results = ROOT / "bench" / "results.jsonl"
    before = results.read_text() if results.exists() else ""
    try:
        run = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick"],
            capture_output=True, text=True, timeout=500, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        added = [json.loads(x) for x in results.read_text()[len(before) :].splitlines()]
    finally:
        results.write_text(before)  # quick runs are not results worth keeping
    benches = {line["bench"] for line in added}
    assert benches == {
        "schedule", "schedule_timer", "drain", "detect", "scale", "scaling", "tsv", "pg_load",
        "pg_ledger", "s3_source", "compact", "keys", "publish", "operators", "console",
    }  # fmt: skip
    assert all(line["cores"] and "commit" in line for line in added)
    schedule = next(line for line in added if line["bench"] == "schedule")
    assert schedule["makespan"] > 0 and schedule["ideal_makespan"] > 0
    assert schedule["modelled_mean_latency"] >= schedule["modelled_without_overshoot"] > 0
    timer = next(line for line in added if line["bench"] == "schedule_timer")
    assert timer["sleep_overshoot_ms"] >= 0  # asyncio.sleep never returns early
    for title in ("makespan", "files/s", "p50 ms", "start-up s", "speed-up", "MB/s"):
        assert title in run.stdout
