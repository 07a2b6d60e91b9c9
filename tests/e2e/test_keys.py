"""Keys in names against real workers: keyed files are processed (timestamp first, then key),
status reports each key, and a --key-pattern names another scheme."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import done_names, wait_for

KEYED = ["acme_2018_06_28_00_00.txt", "2018_06_28_00_00.txt", "beta_2018_06_28_00_15.txt",
         "acme_2018_06_28_00_30.txt", "beta_2018_06_28_00_00.txt"]  # fmt: skip


def ingestd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_keyed_files_are_processed_oldest_first_then_by_key(data: Path, spawn) -> None:
    for name in KEYED:
        (data / name).write_text("1\n")
    w = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "1")
    assert w.wait(timeout=60) == 0
    claimed = [e["file"] for e in w.events("file_claimed")]
    assert claimed == ["2018_06_28_00_00.txt", "acme_2018_06_28_00_00.txt",
                       "beta_2018_06_28_00_00.txt", "beta_2018_06_28_00_15.txt",
                       "acme_2018_06_28_00_30.txt"]  # fmt: skip
    assert not w.events("entry_ignored")
    assert ingestd("verify", str(data), "--expect", "5").returncode == 0
    (data / "acme_2018_06_28_01_15.txt").write_text("1\n")  # acme: 00:15, 00:45, 01:00 missing
    report = json.loads(ingestd("status", str(data), "--json").stdout)
    assert set(report["keys"]) == {"", "acme", "beta"}
    acme = report["keys"]["acme"]
    assert (acme["done"], acme["waiting"]) == (2, 1)
    assert acme["low_watermark"] == "acme_2018_06_28_00_30.txt"
    assert acme["missing_slots"] == ["acme_2018_06_28_00_15.txt", "acme_2018_06_28_00_45.txt",
                                     "acme_2018_06_28_01_00.txt"]  # fmt: skip
    assert report["keys"]["beta"]["low_watermark"] == "beta_2018_06_28_00_15.txt"
    assert report["low_watermark"] == "2018_06_28_00_00.txt"  # the default key's
    text = ingestd("status", str(data)).stdout
    assert "key acme" in text and "key beta" in text


def test_a_key_pattern_names_another_scheme(data: Path, spawn) -> None:
    pattern = (r"(?P<key>[a-z]+)-(?P<year>\d{4})(?P<month>\d\d)(?P<day>\d\d)"
               r"(?P<hour>\d\d)(?P<minute>\d\d)\.json")  # fmt: skip
    names = ["acme-201806280015.json", "acme-201806280000.json", "2018_06_28_00_00.txt"]
    for name in names:
        (data / name).write_text("1\n")
    w = spawn(data, "--seconds-in-min", "0", "--exit-when-idle", "1", "--key-pattern", pattern)
    assert w.wait(timeout=60) == 0
    assert sorted(done_names(data)) == ["acme-201806280000.json", "acme-201806280015.json"]
    assert [e["entry"] for e in w.events("entry_ignored")] == ["2018_06_28_00_00.txt"]
    verify = ingestd("verify", str(data), "--expect", "2", "--key-pattern", pattern)
    assert verify.returncode == 0, verify.stdout
    # Without the pattern, the operator's view does not know these names: one line says so.
    assert ingestd("verify", str(data)).returncode == 1
    bad = spawn(data, "--key-pattern", r"(?P<year>\d{4})\.txt")
    assert bad.wait(timeout=30) == 2 and "lacks the named groups" in bad.text
    typo = ingestd("status", str(data), "--key-pattern", "(")
    assert typo.returncode == 2 and "--key-pattern" in typo.stderr


def test_a_key_blocked_by_a_failed_file_shows_in_status_until_it_is_retried(
    data: Path, spawn
) -> None:
    poison, after, other = (
        "acme_2018_06_28_00_00.txt", "acme_2018_06_28_00_15.txt", "beta_2018_06_28_00_00.txt",
    )  # fmt: skip
    (data / poison).write_text("not a number\n")
    (data / after).write_text("0\n")
    (data / other).write_text("0\n")
    w = spawn(data, "--one-per-key", "--on-key-failure", "block", "--max-attempts", "1",
              "--heartbeat-interval", "0.2")  # fmt: skip
    wait_for(lambda: set(done_names(data)) == {other} and ingestd("failed", str(data)).stdout
             and json.loads(ingestd("status", str(data), "--json").stdout)["blocked_keys"],
             what="acme blocked")  # fmt: skip
    status = ingestd("status", str(data), "--json")
    assert status.returncode == 1
    report = json.loads(status.stdout)
    assert report["blocked_keys"] == {"acme": poison}
    assert report["keys"]["acme"]["blocked_by"] == poison
    assert report["keys"]["beta"]["blocked_by"] is None
    assert f"BLOCKED key    acme by failed {poison}" in ingestd("status", str(data)).stdout
    assert after not in done_names(data)  # held: block means block
    (data / poison).write_text("0\n")  # fixed by the provider, then retried by the operator
    assert ingestd("retry", str(data), poison).returncode == 0
    wait_for(lambda: set(done_names(data)) == {poison, after, other}, what="acme going again")
    wait_for(lambda: not json.loads(ingestd("status", str(data), "--json").stdout)["blocked_keys"],
             what="acme no longer blocked")  # fmt: skip
    assert w.terminate() == 0
