"""The PostgreSQL ledger's claim + commit rate, beside the file ledger's, in one run.

N ready tiny files (`--seconds-in-min 0`: the handler does nothing), 2 and 4 worker processes,
first claim to last record (from the records). The file ledger's state dir is on the same
disk as the throwaway cluster (tests/pgcluster.py, fsync on): one durable commit per file
either way. Beside the rates, the CPU each file costs: the workers' (their rusage) and the
server's (the postmaster's own and its reaped backends' times, from /proc), in milliseconds;
with every process on the same cores, their sum is what bounds the rate.

Then takeover: a worker holding a long file is SIGKILLed, or its sessions are cut with
`pg_terminate_backend`; the time until a peer (default 2 s rescans) claims the file, beside
the lease (which a takeover must not wait for).

    python bench/pg_ledger.py [--files 2000] [--workers 2 4] [--concurrency 1]
                              [--no-takeover] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import epoch, json_log, rate, record, table, wait_until
from pgcluster import PgCluster

from ingestd.ledgers.postgres import RESTART_GRACE


def make_files(data: Path, count: int) -> None:
    data.mkdir(parents=True)
    for i in range(count):
        day, minute = divmod(i, 24 * 60)
        (data / f"2018_{1 + day // 28:02d}_{1 + day % 28:02d}_{minute // 60:02d}_"
                f"{minute % 60:02d}.txt").write_text("0")  # fmt: skip


def run(data: Path, workers: int, ledger: list[str], concurrency: int = 1) -> None:
    command = [sys.executable, "-m", "ingestd", str(data), "--seconds-in-min", "0",
               "--exit-when-idle", "1", "--log-format", "json",
               "--concurrency", str(concurrency), *ledger]  # fmt: skip
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


def takeover(cluster: PgCluster, base: Path, how: str) -> float:
    """Seconds from the holder's end (SIGKILL, or its sessions cut) to a peer's claim."""
    name = "takeover_" + how.replace(" ", "_")
    url = cluster.createdb(name)
    data = base / name
    data.mkdir()
    (data / "2018_06_28_00_00.txt").write_text("120")  # 120 s of work: held throughout
    common = [sys.executable, "-m", "ingestd", str(data), "--ledger", url, "--log-format",
              "json", "--seconds-in-min", "1"]  # fmt: skip
    logs = {who: base / f"{name}-{who}.log" for who in ("holder", "heir")}
    procs = {}
    try:
        for who in ("holder", "heir"):
            with open(logs[who], "wb") as out:
                procs[who] = subprocess.Popen([*common, "--worker-id", who], stdout=out,
                                              stderr=subprocess.STDOUT)  # fmt: skip
            if who == "holder":
                try:
                    wait_until(lambda: "file_claimed" in logs["holder"].read_text(), 30)
                except TimeoutError:
                    raise SystemExit(logs["holder"].read_text()[-2000:]) from None
        wait_until(lambda: '"ready"' in logs["heir"].read_text(), 30)
        time.sleep(1)
        ended = time.time()
        if how == "sigkill":
            procs["holder"].kill()
        else:
            # A partition: the holder is frozen (it cannot reconnect and lock again, as a
            # live holder cut off for a moment would, racing its peer) and its sessions end.
            procs["holder"].send_signal(signal.SIGSTOP)
            cluster.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN (SELECT pid"
                " FROM pg_locks WHERE locktype = 'advisory' AND objid = "
                f"hashtext('{os.path.realpath(data)} holder')::oid)",
                dbname=name,
            )
        wait_until(lambda: "taken_over_from" in logs["heir"].read_text(), 60)
        claim = next(r for r in json_log(logs["heir"]) if r.get("taken_over_from"))
        return epoch(claim["timestamp"]) - ended
    finally:
        for proc in procs.values():
            proc.kill()
            proc.send_signal(signal.SIGCONT)  # a stopped process dies once continued
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 files, 2 workers")
    parser.add_argument("--concurrency", type=int, default=1, help="each worker's --concurrency")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts (default 2 4)")
    parser.add_argument("--no-takeover", action="store_true", help="only the drain rates")
    args = parser.parse_args()
    files, counts = (200, [2]) if args.quick else (args.files, args.workers or [2, 4])
    cluster = PgCluster(fsync=True)
    started = time.monotonic()
    rows = []
    takeovers = []
    try:
        with tempfile.TemporaryDirectory(prefix="ingestd-bench-") as tmp:
            base = Path(tmp)
            # Right after a server start, a missing session lock proves nothing (the
            # ledger's restart grace): measure takeovers past it.
            if not args.no_takeover:
                time.sleep(max(0.0, RESTART_GRACE + 1 - (time.monotonic() - started)))
            for how in () if args.no_takeover else ("sigkill", "cut session"):
                takeovers.append([how, round(takeover(cluster, base, how), 2), "10 s"])
            for workers in counts:
                data = base / f"file-{workers}"
                make_files(data, files)
                before = children_cpu()
                run(data, workers, [], args.concurrency)
                file_cpu = (children_cpu() - before) / files * 1000
                manifest = (data / ".ingestd" / "manifest.jsonl").read_text().splitlines()
                file_rate = rate([json.loads(line) for line in manifest])
                name = f"w{workers}"
                url = cluster.createdb(name)
                data = base / f"pg-{workers}"
                make_files(data, files)
                before, before_server = children_cpu(), server_cpu(cluster)
                run(data, workers, ["--ledger", url], args.concurrency)
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
    print(table(["takeover after", "seconds to a peer's claim", "lease"], takeovers))
    headers = ["workers", "files", "postgresql files/s", "file ledger files/s", "ratio",
               "pg: worker CPU ms/file", "pg: server CPU ms/file",
               "file: worker CPU ms/file"]  # fmt: skip
    print(f"--concurrency {args.concurrency}")
    print(table(headers, rows))
    record("pg_ledger", {"rows": rows, "takeovers": takeovers, "concurrency": args.concurrency})


if __name__ == "__main__":
    main()
