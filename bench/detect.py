"""Benchmark 3, detection latency: file closed -> `file_claimed`, p50 and p99.

With inotify events (the default) and with scans only (`--no-watch`, what a worker sees of
files written by other NFS hosts), both at the default `--rescan-interval 2 --settle 1`.
Files are written one at a time, each after the previous was claimed.

    python bench/detect.py [--files 30] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import epoch, json_log, percentile, record, table, wait_until, workers


def measure(mode: str, files: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-") as tmp:
        base = Path(tmp)
        data = base / "drop"
        data.mkdir()
        log = base / "worker0.log"
        extra = ["--no-watch"] if mode == "scans" else []
        with workers(data, 1, "--seconds-in-min", "0", *extra):
            wait_until(lambda: log.exists() and '"ready"' in log.read_text(), timeout=30)
            closed: dict[str, float] = {}
            for i in range(files):
                name = f"2018_06_28_{i // 60:02d}_{i % 60:02d}.txt"
                fd = os.open(data / name, os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, b"1")
                os.close(fd)
                closed[name] = time.time()
                wait_until(lambda i=i: log.read_text().count('"file_claimed"') > i, timeout=30)
                time.sleep(0.05 if mode == "events" else 0.3)  # a different phase each time
            claims = {r["file"]: epoch(r["timestamp"]) for r in json_log(log)
                      if r["event"] == "file_claimed"}  # fmt: skip
    latencies = [(claims[name] - t) * 1000 for name, t in closed.items()]
    return {
        "mode": mode,
        "files": files,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="5 files per mode")
    args = parser.parse_args()
    files = 5 if args.quick else args.files
    rows = []
    for mode in ("events", "scans"):
        result = measure(mode, files if mode == "events" else max(5, files // 3))
        record("detect", result)
        rows.append([result["mode"], result["files"], result["p50_ms"], result["p99_ms"],
                     result["max_ms"]])  # fmt: skip
    print(table(["discovery", "files", "p50 ms", "p99 ms", "max ms"], rows))


if __name__ == "__main__":
    main()
