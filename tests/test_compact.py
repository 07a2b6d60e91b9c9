"""`ingestd compact`: one record per file, byte for byte, safe while real workers append."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from conftest import done_names, manifest_records, wait_for

from ingestd.ledgers.file.compact import compact

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def line(name: str, status: str, worker: str = "a", finished: str = "2026-11-20T00:00:00+00:00",
         **extra: object) -> bytes:  # fmt: skip
    record = {"file": name, "status": status, "worker": worker, "finished_at": finished, **extra}
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def test_the_standing_record_of_each_file_is_kept_byte_for_byte_in_order(
    tmp_path: Path,
) -> None:
    lines = [
        line("2018_06_28_00_00.txt", "done", minutes=12.5),
        line("2018_06_28_00_15.txt", "failed", error="x"),
        b"not json at all\n",
        line("2018_06_28_00_15.txt", "retry"),
        line("2018_06_28_00_30.txt", "failed", error="y"),
        line("2018_06_28_00_15.txt", "done", worker="b"),
        line("2018_06_28_00_00.txt", "done", worker="c"),  # a duplicate: the first stands
    ]
    (tmp_path / "manifest.jsonl").write_bytes(b"".join(lines) + b'{"file":"torn')
    result = compact(tmp_path, set, archive=True, now=NOW)
    assert (tmp_path / "manifest.jsonl").read_bytes() == lines[0] + lines[4] + lines[5]
    assert (result.records_before, result.records_after, result.bad_lines) == (6, 3, 1)
    assert result.archive is not None
    assert result.archive.read_bytes() == b"".join(lines) + b'{"file":"torn'  # all history
    again = compact(tmp_path, set, now=NOW)  # idempotent
    assert again.records_before == again.records_after == 3


def test_retain_drops_only_old_records_of_files_no_longer_there(tmp_path: Path) -> None:
    old, new = "2026-11-01T00:00:00+00:00", "2026-11-22T00:00:00+00:00"
    lines = [
        line("2018_06_28_00_00.txt", "done", finished=old),  # gone and old: dropped
        line("2018_06_28_00_15.txt", "done", finished=old),  # old but still there: kept
        line("2018_06_28_00_30.txt", "done", finished=new),  # gone but recent: kept
        line("2018_06_28_00_45.txt", "failed", finished=old),  # gone and old: dropped
    ]
    (tmp_path / "manifest.jsonl").write_bytes(b"".join(lines))
    result = compact(tmp_path, lambda: {"2018_06_28_00_15.txt"}, retain_days=7, now=NOW)
    assert result.expired == 2
    assert (tmp_path / "manifest.jsonl").read_bytes() == lines[1] + lines[2]


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


def test_after_an_operators_redo_the_new_done_record_is_the_one_kept(tmp_path: Path) -> None:
    lines = [
        line("2018_06_28_00_00.txt", "done", worker="a", sha256="old"),
        line("2018_06_28_00_00.txt", "redo", worker="op"),
        line("2018_06_28_00_00.txt", "done", worker="b", sha256="new"),
    ]
    (tmp_path / "manifest.jsonl").write_bytes(b"".join(lines))
    compact(tmp_path, set, now=NOW)
    assert (tmp_path / "manifest.jsonl").read_bytes() == lines[2]
