"""An s3:// source: detection latency, drain rate beside a local directory, listing cost.

Against moto's S3 server on 127.0.0.1 in this process (tests/s3server.py; `pip install -e
'.[test]'`), with the file ledger's state dir on local disk for both sources:

- detection: one object PUT at a time into a bucket two idle workers watch at the default
  scan interval for a bucket (15 s; `--quick`: 1 s), PUT to `file_claimed`; p50/p99 and the
  p50 as a fraction of the interval (a listing finds an object on average half an interval
  after it lands).
- drain: N ready tiny objects (`--seconds-in-min 0`), 2 workers, first claim to last record;
  the same N files from a local directory in the same run.
- listing cost: requests per incremental scan on a bucket of 10,000 objects, 9,990 done,
  and what that makes per hour per worker at the default interval.

    python bench/s3_source.py [--objects 2000] [--samples 12] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import epoch, json_log, percentile, record, table, wait_until, workers
from s3server import S3Server

from ingestd.contracts.naming import format_name
from ingestd.sources.s3 import KIND as BUCKETS
from ingestd.sources.s3 import S3Source


def names(count: int) -> list[str]:
    first = datetime(2018, 1, 1)
    return [format_name(first + timedelta(minutes=15 * i)) for i in range(count)]


def detection(server: S3Server, base: Path, samples: int, interval: float) -> list[float]:
    bucket = server.bucket()
    client = server.client()
    state = base / "detect-state"
    latencies = []
    args = ("--state-dir", str(state), "--seconds-in-min", "0", "--rescan-interval", str(interval))
    with workers(f"s3://{bucket}", 2, *args, log_dir=base) as procs:
        logs = [base / f"worker{i}.log" for i in range(len(procs))]
        wait_until(lambda: all(any(r.get("event") == "ready" for r in json_log(p)) for p in logs),
                   timeout=60)  # fmt: skip
        for name in names(samples):
            put_at = time.time()
            client.put_object(Bucket=bucket, Key=name, Body=b"0")

            def claimed(name: str = name) -> float | None:
                for path in logs:
                    for r in json_log(path):
                        if r.get("event") == "file_claimed" and r.get("file") == name:
                            return epoch(r["timestamp"])
                return None

            wait_until(lambda: claimed() is not None, timeout=interval * 3 + 30)
            latencies.append(float(claimed() or 0.0) - put_at)
            time.sleep(interval * 0.37)  # PUTs at varying phases of the scan cycle
    return latencies


def drain(server: S3Server, base: Path, count: int) -> tuple[float, float]:
    """(files/s from a bucket, files/s from a local directory), 2 workers each."""
    bucket = server.bucket()
    keys = names(count)
    server.put_many(bucket, keys, b"0")
    local = base / "drain-dir"
    local.mkdir()
    for key in keys:
        (local / key).write_text("0")
    rates = []
    for source, state in ((f"s3://{bucket}", base / "drain-s3-state"), (str(local), None)):
        args = ["--seconds-in-min", "0", "--exit-when-idle", "1"]
        # The bucket at its default interval: the first listing finds every object, and a
        # listing of thousands of unfinished keys every second would only load the server.
        args += ["--state-dir", str(state)] if state is not None else ["--rescan-interval", "1"]
        with workers(source, 2, *args, log_dir=base) as procs:
            for proc in procs:
                proc.wait(timeout=600)
        manifest = (state or local / ".ingestd") / "manifest.jsonl"
        records = json_log(manifest)
        assert len(records) == count, (source, len(records))
        start = min(epoch(r["started_at"]) for r in records)
        end = max(epoch(r["finished_at"]) for r in records)
        rates.append(count / (end - start))
    return rates[0], rates[1]


def listing_cost(server: S3Server) -> tuple[int, int]:
    """(requests, keys) of an incremental scan over 10,000 objects with 9,990 done."""
    bucket = server.bucket()
    keys = names(10_000)
    server.put_many(bucket, keys)
    source = S3Source(f"s3://{bucket}", server.client())
    done = set(keys[:9_990])
    source.scan(done.__contains__)  # the first scan is a full listing
    source.scan(done.__contains__)
    return source.last_scan.requests, source.last_scan.keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="200 objects, 4 samples at 1 s")
    args = parser.parse_args()
    objects, samples, interval = (
        (200, 4, 1.0) if args.quick else (args.objects, args.samples, BUCKETS.rescan_interval)
    )
    server = S3Server()
    os.environ.update(server.env)
    try:
        with tempfile.TemporaryDirectory(prefix="ingestd-bench-") as tmp:
            base = Path(tmp)
            latencies = detection(server, base, samples, interval)
            s3_rate, dir_rate = drain(server, base, objects)
            requests, keys = listing_cost(server)
    finally:
        server.stop()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    per_hour = round(3600 / BUCKETS.rescan_interval * requests)
    rows = [
        [f"detection, scan every {interval:g} s: PUT → claimed p50 / p99 (s)",
         f"{p50:.2f} / {p99:.2f}", f"p50 = {p50 / interval:.2f} x interval"],
        [f"drain {objects} tiny objects, 2 workers (files/s)", round(s3_rate),
         f"local dir: {round(dir_rate)}, ratio {s3_rate / dir_rate:.2f}"],
        ["incremental scan, 10,000 objects, 9,990 done: requests / keys", f"{requests} / {keys}",
         f"{per_hour} LIST/h per worker at {BUCKETS.rescan_interval:g} s"],
    ]  # fmt: skip
    print(table(["what", "measured", "beside it"], rows))
    record("s3_source", {"rows": rows, "latencies": [round(x, 3) for x in latencies]})


if __name__ == "__main__":
    main()
