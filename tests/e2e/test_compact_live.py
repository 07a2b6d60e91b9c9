"""`ingestd compact` while real workers append: one record per file, byte for byte."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from conftest import done_names, manifest_records, wait_for


def test_compacting_under_load_keeps_verify_clean_and_processes_nothing_twice(
    tmp_path: Path, data: Path, spawn, provider
) -> None:
    sim = provider(data, "--files", "150", "--seconds-in-min", "0.0005",
                   "--minutes-dist", "uniform:12:37", "--seed", "5")  # fmt: skip
    workers = [spawn(data, "--seconds-in-min", "0.002", name=f"w{i}") for i in range(2)]
    compactions = 0
    failures: list[str] = []

    def compact_again_and_again() -> None:
        nonlocal compactions
        while len(done_names(data)) < 150:
            run = subprocess.run([sys.executable, "-m", "ingestd", "compact", str(data)],
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
            if run.returncode != 0:
                failures.append(run.stderr)
                return
            compactions += 1

    compactor = threading.Thread(target=compact_again_and_again)
    compactor.start()
    try:
        assert sim.wait(timeout=60) == 0
        wait_for(lambda: len(done_names(data)) == 150, timeout=90, what="150 done")
    finally:
        compactor.join(timeout=60)
    for w in workers:
        assert w.terminate() == 0
    assert failures == [] and compactions >= 3, (failures, compactions)
    done = Counter(done_names(data))
    assert len(done) == 150 and set(done.values()) == {1}
    # Every file was processed once: the workers' own logs agree with the manifest.
    processed = Counter(r["file"] for w in workers for r in w.events("file_done"))
    assert processed == done
    verify = subprocess.run([sys.executable, "-m", "ingestd", "verify", str(data), "--expect",
                             "150"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert verify.returncode == 0, verify.stdout
    assert sum(len(w.events("manifest_replaced")) for w in workers) >= 1  # readers noticed
    assert len(manifest_records(data)) == 150  # one record per file after the last pass


def test_compact_refuses_a_postgresql_ledger_in_one_line(data: Path) -> None:
    command = ["compact", str(data), "--ledger", "postgresql://nowhere/db"]
    run = subprocess.run([sys.executable, "-m", "ingestd", *command],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert run.returncode == 2 and "nothing to compact" in run.stderr
    assert "Traceback" not in run.stderr
