"""simulation.py: the provider's timing, contents and realism switches."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import ROOT, SIMULATION

APPENDIX = ROOT / "data" / "appendix-2018-06-28.tsv"


def run_sim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SIMULATION), *args], capture_output=True, text=True, timeout=timeout
    )


def table() -> dict[str, str]:
    rows = [line.split("\t") for line in APPENDIX.read_text().splitlines()[1:] if line]
    return {name: minutes for name, minutes in rows}


def arrivals(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_appendix_day_lands_on_schedule_with_exact_contents(tmp_path: Path) -> None:
    drop, log = tmp_path / "drop", tmp_path / "arrivals.jsonl"
    result = run_sim(str(drop), "--seconds-in-min", "0.01", "--arrivals", str(log))
    assert result.returncode == 0, result.stderr
    expected = table()
    assert len(expected) == 96
    assert {p.name: p.read_text() for p in drop.iterdir()} == expected  # as written in the table
    landed = arrivals(log)
    first_stamp = datetime.strptime(landed[0]["file"], "%Y_%m_%d_%H_%M.txt")
    for entry in landed:
        offset = datetime.strptime(entry["file"], "%Y_%m_%d_%H_%M.txt") - first_stamp
        due = offset.total_seconds() / 60 * 0.01
        actual = entry["written_at"] - landed[0]["written_at"]
        # A generous tolerance: a loaded machine may run late, but never early, and lateness
        # must not accumulate (absolute deadlines).
        assert due - 0.01 <= actual <= due + 0.5, (entry["file"], due, actual)


def test_synthetic_schedule_at_full_speed_is_reproducible(tmp_path: Path) -> None:
    for run in ("a", "b"):
        result = run_sim(str(tmp_path / run), "--files", "20", "--interval-minutes", "15",
                         "--seconds-in-min", "0", "--seed", "5",
                         "--minutes-dist", "uniform:12:37")  # fmt: skip
        assert result.returncode == 0, result.stderr
    a = {p.name: p.read_text() for p in (tmp_path / "a").iterdir()}
    assert a == {p.name: p.read_text() for p in (tmp_path / "b").iterdir()}
    assert len(a) == 20 and all(12 <= float(v) <= 37 for v in a.values())
    assert "2018_06_28_04_45.txt" in a


def test_lag_reorders_reproducibly(tmp_path: Path) -> None:
    orders = []
    for run in ("a", "b"):
        log = tmp_path / f"{run}.jsonl"
        result = run_sim(str(tmp_path / run), "--files", "30", "--seconds-in-min", "0.001",
                         "--lag-minutes", "40", "--seed", "11", "--arrivals", str(log))  # fmt: skip
        assert result.returncode == 0, result.stderr
        orders.append([e["file"] for e in arrivals(log)])
    assert orders[0] == orders[1]
    assert orders[0] != sorted(orders[0])


def watch_contents(directory: Path, proc: subprocess.Popen[bytes]) -> dict[str, set[str]]:
    """Every content seen under each final name while the provider runs."""
    seen: dict[str, set[str]] = {}
    while proc.poll() is None:
        if directory.exists():
            for path in directory.iterdir():
                if not path.name.startswith("."):
                    with contextlib.suppress(FileNotFoundError):
                        seen.setdefault(path.name, set()).add(path.read_text())
        time.sleep(0.002)
    return seen


@pytest.mark.parametrize("atomic", [False, True])
def test_slow_write_is_visible_unless_atomic(tmp_path: Path, atomic: bool) -> None:
    drop = tmp_path / "drop"
    args = [sys.executable, str(SIMULATION), str(drop), "--files", "4", "--seconds-in-min", "0",
            "--slow-write", "--minutes-dist", "const:123.4567"]  # fmt: skip
    proc = subprocess.Popen([*args, "--atomic"] if atomic else args, stdout=subprocess.DEVNULL)
    seen = watch_contents(drop, proc)
    assert proc.wait() == 0
    final = "123.4567000"
    assert len(seen) == 4
    partial = {name: contents - {final} for name, contents in seen.items()}
    if atomic:
        assert all(not p for p in partial.values()), partial  # never a partial file
    else:
        assert any(partial.values()), seen  # observably incomplete before the close
        assert all(final.startswith(c) for p in partial.values() for c in p)


def test_bad_files_are_added_off_grid(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    result = run_sim(str(tmp_path / "d"), "--files", "8", "--seconds-in-min", "0",
                     "--bad-files", "3", "--arrivals", str(log))  # fmt: skip
    assert result.returncode == 0
    bad = [e for e in arrivals(log) if e["bad"]]
    assert [e["minutes"] for e in bad] == ["not a number", "nan", "-3"]
    assert all(e["file"][-6:-4] not in ("00", "15", "30", "45") for e in bad)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["{tmp}/d", "--schedule", "{tmp}/missing.tsv"],
        ["{tmp}/d", "--seconds-in-min", "-1"],
        ["{tmp}/d", "--seconds-in-min", "nan"],
        ["{tmp}/d", "--files", "3", "--minutes-dist", "poisson:3"],
        ["{tmp}/d", "--files", "3", "--start", "2020_02_30_00_00"],
        ["{tmp}/d", "--schedule", "{tmp}/bad.tsv"],
        ["{tmp}/d", "--schedule", "{tmp}/twice.tsv"],
        ["{tmp}/d", "--files", "0"],
        ["{tmp}/d", "--files", "3", "--interval-minutes", "0"],
        ["{tmp}/d", "--files", "3", "--interval-minutes", "0.5"],
        ["{tmp}/d", "--files", "ten"],
        ["{tmp}/d", "--bad-files", "-1"],
    ],
)
def test_usage_errors_exit_2_without_a_traceback(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "bad.tsv").write_text("filename\tminutes\nnot-a-name.txt\t3\n")
    (tmp_path / "twice.tsv").write_text("2018_06_28_00_00.txt\t3\n2018_06_28_00_00.txt\t4\n")
    result = run_sim(*(a.format(tmp=tmp_path) for a in args))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "error" in result.stderr
    assert "_count" not in result.stderr  # no internal names in messages
    assert not (tmp_path / "d").exists()  # nothing written


def test_fractional_interval_writes_as_many_files_as_it_says(tmp_path: Path) -> None:
    result = run_sim(
        str(tmp_path / "d"), "--files", "3", "--interval-minutes", "1.5", "--seconds-in-min", "0"
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "d").iterdir())) == 3
    assert "wrote 3 files" in result.stdout


def test_help_explains_with_an_example() -> None:
    result = run_sim("--help")
    assert result.returncode == 0
    assert "--slow-write" in result.stdout and "python simulation.py /tmp/drop" in result.stdout
