"""Benchmark 5, concurrency scaling: 1, 2, 4, 8 worker processes on 1,000 files of 10 ms.

Each file says 1 minute and workers run at `--seconds-in-min 0.01`, so the work itself is
10 s in all. Measured: wall time from the first claim to the last record, and the speed-up
against 1 worker (ideal: linear in the worker count).

    python bench/scaling.py [--files 1000] [--workers 1 2 4 8] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import count_lines, epoch, json_log, record, table, wait_until, workers
from drain import make_files


def run(count: int, files: int) -> float:
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-", dir=Path.cwd()) as tmp:
        base = Path(tmp)
        data = base / "drop"
        make_files(data, files)
        manifest = data / ".ingestd" / "manifest.jsonl"
        args = ("--seconds-in-min", "0.01", "--settle", "0", "--rescan-interval", "1")
        with workers(data, count, *args):
            wait_until(lambda: count_lines(manifest) >= files, timeout=600, poll=0.05)
        logs = [json_log(base / f"worker{i}.log") for i in range(count)]
        claims = [
            epoch(r["timestamp"]) for log in logs for r in log if r["event"] == "file_claimed"
        ]
        ends = [epoch(line.split('"finished_at":"')[1].split('"')[0])
                for line in manifest.read_text().splitlines()]  # fmt: skip
    return max(ends) - min(claims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--quick", action="store_true", help="100 files, 1 and 2 workers")
    args = parser.parse_args()
    files, counts = (100, [1, 2]) if args.quick else (args.files, args.workers)
    rows, base = [], None
    for count in counts:
        seconds = run(count, files)
        base = base or seconds * counts[0]
        speedup = base / seconds
        record("scaling", {"workers": count, "files": files, "seconds": seconds,
                           "speedup": speedup, "efficiency": speedup / count})  # fmt: skip
        rows.append([count, files, seconds, speedup, speedup / count])
    print(table(["workers", "files", "seconds", "speed-up", "efficiency"], rows))


if __name__ == "__main__":
    main()
