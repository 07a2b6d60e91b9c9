"""The PostgreSQL ledger's claim + commit rate, beside the file ledger's, in one run.

N ready tiny files (`--seconds-in-min 0`: the handler does nothing), 2 and 4 worker processes,
first claim to last record (from the records). The file ledger's state dir is on the same
disk as the throwaway cluster (tests/pgcluster.py, fsync on): one durable commit per file
either way. Beside the rates, the CPU each file costs: the workers' (their rusage) and the
server's (the postmaster's own and its reaped backends' times, from /proc), in milliseconds;
with every process on the same cores, their sum is what bounds the rate.

    python bench/pg_ledger.py [--files 2000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import epoch, record, table
from pgcluster import PgCluster


def make_files(data: Path, count: int) -> None:
    data.mkdir(parents=True)
    for i in range(count):
        day, minute = divmod(i, 24 * 60)
        (data / f"2018_{1 + day // 28:02d}_{1 + day % 28:02d}_{minute // 60:02d}_"
                f"{minute % 60:02d}.txt").write_text("0")  # fmt: skip


def run(data: Path, workers: int, ledger: list[str]) -> None:
    command = [sys.executable, "-m", "ingestd", str(data), "--seconds-in-min", "0",
               "--exit-when-idle", "1", "--log-format", "json", *ledger]  # fmt: skip
    procs = [
        subprocess.Popen([*command, "--worker-id", f"w{i}"], stdout=subprocess.DEVNULL)
        for i in range(workers)
    ]
    for proc in procs:
        proc.wait()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def server_cpu(cluster: PgCluster) -> float:
    """The postmaster's CPU seconds and its exited children's (the workers' backends)."""
    pid = (cluster.data / "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def rate(records: list[dict[str, object]]) -> float:
    start = min(epoch(str(r["started_at"])) for r in records)
    end = max(epoch(str(r["finished_at"])) for r in records)
    return len(records) / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 files, 2 workers")
    args = parser.parse_args()
    files, counts = (200, [2]) if args.quick else (args.files, [2, 4])
    cluster = PgCluster(fsync=True)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="ingestd-bench-") as tmp:
            base = Path(tmp)
            for workers in counts:
                data = base / f"file-{workers}"
                make_files(data, files)
                before = children_cpu()
                run(data, workers, [])
                file_cpu = (children_cpu() - before) / files * 1000
                manifest = (data / ".ingestd" / "manifest.jsonl").read_text().splitlines()
                file_rate = rate([json.loads(line) for line in manifest])
                name = f"w{workers}"
                url = cluster.createdb(name)
                data = base / f"pg-{workers}"
                make_files(data, files)
                before, before_server = children_cpu(), server_cpu(cluster)
                run(data, workers, ["--ledger", url])
                pg_cpu = (children_cpu() - before) / files * 1000
                pg_server_cpu = (server_cpu(cluster) - before_server) / files * 1000
                out = cluster.psql("SELECT json_agg(r) FROM ingestd.records r", dbname=name)
                records = json.loads(out)
                assert len(records) == files, len(records)
                pg_rate = rate(records)
                rows.append([workers, files, round(pg_rate), round(file_rate),
                             round(pg_rate / file_rate, 2), round(pg_cpu, 2),
                             round(pg_server_cpu, 2), round(file_cpu, 2)])  # fmt: skip
    finally:
        cluster.destroy()
    headers = ["workers", "files", "postgresql files/s", "file ledger files/s", "ratio",
               "pg: worker CPU ms/file", "pg: server CPU ms/file",
               "file: worker CPU ms/file"]  # fmt: skip
    print(table(headers, rows))
    record("pg_ledger", {"rows": rows})


if __name__ == "__main__":
    main()
