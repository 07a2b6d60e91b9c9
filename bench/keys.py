"""`--one-per-key`: throughput with K keys against the same files without the option.

N ready files of 10 ms of simulated work each (`--seconds-in-min 0.001`, content `10`), spread
round-robin over K keys (`k0_...`, `k1_...`), drained by 2 and 4 workers with `--one-per-key`,
and the same files without it in the same run. With one key the work is serial by design; it
should scale with K up to the number of workers. Throughput is files over first claim to last
record.

    python bench/keys.py [--files 240] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import manifest, rate, record, table, wait_until, workers

from ingestd.contracts.naming import format_name


def make_files(data: Path, count: int, keys: int) -> None:
    data.mkdir(parents=True)
    first = datetime(2018, 6, 28)
    for i in range(count):
        stamp = first + timedelta(minutes=15 * (i // keys))
        (data / format_name(stamp, f"k{i % keys}")).write_text("10\n")


def drain(data: Path, count: int, processes: int, one_per_key: bool) -> float:
    args = ["--seconds-in-min", "0.001", "--rescan-interval", "0.5"]
    if one_per_key:
        args.append("--one-per-key")
    with workers(data, processes, *args):
        wait_until(lambda: len(manifest(data / ".ingestd")) >= count, timeout=600, poll=0.1)
    return rate(manifest(data / ".ingestd"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=240)
    parser.add_argument("--quick", action="store_true", help="40 files, 2 workers, K 1 and 2")
    args = parser.parse_args()
    count = 40 if args.quick else args.files
    combos = [(2, [1, 2])] if args.quick else [(2, [1, 2, 4]), (4, [1, 2, 4, 8])]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-") as tmp:
        base = Path(tmp)
        for processes, key_counts in combos:
            for keys in key_counts:
                runs = {}
                for one_per_key in (False, True):
                    data = base / f"w{processes}-k{keys}-{int(one_per_key)}"
                    make_files(data, count, keys)
                    runs[one_per_key] = drain(data, count, processes, one_per_key)
                figures = {"workers": processes, "keys": keys, "files": count,
                           "files_per_s": round(runs[True], 1),
                           "without_files_per_s": round(runs[False], 1),
                           "ratio": round(runs[True] / runs[False], 3)}  # fmt: skip
                record("keys", figures)
                rows.append([processes, keys, count, runs[True], runs[False], figures["ratio"]])
    print(table(["workers", "keys", "files", "one-per-key files/s", "without files/s",
                 "ratio"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
