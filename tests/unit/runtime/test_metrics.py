"""Prometheus metrics, in-process: outcomes, counts and gauges from records, and the
fleet's view."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from builders import samples

from ingestd.contracts.ledger import Record, Summary
from ingestd.runtime.metrics import (
    Fleet,
    WorkerMetrics,
    fleet_exposition,
    fleet_outcomes,
    outcome_of,
    write_textfile,
)


def record(status: str = "done", attempt: int = 1) -> Record:
    return Record(
        file="2018_06_28_00_00.txt", status=status, worker="w", host="h", pid=1,
        attempt=attempt, seen_at="2026-01-01T00:00:00+00:00",
        started_at="2026-01-01T00:00:10+00:00", finished_at="2026-01-01T00:00:40+00:00",
    )  # fmt: skip


def test_outcomes_partition_what_the_ledger_records() -> None:
    assert outcome_of(record()) == "done"
    assert outcome_of(record(attempt=2)) == "redone"
    assert outcome_of(record("failed", attempt=3)) == "failed"
    final = [Summary("f", "done", "w", 1, None, None), Summary("f", "done", "w", 2, None, None),
             Summary("f", "failed", "w", 1, None, None),
             Summary("f", "done", "w", None, None, None)]  # fmt: skip
    assert fleet_outcomes(final) == {"done": 2, "redone": 1, "failed": 1}


def test_a_worker_counts_times_from_its_records() -> None:
    metrics = WorkerMetrics()
    metrics.finished(record())
    metrics.finished(record("failed"))
    metrics.duplicate()
    metrics.conflict()
    got = samples(metrics.exposition().decode())
    assert got["ingestd_files_total{outcome=done}"] == 1
    assert got["ingestd_files_total{outcome=failed}"] == 1
    assert got["ingestd_files_total{outcome=duplicate_suppressed}"] == 1
    assert got["ingestd_files_total{outcome=redone}"] == 0
    assert got["ingestd_processing_seconds_sum"] == 60  # 30 s each, done and failed
    assert got["ingestd_arrival_to_done_seconds_sum"] == 40  # done only: seen to finished
    assert got["ingestd_claim_conflicts_total"] == 1
    assert got["ingestd_last_done_timestamp_seconds"] == 1767225640.0
    # Never a file name as a label: one series per file would grow without end.
    assert "2018_06_28" not in metrics.exposition().decode()


def test_the_textfile_is_replaced_whole_never_seen_half_written(tmp_path: Path) -> None:
    path = tmp_path / "ingestd.prom"
    small, large = b"a 1\n", b"".join(b"b_%d 1\n" % i for i in range(20000))
    write_textfile(path, small)
    stop = threading.Event()
    seen: Counter[bytes] = Counter()

    def read() -> None:
        while not stop.is_set():
            seen[path.read_bytes()] += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            write_textfile(path, large if i % 2 else small)
    finally:
        stop.set()
        reader.join()
    assert set(seen) <= {small, large} and seen[small] and seen[large], len(seen)
    assert [p.name for p in tmp_path.iterdir()] == ["ingestd.prom"]  # no temp file left


def test_fleet_exposition_leaves_out_what_is_unknown() -> None:
    fleet = Fleet(outcomes={"done": 1}, in_progress=0, pending=2, failed=0, oldest_pending=None,
                  last_done=None, ledger_files=1, workers_alive=1, paused=True)  # fmt: skip
    text = fleet_exposition(fleet).decode()
    got = samples(text)
    assert got["ingestd_paused"] == 1 and got["ingestd_files_pending"] == 2
    assert "ingestd_oldest_pending_timestamp_seconds" not in text
