"""Operator commands at scale: `verify`, `failed`, `status` and `timeline` on a big state.

100,000 files in DIR and a 1,000,000-record manifest (bench/scale.py's layout). Each command
runs as a real process; its wall time and peak RSS (of that process alone) are printed beside
`compact`'s on the same manifest in the same run: the baseline, one streaming pass over the
same records and a rewrite of them.

Then the same records in a PostgreSQL ledger (a throwaway cluster, tests/pgcluster.py; skipped
without server binaries): `verify`, `failed` and `status` with `--ledger postgresql://...`,
beside the same server's `COPY` of those records' audit columns to nowhere in the same run.

    python bench/operators.py [--files 100000] [--records 1000000] [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import record, table
from scale import build, sizes

from ingestd.contracts.naming import format_name

COMMANDS = (
    ("compact", ["compact"]),
    ("verify", ["verify"]),
    ("failed", ["failed"]),
    ("status", ["status"]),
    ("timeline_last", ["timeline", "-o", "{tmp}/last.png", "--last", "1d"]),
    ("timeline", ["timeline", "-o", "{tmp}/all.png"]),
)


def run(data: Path, tmp: Path, args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MB) of `ingestd ARGS[0] DIR ARGS[1:]` as a child process."""
    argv = [a.replace("{tmp}", str(tmp)) for a in args]
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "ingestd", argv[0], str(data), *argv[1:]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, peak RSS included
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        error = child.stderr.read().decode()[-500:] if child.stderr else ""
        raise SystemExit(f"{argv}: exit {child.returncode}: {error}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    files, records = sizes(__doc__.split("\n\n")[0])
    rows = []
    figures: dict[str, float] = {"files": files, "records": records}
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-", dir=Path.cwd()) as tmp:
        data = Path(tmp) / "drop"
        build(data, files, records)
        baseline = None
        for label, command in COMMANDS:
            seconds, peak = run(data, Path(tmp), command)
            baseline = baseline or seconds
            rows.append([label, round(seconds, 1), round(peak), round(seconds / baseline, 2)])
            figures[f"{label}_s"] = round(seconds, 2)
            figures[f"{label}_mb"] = round(peak)
            print(f"{label}: {seconds:.1f} s, peak RSS {peak:.0f} MB", flush=True)
    print(f"\n{files:,} files, {records:,} records")
    print(table(["command", "seconds", "peak RSS MB", "x compact"], rows))
    rows = postgresql(files, records, figures)
    if rows:
        print("\nthe same in a PostgreSQL ledger")
        print(table(["command", "seconds", "peak RSS MB", "x COPY of the audit columns"], rows))
    record("operators", figures)


def postgresql(files: int, records: int, figures: dict[str, float]) -> list[list[object]]:
    """`verify`, `failed`, `status` on the records in a PostgreSQL ledger; [] without a server."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pgcluster import PgCluster, locate

    if locate() is None:
        return []
    cluster = PgCluster()
    rows: list[list[object]] = []
    try:
        url = cluster.createdb("operators")
        with tempfile.TemporaryDirectory(prefix="ingestd-bench-", dir=Path.cwd()) as tmp:
            data = Path(tmp) / "drop"
            data.mkdir()
            # A worker on the empty directory makes the schema; the records are put in below.
            subprocess.run([sys.executable, "-m", "ingestd", str(data), "--ledger", url,
                            "--exit-when-idle", "0", "--seconds-in-min", "0",
                            "--log-format", "json"], capture_output=True, check=True)  # fmt: skip
            cluster.psql(
                "INSERT INTO ingestd.records (source, file, status, worker, host, pid, attempt,"
                " minutes, size, sha256, seen_at, started_at, finished_at) SELECT"
                f" {_literal(str(data.resolve()))}, to_char(timestamp '2000-01-01' + g *"
                " interval '1 minute', 'YYYY_MM_DD_HH24_MI') || '.txt', 'done', 'host-a:1234',"
                " 'host-a', 1234, 1, 22.5050828, 10, repeat('9', 64),"
                " '2018-06-28T00:00:00.000+00:00', '2018-06-28T00:00:00.001+00:00',"
                f" '2018-06-28T00:22:30.000+00:00' FROM generate_series(0, {records - 1}) g",
                dbname="operators",
            )
            start = datetime(2000, 1, 1)  # the names the statement above made
            for i in range(records - files, records):
                (data / format_name(start + timedelta(minutes=i))).write_text("22.5050828")
            started = time.perf_counter()
            cluster.psql(
                "COPY (SELECT file, status, worker, attempt, minutes, finished_at FROM"
                " ingestd.records ORDER BY seq) TO '/dev/null'",
                dbname="operators",
            )
            baseline = time.perf_counter() - started
            rows.append(["COPY of the audit columns", round(baseline, 1), "", 1.0])
            for label in ("verify", "failed", "status"):
                seconds, peak = run(data, Path(tmp), [label, "--ledger", url])
                rows.append([label, round(seconds, 1), round(peak), round(seconds / baseline, 2)])
                figures[f"pg_{label}_s"] = round(seconds, 2)
                figures[f"pg_{label}_mb"] = round(peak)
                print(f"postgresql {label}: {seconds:.1f} s, peak RSS {peak:.0f} MB", flush=True)
    finally:
        cluster.destroy()
    return rows


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


if __name__ == "__main__":
    main()
