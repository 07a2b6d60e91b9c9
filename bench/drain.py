"""Benchmark 2, drain throughput: N ready files, `--seconds-in-min 0`, 1/2/4 workers.

Reported beside a raw loop, measured in the same run on the same disk, that makes only the
syscalls a claim protocol cannot avoid per file: open + flock + unlink the lock file, read the
data file, flock + append + fsync the manifest. The ratio is what the daemon's own machinery
(asyncio, threads, logging, bookkeeping) costs on top.

    python bench/drain.py [--files 10000] [--workers 1 2 4] [--concurrency 1] [--quick]

`--concurrency N...` runs each worker count at each `--concurrency` (files in work per worker):
above 1, records that finish together share one append and fsync (group commit).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

from common import count_lines, record, table, wait_until, workers


def make_files(data: Path, count: int) -> list[str]:
    data.mkdir(parents=True)
    names = []
    for i in range(count):
        day, minute = divmod(i, 24 * 60)
        name = (
            f"2018_{1 + day // 28:02d}_{1 + day % 28:02d}_{minute // 60:02d}_{minute % 60:02d}.txt"
        )
        (data / name).write_text("1")
        names.append(name)
    return names


def raw_loop(data: Path, names: list[str]) -> float:
    """Files per second for the unavoidable syscalls alone, one process."""
    state = data / ".raw"
    (state / "locks").mkdir(parents=True)
    lock_fd = os.open(state / "manifest.lock", os.O_RDWR | os.O_CREAT)
    out_fd = os.open(state / "manifest.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    start = time.perf_counter()
    for name in names:
        path = state / "locks" / f"{name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with open(data / name, "rb") as handle:
            content = handle.read()
        line = json.dumps({"file": name, "status": "done", "minutes": float(content)}) + "\n"
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        os.write(out_fd, line.encode())
        os.fsync(out_fd)
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.unlink(path)
        os.close(fd)
    elapsed = time.perf_counter() - start
    os.close(lock_fd)
    os.close(out_fd)
    return len(names) / elapsed


def drain(data: Path, count: int, total: int, concurrency: int = 1) -> float:
    manifest = data / ".ingestd" / "manifest.jsonl"
    with workers(data, count, "--seconds-in-min", "0", "--settle", "0", "--rescan-interval", "1",
                 "--concurrency", str(concurrency)):  # fmt: skip
        start = time.perf_counter()
        wait_until(lambda: count_lines(manifest) >= total, timeout=900, poll=0.05)
        elapsed = time.perf_counter() - start
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1])
    parser.add_argument("--quick", action="store_true", help="300 files, 2 workers")
    args = parser.parse_args()
    files, counts = (300, [2]) if args.quick else (args.files, args.workers)
    rows = []
    for count in counts:
        for concurrency in args.concurrency:
            with tempfile.TemporaryDirectory(prefix="ingestd-bench-", dir=Path.cwd()) as tmp:
                data = Path(tmp) / "drop"
                names = make_files(data, files)
                raw = raw_loop(data, names)
                rate = drain(data, count, files, concurrency)
            result = {"workers": count, "concurrency": concurrency, "files": files,
                      "files_per_s": rate, "raw_files_per_s": raw, "ratio": rate / raw}  # fmt: skip
            record("drain", result)
            rows.append([count, concurrency, files, rate, raw, rate / raw])
    print(table(["workers", "concurrency", "files", "files/s", "raw loop files/s", "ratio"], rows))


if __name__ == "__main__":
    main()
