"""`ingestd compact`'s rewrite of a manifest: one record per file, byte for byte."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

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


def test_after_an_operators_redo_the_new_done_record_is_the_one_kept(tmp_path: Path) -> None:
    lines = [
        line("2018_06_28_00_00.txt", "done", worker="a", sha256="old"),
        line("2018_06_28_00_00.txt", "redo", worker="op"),
        line("2018_06_28_00_00.txt", "done", worker="b", sha256="new"),
    ]
    (tmp_path / "manifest.jsonl").write_bytes(b"".join(lines))
    compact(tmp_path, set, now=NOW)
    assert (tmp_path / "manifest.jsonl").read_bytes() == lines[2]
