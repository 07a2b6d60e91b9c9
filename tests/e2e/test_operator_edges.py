"""Operator commands at their edges: compaction that publishing still depends on, two
archives in one second, empty listings, hostile names and errors on a terminal, explain's exit
codes, a closed pipe, and status saying what needs a person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from conftest import ROOT, manifest_records, wait_for

from ingestd.ledgers.file.compact import compact

A, B, C = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "2018_06_28_00_30.txt"
NOW = datetime(2026, 11, 23, tzinfo=UTC)
OLD = "2026-11-01T00:00:00+00:00"


def ingestd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)  # fmt: skip


def record(name: str, status: str = "done") -> bytes:
    data = {"file": name, "status": status, "worker": "w", "attempt": 1, "minutes": 1.0,
            "seen_at": OLD, "started_at": OLD, "finished_at": OLD}  # fmt: skip
    return json.dumps(data).encode() + b"\n"


def test_compaction_keeps_what_publishing_still_needs(data: Path) -> None:
    state, out = data / ".ingestd", data / "out"
    state.mkdir()
    (state / "manifest.jsonl").write_bytes(record(A) + record(B) + record(C))
    (out / ".staging" / C).mkdir(parents=True)  # C's outputs still wait to be published
    (out / "_watermark").write_text(json.dumps(
        {"version": 1, "updated_at": OLD, "keys": {"": {"published": A, "skipped": []}}}
    ))  # fmt: skip
    # Every file is gone from the source (--on-done delete) and old: only A is expendable.
    result = ingestd("compact", str(data), "--retain", "1")
    assert result.returncode == 0, result.stderr
    assert [r["file"] for r in manifest_records(data)] == [B, C]


def test_two_archiving_compactions_in_one_second_both_keep_history(tmp_path: Path) -> None:
    (tmp_path / "manifest.jsonl").write_bytes(record(A) + record(A))
    first = compact(tmp_path, set, archive=True, now=NOW)
    second = compact(tmp_path, set, archive=True, now=NOW)
    assert first.archive != second.archive and first.archive and second.archive
    assert first.archive.exists() and second.archive.exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".compact")]  # no temp left


def test_empty_listings_say_so_and_stdout_stays_a_list(data: Path) -> None:
    failed = ingestd("failed", str(data))
    assert (failed.returncode, failed.stdout, failed.stderr) == (0, "", "no failed files\n")
    workers = ingestd("workers", str(data))
    assert workers.stdout == "" and "no workers" in workers.stderr


def test_explain_exit_codes(data: Path, tmp_path: Path) -> None:
    (data / A).write_text("1")
    assert ingestd("explain", str(data), A).returncode == 0
    assert ingestd("explain", str(data), "README").returncode == 1  # ignored: never processed
    assert ingestd("explain", str(data), B).returncode == 1  # unknown
    assert ingestd("explain", str(data), str(data / A)).returncode == 0  # a path into DIR
    elsewhere = ingestd("explain", str(data), str(tmp_path / "other" / A))
    assert elsewhere.returncode == 2 and "not in" in elsewhere.stderr


def test_a_closed_pipe_is_no_error(data: Path, spawn) -> None:
    (data / A).write_text("x")  # bad input: one failed file to list
    assert spawn(data, "--exit-when-idle", "0.5").wait() == 0
    for command in ("failed", "verify", "status"):
        # `true` reads nothing and is gone long before ingestd writes its first line.
        shell = subprocess.run(f"{sys.executable} -m ingestd {command} {data} | true",
                               shell=True, capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        assert shell.stderr == "", (command, shell.stderr)


PATTERN = (
    r"(?P<key>.+)_(?P<year>\d{4})_(?P<month>\d\d)_(?P<day>\d\d)_(?P<hour>\d\d)"
    r"_(?P<minute>\d\d)\.txt"
)


def test_names_and_errors_reach_a_terminal_escaped(data: Path, spawn) -> None:
    hostile = "x\x1b]0;pwned\x07\x1b[2J_2018_06_28_00_00.txt"
    (data / hostile).write_text("x")  # fails: its name is in every listing
    (data / "y\x1b[31m_2018_06_28_00_00.txt").write_text("600")  # in progress
    w = spawn(data, "--key-pattern", PATTERN, "--concurrency", "2", "--heartbeat-interval", "0.3")
    wait_for(lambda: manifest_records(data), what="the hostile file failed")
    for args in (("failed", str(data)), ("status", str(data)), ("explain", str(data), hostile),
                 ("workers", str(data))):  # fmt: skip
        shown = ingestd(*args, "--key-pattern", PATTERN)
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout, (args, shown.stdout)
        assert "x1b" in shown.stdout or args[0] == "workers", (args, shown.stdout)
    assert w.terminate() == 0


def test_status_with_keys_only_and_a_file_in_progress(data: Path, spawn) -> None:
    (data / "acme_2018_06_28_00_00.txt").write_text("x")  # fails
    (data / "acme_2018_06_28_00_15.txt").write_text("1")
    (data / "beta_2018_06_28_00_00.txt").write_text("60")  # in progress for a minute
    w = spawn(data, "--seconds-in-min", "1", "--heartbeat-interval", "0.3", "--concurrency", "2")
    wait_for(lambda: len(manifest_records(data)) == 2, what="two files finished")
    shown = wait_for(lambda: "working" in (r := ingestd("status", str(data))).stdout and r,
                     what="the file in progress listed")  # fmt: skip
    lines = shown.stdout.splitlines()
    assert "low watermark  per key, below" in lines
    assert "oldest waiting -" in lines  # nothing waits: the one unfinished file is in hand
    acme = next(line for line in lines if line.startswith("key acme"))
    assert "done 1, failed 1" in acme
    assert w.terminate() == 0


def test_publishing_that_fails_every_pass_needs_a_person(data: Path, spawn) -> None:
    out = data / "out"
    out.mkdir()
    (data / A).write_text('{"a": 1}\n')
    w = spawn(data, "--handler", "tsv", "--publish-in-order", "--heartbeat-interval", "0.3")
    wait_for(lambda: w.events("file_published"), what="published")
    (out / "_watermark").write_text("garbage")
    (data / B).write_text('{"a": 2}\n')
    wait_for(lambda: w.events("publish_failed"), what="a pass failed")
    status = wait_for(lambda: (r := ingestd("status", str(data))).returncode == 1 and r,
                      what="status exit 1")  # fmt: skip
    assert "PUBLISHING     failing on w0" in status.stdout
    assert w.terminate() == 0


def test_long_work_shows_progress_on_a_terminal_and_nothing_in_a_pipe(data: Path) -> None:
    import pty

    state = data / ".ingestd"
    state.mkdir()
    with open(state / "manifest.jsonl", "wb") as out:
        for i in range(30_000):
            out.write(record(f"2000_{1 + i // 2880 % 12:02d}_{1 + i // 96 % 28:02d}_"
                             f"{i // 4 % 24:02d}_{i % 4 * 15:02d}.txt"))  # fmt: skip
    controller, terminal = pty.openpty()
    try:
        command = [sys.executable, "-m", "ingestd", "verify", str(data)]
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=terminal, cwd=ROOT, timeout=120
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert done.returncode in (0, 1)
    assert b"reading records: 30,000" in shown  # counted a block of records at a time
    piped = ingestd("verify", str(data))
    assert "reading records" not in piped.stderr
