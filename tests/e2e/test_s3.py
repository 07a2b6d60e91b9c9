"""s3://BUCKET sources against a real S3-compatible server (tests/s3server.py): listing with a
flat cost, content, errors, and worker processes sharing a bucket."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import ROOT, SIMULATION, assert_stats_match_manifest, read_json_log, wait_for

from ingestd.contracts.errors import StartupError
from ingestd.contracts.naming import format_name
from ingestd.contracts.source import Disposal
from ingestd.sources.s3 import KIND as BUCKETS
from ingestd.sources.s3 import Location, S3Source

A, B = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt"


def names(count: int, start: str = "2018_06_01_00_00") -> list[str]:
    first = datetime.strptime(start, "%Y_%m_%d_%H_%M")
    return [format_name(first + timedelta(minutes=15 * i)) for i in range(count)]


def put_all(s3: Any, name: str, keys: list[str], body: bytes = b"1") -> None:
    client = s3.client()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=name, Key=key, Body=body), keys))


def test_locations() -> None:
    assert Location.parse("s3://b") == Location("b", "")
    assert Location.parse("s3://b/in/day/") == Location("b", "in/day/")
    for bad in ("s3://", "s3:///x", "/data"):
        with pytest.raises(ValueError):
            Location.parse(bad)


def test_a_scan_lists_data_names_and_ignores_folders_and_odd_keys(s3_server: Any) -> None:
    name = s3_server.bucket()
    client = s3_server.client()
    for key, body in ((f"in/{A}", b"1"), (f"in/{B}", b"22"), ("in/sub/", b""),
                      (f"in/sub/{A}", b"1"), ("in/README", b"x"), ("in/caf\u00e9.txt", b"x"),
                      (f"other/{A}", b"1")):  # fmt: skip
        client.put_object(Bucket=name, Key=key, Body=body)
    source = BUCKETS.for_operator(f"s3://{name}/in", None)
    result = source.scan(lambda n: n == A)
    assert list(result.candidates) == [B] and result.candidates[B][0] == 2
    assert result.ignored == {"sub/": "directory", "README": "name", "caf\u00e9.txt": "name"}
    assert source.signature(B) == result.candidates[B]
    assert source.signature("2018_01_01_00_00.txt") is None
    client.put_object(Bucket=name, Key=f"in/{B}", Body=b"33")  # same size, new ETag
    assert source.signature(B) != result.candidates[B]
    assert source.names() == {A, B}  # finished or not; the scan's window is not touched


def test_listing_cost_stays_flat_as_finished_objects_pile_up(s3_server: Any) -> None:
    name = s3_server.bucket()
    keys = names(10_000)
    s3_server.put_many(name, keys)
    source = S3Source(f"s3://{name}", s3_server.client(), full_every=1000)
    costs = []
    for finished in (5_000, 5_000, 9_990, 9_990):
        done = set(keys[:finished])
        result = source.scan(done.__contains__)
        assert len(result.candidates) == 10_000 - finished  # nothing unfinished is missed
        costs.append((source.last_scan.full, source.last_scan.requests, source.last_scan.keys))
    # The first listing is full (1,000 keys a page); from then on it starts a day (96 names)
    # before the oldest unfinished object, so its cost is what is unfinished, not the history
    # (and one request for the prefixes before the first `_`: has a key appeared?).
    assert costs == [
        (True, 10, 10_000),
        (False, 1 + 6, 96 + 5_000),
        (False, 1 + 6, 96 + 5_000),  # the floor moves up as this scan sees the newly finished
        (False, 1 + 1, 96 + 10),
    ]


def test_a_keyed_name_sorting_before_the_window_is_found_at_the_next_scan(
    s3_server: Any,
) -> None:
    name = s3_server.bucket()
    plain = names(200)
    s3_server.put_many(name, plain)
    source = S3Source(f"s3://{name}", s3_server.client(), full_every=1000)
    done = set(plain[:150])
    assert len(source.scan(done.__contains__).candidates) == 50  # full: the floor is known
    assert len(source.scan(done.__contains__).candidates) == 50  # windowed
    assert not source.last_scan.full and source.last_scan.start_after
    s3_server.put_many(name, ["1_2018_06_05_00_00.txt"])  # key "1": before every plain name
    result = source.scan(done.__contains__)
    assert "1_2018_06_05_00_00.txt" in result.candidates


def test_late_uploads_inside_the_window_at_once_older_ones_at_the_full_listing(
    s3_server: Any,
) -> None:
    name = s3_server.bucket()
    keys = names(200)  # 50 hours
    put_all(s3_server, name, keys)
    source = S3Source(f"s3://{name}", s3_server.client(), full_every=4)
    done = set(keys)
    assert source.scan(done.__contains__).candidates == {}  # 1: full
    recent = format_name(datetime(2018, 6, 2, 23, 59))  # a late name 1 day before the floor
    ancient = "2018_05_01_00_00.txt"
    put_all(s3_server, name, [recent, ancient])
    seen = [set(source.scan(done.__contains__).candidates) for _ in range(3)]  # 2, 3, 4
    assert seen == [{recent}, {recent}, {recent}]  # incremental: the ancient one is below
    assert set(source.scan(done.__contains__).candidates) == {recent, ancient}  # 5: full


def test_an_object_overwritten_after_it_was_finished_is_flagged(s3_server: Any) -> None:
    name = s3_server.bucket()
    client = s3_server.client()
    client.put_object(Bucket=name, Key=A, Body=b"1")
    source = BUCKETS.for_operator(f"s3://{name}", None)
    assert source.scan(lambda n: True).changed == []
    client.put_object(Bucket=name, Key=A, Body=b"2")
    assert source.scan(lambda n: True).changed == [A]


def test_content_head_digest_and_a_vanished_object(s3_server: Any) -> None:
    name = s3_server.bucket()
    client = s3_server.client()
    body = b"x" * 3_000_000
    client.put_object(Bucket=name, Key=A, Body=body)
    client.put_object(Bucket=name, Key=B, Body=b"")
    source = BUCKETS.for_operator(f"s3://{name}", None)
    assert source.read_head(A, 4096) == body[:4097]
    assert source.read_head(B, 4096) == b""
    with source.open(A) as stream:
        assert stream.read() == body
    import hashlib

    assert source.digest(A) == (len(body), hashlib.sha256(body).hexdigest())
    client.delete_object(Bucket=name, Key=A)
    with pytest.raises(FileNotFoundError):
        source.read_head(A, 10)
    with pytest.raises(FileNotFoundError):
        source.open(A)


def test_a_missing_bucket_is_a_start_up_error_an_unreachable_server_is_waited_for(
    s3_server: Any,
) -> None:
    with pytest.raises(StartupError, match="NoSuchBucket"):
        BUCKETS.for_operator("s3://no-such-bucket-here", None).exists()
    client = s3_server.client()
    import boto3

    dead = boto3.session.Session(region_name="us-east-1").client(
        "s3", endpoint_url="http://127.0.0.1:9", config=client.meta.config
    )
    assert S3Source("s3://any", dead).exists() is False
    with pytest.raises(OSError):
        S3Source("s3://any", dead).scan(lambda n: False)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)  # fmt: skip


def test_usage_errors_are_one_line(s3_server: Any, tmp_path: Path) -> None:
    name = s3_server.bucket()
    nowhere = run_cli("run", f"s3://{name}")
    assert nowhere.returncode == 2
    assert "needs --ledger postgresql://... or --state-dir" in nowhere.stderr
    assert len(nowhere.stderr.strip().splitlines()) == 1
    missing = run_cli("run", "s3://no-such-bucket-here", "--state-dir", str(tmp_path / "s"),
                      "--log-format", "json")  # fmt: skip
    assert missing.returncode == 2 and "NoSuchBucket" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout
    tsv = run_cli("run", f"s3://{name}", "--state-dir", str(tmp_path / "s"), "--handler", "tsv",
                  "--log-format", "json")  # fmt: skip
    assert tsv.returncode == 2 and "needs --output-dir" in tsv.stderr


def test_two_workers_share_the_appendix_day_from_a_bucket(
    s3_server: Any, spawn, tmp_path: Path
) -> None:
    name = s3_server.bucket()
    url, state = f"s3://{name}/day", tmp_path / "state"
    workers = [spawn(url, "--state-dir", str(state), "--seconds-in-min", "0.01",
                     "--exit-when-idle", "3", name=f"w{i}") for i in range(2)]  # fmt: skip
    for w in workers:
        wait_for(lambda w=w: w.events("ready"), what="ready")
    provider = subprocess.run(
        [sys.executable, str(SIMULATION), url, "--seconds-in-min", "0.01"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert provider.returncode == 0, provider.stderr
    for w in workers:
        assert w.wait(timeout=120) == 0
    records = _records(state)
    done = Counter(r["file"] for r in records if r["status"] == "done")
    assert len(done) == 96 and set(done.values()) == {1}
    for w in workers:
        assert w.events("file_done"), f"{w.name} did no work"
        claimed = [c["file"] for c in w.events("file_claimed")]
        assert claimed == sorted(claimed), f"{w.name} did not take the oldest first"
        assert_stats_match_manifest(w.records(), records, w.name, complete=True)
    verify = run_cli("verify", url, "--state-dir", str(state), "--expect", "96", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    status = json.loads(run_cli("status", url, "--state-dir", str(state), "--json").stdout)
    assert status["done"] == 96 and status["pending"] == 0


def _records(state: Path) -> list[dict[str, Any]]:
    path = state / "manifest.jsonl"
    return read_json_log(path) if path.exists() else []


def test_a_kill_and_a_server_restart_lose_and_double_nothing_and_spend_no_attempt(
    s3_server: Any, spawn, tmp_path: Path
) -> None:
    name = s3_server.bucket()
    url, state = f"s3://{name}", tmp_path / "state"
    keys = names(40, "2018_06_28_00_00")
    put_all(s3_server, name, keys, b"20")  # 20 simulated minutes: 0.2 s each
    common = ("--state-dir", str(state), "--seconds-in-min", "0.01")
    doomed = spawn(url, *common, name="doomed")
    steady = spawn(url, *common, name="steady")
    wait_for(lambda: doomed.events("file_claimed"), what="a claim")
    doomed.kill()  # mid-object
    wait_for(lambda: len(_records(state)) >= 15, what="some done")
    s3_server.stop()  # an outage long enough for several scans and claims to fail
    time.sleep(2)
    s3_server.start()
    wait_for(lambda: len(_records(state)) == 40, timeout=120, what="all recorded")
    records = _records(state)
    assert Counter(r["file"] for r in records if r["status"] == "done") == Counter(keys)
    assert steady.popen.poll() is None  # still running after the outage
    assert steady.events("scan_failed") and steady.events("scan_recovered")
    assert steady.terminate() == 0
    taken = [c for c in steady.events("file_claimed") if c.get("taken_over_from") == "doomed"]
    assert len(taken) == 1 and taken[0]["attempt"] == 2
    assert {c["attempt"] for c in steady.events("file_claimed") if c not in taken} == {1}


def test_an_object_deleted_after_listing_is_skipped_and_logged(
    s3_server: Any, spawn, tmp_path: Path
) -> None:
    name = s3_server.bucket()
    client = s3_server.client()
    client.put_object(Bucket=name, Key=A, Body=b"60")  # 0.6 s of work
    client.put_object(Bucket=name, Key=B, Body=b"1")
    state = tmp_path / "state"
    w = spawn(f"s3://{name}", "--state-dir", str(state), "--seconds-in-min", "0.01",
              "--concurrency", "1", "--rescan-interval", "0.5")  # fmt: skip
    wait_for(lambda: any(c["file"] == A for c in w.events("file_claimed")), what="A claimed")
    client.delete_object(Bucket=name, Key=B)  # listed already, gone before it is read
    wait_for(lambda: w.events("file_skipped") or len(_records(state)) > 1, what="B settled")
    assert w.terminate() == 0
    assert [r["file"] for r in _records(state)] == [A]
    assert [e["reason"] for e in w.events("file_skipped")] == ["vanished"]


def test_from_a_bucket_to_rows_exactly_once_with_no_shared_directory(
    s3_server: Any, spawn, pg: Any
) -> None:
    """The whole path: objects in a bucket, the PostgreSQL ledger, --handler pg, a SIGKILL."""
    name = s3_server.bucket()
    keys = names(30, "2018_06_28_00_00")
    client = s3_server.client()
    for key in keys:
        body = "".join(f'{{"file": "{key}", "i": {i}}}\n' for i in range(5000))
        client.put_object(Bucket=name, Key=key, Body=body.encode())
    pg.psql("CREATE TABLE t (file text, i int)")
    args = ("--ledger", pg.url, "--handler", "pg", "--pg-url", pg.url, "--pg-table", "t")
    doomed = spawn(f"s3://{name}", *args, name="doomed")
    steady = spawn(f"s3://{name}", *args, name="steady")
    wait_for(lambda: len(doomed.events("file_done")) >= 3, timeout=60, what="some loaded")
    doomed.kill()  # wherever it is: mid-COPY, mid-read, between files
    done = "SELECT count(*) FROM ingestd.records WHERE status = 'done'"
    wait_for(lambda: pg.psql(done).strip() == "30", timeout=120, what="all loaded")
    counts = pg.psql("SELECT file, count(*), count(DISTINCT i) FROM t GROUP BY file ORDER BY 1")
    assert counts.split() == [f"{key}|5000|5000" for key in keys]
    assert pg.psql("SELECT count(*) FROM ingestd.loads").strip() == "30"
    assert steady.terminate() == 0


def test_done_objects_move_under_a_prefix_failed_ones_are_deleted(
    s3_server: Any, spawn, tmp_path: Path
) -> None:
    name = s3_server.bucket()
    client = s3_server.client()
    for key, body in ((f"in/{A}", b"12\n"), (f"in/{B}", b"not a number\n")):
        client.put_object(Bucket=name, Key=key, Body=body)
    source = BUCKETS.for_operator(f"s3://{name}/in", None)
    assert source.move_prefix(Disposal("move", "done")) == "in/done/"
    assert source.move_prefix(Disposal("move", "/archive/")) == "archive/"
    disposal = ("--on-done", "move:done", "--on-failed", "delete")
    w = spawn(f"s3://{name}/in", "--state-dir", str(tmp_path / "state"), "--seconds-in-min", "0",
              *disposal, "--exit-when-idle", "1")  # fmt: skip
    assert w.wait(timeout=60) == 0
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", []))
    assert keys == [f"in/done/{A}"]  # moved whole, the failed one deleted, nothing else
    moved = client.get_object(Bucket=name, Key=f"in/done/{A}")["Body"].read()
    assert moved == b"12\n"
    assert {e["action"] for e in w.events("file_disposed")} == {"move:done", "delete"}
    # The moved object sits under a "folder" of the source: ignored by its scans from now on.
    assert source.scan(lambda _: False).candidates == {}


def test_keyed_names_make_every_listing_start_at_the_beginning(s3_server: Any) -> None:
    name = s3_server.bucket()
    plain = names(200)
    s3_server.put_many(name, [*plain, "1999_2018_06_01_00_00.txt"])  # a key made of digits
    source = S3Source(f"s3://{name}", s3_server.client(), full_every=1000)
    done = set(plain[:150]) | {"1999_2018_06_01_00_00.txt"}
    assert len(source.scan(done.__contains__).candidates) == 50  # full: the floor is known
    s3_server.put_many(name, ["1999_2018_06_05_00_00.txt"])  # sorts before every plain name
    result = source.scan(done.__contains__)
    assert "1999_2018_06_05_00_00.txt" in result.candidates  # not left for the full listing
    assert not source.last_scan.full and source.last_scan.start_after == ""


def test_credentials_refused_mid_run_stall_the_worker_once_not_every_file(
    s3_server: Any, spawn, tmp_path: Path
) -> None:
    name = s3_server.bucket()
    keys = names(8, "2018_06_28_00_00")
    put_all(s3_server, name, keys, body=b"1")
    w = spawn(f"s3://{name}", "--state-dir", str(tmp_path / "state"), "--seconds-in-min", "0.5",
              "--rescan-interval", "0.3")  # fmt: skip
    wait_for(lambda: w.events("file_done"), what="one done before the keys are rotated")
    with s3_server.refusing_credentials():
        with pytest.raises(ClientError, match="InvalidAccessKeyId"):
            s3_server.client().list_buckets()  # our keys are refused now
        wait_for(lambda: w.events("claim_failed"), timeout=30, what="the worker stalls")
        time.sleep(2)  # several scans and backoffs while refused
    stalled = w.events("claim_failed")
    assert len(stalled) == 1, stalled
    # SeaweedFS rotates keys only by a restart: the worker may meet the restart's outage
    # first, and then the refusal, in the same stall. moto refuses at once.
    seen = stalled[0]["error"]
    assert "InvalidAccessKeyId" in seen or (s3_server.kind == "seaweedfs" and "connect" in seen)
    assert w.events("file_unreadable") == []  # not one event per queued file
    assert len(w.events("scan_failed")) <= 1
    wait_for(lambda: len(_records(tmp_path / "state")) == 8, timeout=60, what="all done after")
    assert w.events("stall_ended")
    assert w.terminate() == 0


def test_a_multipart_object_is_read_versioned_and_disposed_like_any_other(
    s3_server: Any,
) -> None:
    """A multipart upload's ETag is no MD5 of the content (`"...-2"`): the version and the
    conditional disposal must not care, on either server."""
    import hashlib

    from ingestd.contracts.source import Changed, Content

    name, key = s3_server.bucket(), "2018_06_28_00_00.txt"
    client = s3_server.client()
    parts = [b"1" * (5 << 20), b"2"]  # every part but the last at least 5 MiB
    upload = client.create_multipart_upload(Bucket=name, Key=key)["UploadId"]
    done = [
        {"PartNumber": i, "ETag": client.upload_part(Bucket=name, Key=key, PartNumber=i,
                                                     UploadId=upload, Body=body)["ETag"]}
        for i, body in enumerate(parts, 1)
    ]  # fmt: skip
    client.complete_multipart_upload(Bucket=name, Key=key, UploadId=upload,
                                     MultipartUpload={"Parts": done})  # fmt: skip
    source = BUCKETS.for_operator(f"s3://{name}", None)
    content = b"".join(parts)
    version = source.version(key)
    assert version is not None and version.strip('"').endswith("-2")
    assert source.digest(key) == (len(content), hashlib.sha256(content).hexdigest())
    assert source.scan(lambda _: False).candidates[key][0] == len(content)
    client.put_object(Bucket=name, Key=key, Body=b"replaced")  # single part, another ETag
    with pytest.raises(Changed):
        source.dispose(key, Disposal.parse("delete"), Content(version, "0" * 64))
    now = Content(source.version(key), hashlib.sha256(b"replaced").hexdigest())
    source.dispose(key, Disposal.parse("delete"), now)
    assert source.signature(key) is None
