"""Benchmark 4, scale: a big directory and a big manifest.

100,000 files in DIR, all done, and a 1,000,000-record manifest. Measured on one worker:
start-up time to the `ready` event, RSS at ready and at peak, CPU per rescan while idle, and
the time to notice and claim one new file (events, and scans only).

    python bench/scale.py [--files 100000] [--records 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import epoch, json_log, record, table, wait_until, workers

from ingestd.contracts.naming import format_name
from ingestd.ledgers.file.manifest import encode

TICKS = os.sysconf("SC_CLK_TCK")


def build(data: Path, files: int, records: int) -> list[str]:
    state = data / ".ingestd"
    state.mkdir(parents=True)
    start = datetime(2000, 1, 1)
    names = [format_name(start + timedelta(minutes=i)) for i in range(records)]
    with open(state / "manifest.jsonl", "wb") as out:
        batch = []
        for name in names:
            batch.append(encode({
                "file": name, "status": "done", "worker": "host-a:1234", "host": "host-a",
                "pid": 1234, "attempt": 1, "minutes": 22.5050828, "size": 10,
                "sha256": "9" * 64, "seen_at": "2018-06-28T00:00:00.000+00:00",
                "started_at": "2018-06-28T00:00:00.001+00:00",
                "finished_at": "2018-06-28T00:22:30.000+00:00",
            }))  # fmt: skip
            if len(batch) == 10_000:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))
    for name in names[-files:]:
        (data / name).write_text("22.5050828")
    return names


def proc_stat(pid: int) -> tuple[float, int, int]:
    """(cpu seconds, rss kB, peak rss kB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return cpu, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


def measure(files: int, records: int, watch: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-", dir=Path.cwd()) as tmp:
        base = Path(tmp)
        data = base / "drop"
        names = build(data, files, records)
        log = base / "worker0.log"
        interval = 1.0
        args = ["--seconds-in-min", "0", "--rescan-interval", str(interval), "--settle", "0.2"]
        if not watch:
            args.append("--no-watch")
        started = time.time()
        with workers(data, 1, *args) as (proc,):
            wait_until(lambda: '"event": "ready"' in log.read_text(), timeout=300, poll=0.02)
            ready = next(r for r in json_log(log) if r["event"] == "ready")
            startup = epoch(ready["timestamp"]) - started
            _, rss_ready, _ = proc_stat(proc.pid)
            time.sleep(interval)  # let the start-up settle into the idle rhythm
            cpu0, _, _ = proc_stat(proc.pid)
            rescans = 5
            time.sleep(rescans * interval)
            cpu1, _, peak = proc_stat(proc.pid)
            new = format_name(
                datetime.strptime(names[-1], "%Y_%m_%d_%H_%M.txt") + timedelta(minutes=1)
            )
            (data / new).write_text("1")
            written = time.time()
            wait_until(lambda: '"file_claimed"' in log.read_text(), timeout=60, poll=0.01)
            claimed = next(r for r in json_log(log) if r["event"] == "file_claimed")
    return {
        "files": files,
        "records": records,
        "watch": watch,
        "startup_s": startup,
        "rss_ready_mb": rss_ready / 1024,
        "rss_peak_mb": peak / 1024,
        "cpu_per_rescan_s": (cpu1 - cpu0) / rescans,
        "new_file_claimed_s": epoch(claimed["timestamp"]) - written,
    }


def sizes(description: str) -> tuple[int, int]:
    """(files, records) from the command line: --files, --records, --quick."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="2,000 files, 20,000 records")
    args = parser.parse_args()
    return (2_000, 20_000) if args.quick else (args.files, args.records)


def main() -> None:
    files, records = sizes(__doc__.split("\n\n")[0])
    rows = []
    for watch in (True, False):
        result = measure(files, records, watch)
        record("scale", result)
        rows.append([files, records, "events" if watch else "scans only", result["startup_s"],
                     result["rss_ready_mb"], result["rss_peak_mb"], result["cpu_per_rescan_s"],
                     result["new_file_claimed_s"]])  # fmt: skip
    print(table(["files", "records", "discovery", "start-up s", "RSS MB", "peak RSS MB",
                 "CPU s/rescan", "new file claimed s"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
