"""A file re-delivered or overwritten under a finished name is never destroyed unprocessed: a
record names the content it processed, a disposal happens only while the source still holds
that content, and anything else is kept where it is and reported (the log, `status` exit 1,
`explain`)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, manifest_records, wait_for

A, B = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt"


def ingestd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)  # fmt: skip


def replace(path: Path, text: str) -> None:
    """A provider's re-delivery: written aside, renamed into place."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    temp.rename(path)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("action", ["move:done", "delete"])
def test_a_redelivered_file_with_other_content_is_kept_and_reported(
    data: Path, spawn, action: str
) -> None:
    (data / A).write_text("1\n")
    w = spawn(data, "--seconds-in-min", "0", "--on-done", action, "--heartbeat-interval", "0.3")
    wait_for(lambda: w.events("file_disposed"), what="the first delivery disposed")
    replace(data / A, "2\n")  # the provider sends A again, with other content
    wait_for(lambda: w.events("file_changed_after_done"), what="the re-delivery reported")
    changed = w.events("file_changed_after_done")[0]
    assert changed["recorded_sha256"] == sha("1\n") and changed["sha256"] == sha("2\n")
    assert (data / A).read_text() == "2\n"  # kept where it is, unprocessed
    if action == "move:done":
        assert os.listdir(data / "done") == [A]  # the archived original, not replaced
        assert (data / "done" / A).read_text() == "1\n"
    record = manifest_records(data)[0]
    assert record["sha256"] == sha("1\n") and record["version"]
    # The next heartbeat carries it: status needs a person.
    status = wait_for(lambda: (r := ingestd("status", str(data))).returncode == 1 and r,
                      what="status exit 1")  # fmt: skip
    assert f"CHANGED        {A}" in status.stdout, status.stdout
    explained = ingestd("explain", str(data), A)
    assert "changed after it was done" in explained.stdout, explained.stdout
    # The same content once more is nothing to lose: disposed like the first.
    replace(data / A, "1\n")
    wait_for(lambda: not (data / A).exists(), what="the same content disposed")
    assert [r["file"] for r in manifest_records(data)] == [A]  # processed once, all along
    assert w.terminate() == 0


def test_a_file_overwritten_while_it_is_processed_is_kept_and_reported(data: Path, spawn) -> None:
    (data / A).write_text("2\n")  # two simulated minutes: 2 s
    w = spawn(data, "--seconds-in-min", "1", "--on-done", "delete")
    wait_for(lambda: w.events("file_claimed"), what="claimed")
    (data / A).write_text("3\n")  # rewritten in place mid-processing
    wait_for(lambda: w.events("file_changed_after_done"), timeout=30, what="reported")
    assert (data / A).read_text() == "3\n"  # not deleted with the content unprocessed
    assert manifest_records(data)[0]["minutes"] == 2
    assert w.terminate() == 0


def test_an_overwrite_with_keep_is_reported_too(data: Path, spawn) -> None:
    (data / A).write_text("2\n")
    w = spawn(data, "--seconds-in-min", "1", "--no-watch", "--heartbeat-interval", "0.3")
    wait_for(lambda: w.events("file_claimed"), what="claimed")
    (data / A).write_text("3\n")
    wait_for(lambda: w.events("file_changed_after_done"), timeout=30, what="reported")
    status = wait_for(lambda: (r := ingestd("status", str(data), "--json")).returncode == 1 and r,
                      what="status exit 1")  # fmt: skip
    assert list(json.loads(status.stdout)["changed_after_done"]) == [A]
    assert w.terminate() == 0


def _objects(client: Any, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


@pytest.mark.parametrize("action", ["delete", "move:done"])
def test_an_object_recreated_under_a_finished_name_is_kept(
    s3_server: Any, spawn, tmp_path: Path, action: str
) -> None:
    name = s3_server.bucket()
    client = s3_server.client()
    client.put_object(Bucket=name, Key=f"in/{A}", Body=b"1\n")
    w = spawn(f"s3://{name}/in", "--state-dir", str(tmp_path / "state"), "--seconds-in-min",
              "0", "--on-done", action, "--rescan-interval", "0.3")  # fmt: skip
    wait_for(lambda: w.events("file_disposed"), what="disposed")
    client.put_object(Bucket=name, Key=f"in/{A}", Body=b"2\n")  # re-created
    wait_for(lambda: w.events("file_changed_after_done"), what="reported")
    objects = _objects(client, name)
    assert objects[f"in/{A}"] == b"2\n"
    if action == "move:done":
        assert objects[f"in/done/{A}"] == b"1\n"
    assert w.terminate() == 0


def test_an_object_overwritten_while_claimed_is_kept(s3_server: Any, spawn, tmp_path: Path) -> None:
    name = s3_server.bucket()
    client = s3_server.client()
    client.put_object(Bucket=name, Key=A, Body=b"2\n")
    w = spawn(f"s3://{name}", "--state-dir", str(tmp_path / "state"), "--seconds-in-min", "1",
              "--on-done", "delete")  # fmt: skip
    wait_for(lambda: w.events("file_claimed"), what="claimed")
    client.put_object(Bucket=name, Key=A, Body=b"3\n")
    wait_for(lambda: w.events("file_changed_after_done"), timeout=30, what="reported")
    assert _objects(client, name) == {A: b"3\n"}
    assert w.terminate() == 0


@pytest.mark.parametrize(
    "ledger", ["file", pytest.param("postgresql", marks=[pytest.mark.server, pytest.mark.postgres])]
)
def test_the_operator_has_a_changed_file_processed_again_with_retry(
    data: Path, spawn, ledger: str, request: pytest.FixtureRequest
) -> None:
    extra: tuple[str, ...] = ()
    if ledger == "postgresql":
        extra = ("--ledger", request.getfixturevalue("pg").url)
    (data / A).write_text("1\n")
    (data / B).write_text("1\n")
    w = spawn(data, "--seconds-in-min", "0", "--on-done", "move:done", *extra)
    wait_for(lambda: len(w.events("file_disposed")) == 2, what="both archived")
    replace(data / A, "2\n")
    wait_for(lambda: w.events("file_changed_after_done"), what="the re-delivery kept")
    refused = ingestd("retry", str(data), B, *extra)  # B is done and archived: nothing to do
    assert refused.returncode == 1 and "no longer in the source" in refused.stderr, refused.stderr
    again = ingestd("retry", str(data), A, *extra)
    assert again.returncode == 0, again.stderr
    wait_for(lambda: len(w.events("file_done")) == 3, what="the new content processed")
    wait_for(lambda: not (data / A).exists(), what="the new content archived")
    archived = {n: (data / "done" / n).read_text() for n in os.listdir(data / "done")}
    assert archived[A] == "1\n" and sorted(archived.values()) == ["1\n", "1\n", "2\n"]
    verify = ingestd("verify", str(data), "--expect", "2", *extra)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    explained = ingestd("explain", str(data), A, *extra)
    assert "redo" in explained.stdout and sha("1\n") in explained.stdout, explained.stdout
    assert w.terminate() == 0


def test_retry_refuses_a_done_file_whose_content_did_not_change(data: Path, spawn) -> None:
    (data / A).write_text("1\n")
    assert spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "0.5").wait() == 0
    refused = ingestd("retry", str(data), A)
    assert refused.returncode == 1 and "very content that was processed" in refused.stderr
    assert [r["status"] for r in manifest_records(data)] == ["done"]  # nothing appended
