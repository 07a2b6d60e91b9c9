"""`--publish-in-order`: publication delay and throughput, beside the same files without it.

K keys of N files each, all ready at the start, drained by 2 and 4 workers with two handlers:
`tsv` on JSON Lines of 1 to 20,000 objects (conversion takes 0 to ~150 ms, CPU-bound, so the
publishing thread competes with it for the interpreter), and `sleep`, a handler that sleeps 10
to 150 ms and writes one small output (the mechanism's own cost). Files finish out of order.
From the workers' logs, per file:

- delay: its `file_done` to its `file_published` (whoever published it). It includes waiting
  for earlier files of its key, which is the point of the option.
- overhead: its `file_published` less the moment it could first have been published (the
  last `file_done`/`file_failed` among it and every earlier file of its key): the mechanism's
  own cost.

Throughput (files over first claim to last record) is compared with the same files drained
without the option, in the same run.

    python bench/publish.py [--files-per-key 40] [--keys 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import epoch, json_log, manifest, percentile, rate, record, table, wait_until, workers

from ingestd.contracts.naming import format_name, key_of, sort_key

SLEEP_HANDLER = """
import time

def handle(job):
    text = job.open().read().decode()
    time.sleep(float(text))
    target = job.outputs_dir() / job.name.replace(".txt", ".out")
    temp = target.with_name("." + target.name + ".tmp")
    temp.write_text(text)
    temp.replace(target)
    return 1.0
"""
HANDLERS = {"tsv": "tsv", "sleep": "bench_sleep:handle"}


def make_files(data: Path, keys: int, per_key: int, handler: str, seed: int) -> None:
    rng = random.Random(seed)
    data.mkdir(parents=True)
    for i in range(per_key):
        for k in range(keys):
            name = format_name(datetime(2018, 6, 28) + timedelta(minutes=15 * i), f"k{k}")
            if handler == "sleep":
                text = f"{rng.uniform(0.01, 0.15):.3f}\n"
            else:
                rows = rng.randint(1, 20_000)
                text = "".join(f'{{"i": {j}, "s": "x{j}"}}\n' for j in range(rows))
            (data / name).write_text(text)


def drain(
    data: Path, count: int, processes: int, handler: str, in_order: bool
) -> tuple[float, Path]:
    logs = data.parent / f"{data.name}-logs"
    logs.mkdir()
    args = ["--handler", HANDLERS[handler], "--rescan-interval", "0.5", "--settle", "0"]
    if in_order:
        args.append("--publish-in-order")
    with workers(data, processes, *args, log_dir=logs):
        wait_until(lambda: len(manifest(data / ".ingestd")) >= count, timeout=600, poll=0.1)
        if in_order:
            published = lambda: sum(  # noqa: E731
                len([e for e in json_log(p) if e.get("event") == "file_published"])
                for p in logs.glob("*.log")
            )
            wait_until(lambda: published() >= count, timeout=60, poll=0.1)
    return rate(manifest(data / ".ingestd")), logs


def delays(logs: Path) -> tuple[list[float], list[float]]:
    """(done -> published, earliest possible -> published) per file, in seconds."""
    finished: dict[str, float] = {}
    published: dict[str, float] = {}
    for path in logs.glob("*.log"):
        for event in json_log(path):
            name, kind = event.get("file"), event.get("event")
            if kind in ("file_done", "file_failed"):
                finished[name] = epoch(event["timestamp"])
            elif kind == "file_published":
                published[name] = min(published.get(name, 1e18), epoch(event["timestamp"]))
    total, overhead = [], []
    per_key: dict[str, list[str]] = {}
    for name in finished:
        per_key.setdefault(key_of(name), []).append(name)
    for names in per_key.values():
        ready = 0.0
        for name in sorted(names, key=sort_key):
            ready = max(ready, finished[name])  # every earlier file of the key is finished
            if name in published:
                total.append(published[name] - finished[name])
                overhead.append(published[name] - ready)
    return total, overhead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files-per-key", type=int, default=40)
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 keys of 8 files, 2 workers")
    args = parser.parse_args()
    keys, per_key = (2, 8) if args.quick else (args.keys, args.files_per_key)
    count = keys * per_key
    rows = []
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-") as tmp:
        base = Path(tmp)
        (base / "bench_sleep.py").write_text(SLEEP_HANDLER)
        # The workers import the sleeping handler from here (they inherit the variable).
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [tmp, os.environ.get("PYTHONPATH")])
        )
        combos = [("sleep", 2)] if args.quick else [(h, w) for h in HANDLERS for w in (2, 4)]
        for handler, processes in combos:
            runs = {}
            for in_order in (False, True):
                data = base / f"{handler}-w{processes}-{int(in_order)}"
                make_files(data, keys, per_key, handler, seed=processes)
                runs[in_order] = drain(data, count, processes, handler, in_order)
            total, overhead = delays(runs[True][1])
            ms = [round(1000 * percentile(v, q), 1) for v in (total, overhead) for q in (50, 99)]
            figures = {"handler": handler, "workers": processes, "keys": keys, "files": count,
                       "files_per_s": round(runs[True][0], 1),
                       "without_files_per_s": round(runs[False][0], 1),
                       "ratio": round(runs[True][0] / runs[False][0], 3),
                       "delay_p50_ms": ms[0], "delay_p99_ms": ms[1],
                       "overhead_p50_ms": ms[2], "overhead_p99_ms": ms[3]}  # fmt: skip
            record("publish", figures)
            rows.append([handler, processes, keys, count, runs[True][0], runs[False][0],
                         figures["ratio"], *ms])  # fmt: skip
    print(table(["handler", "workers", "keys", "files", "in order files/s", "without files/s",
                 "ratio", "delay p50 ms", "delay p99 ms", "overhead p50 ms", "overhead p99 ms"],
                rows))  # fmt: skip


if __name__ == "__main__":
    main()
