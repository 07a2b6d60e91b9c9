"""Operator commands at scale: `verify`, `failed`, `status` and `timeline` on a big state.

100,000 files in DIR and a 1,000,000-record manifest (bench/scale.py's layout). Each command
runs as a real process; its wall time and peak RSS are printed beside `compact`'s on the same
manifest in the same run (the baseline: one streaming pass over the same records).

    python bench/operators.py [--files 100000] [--records 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import table
from scale import build

COMMANDS = (
    ("compact (baseline)", ["compact"]),
    ("verify", ["verify"]),
    ("failed", ["failed"]),
    ("status", ["status"]),
    ("timeline --last 1d", ["timeline", "-o", "{tmp}/last.png", "--last", "1d"]),
    ("timeline (all)", ["timeline", "-o", "{tmp}/all.png"]),
)


def run(data: Path, tmp: Path, args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MB) of `ingestd ARGS DIR` as a child process."""
    argv = [a.replace("{tmp}", str(tmp)) for a in args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ingestd", argv[0], str(data), *argv[1:]],
                          capture_output=True, timeout=3600)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{argv}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far: a smaller later child
    # does not show; commands run from the cheapest expected to the costliest.
    return seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10,000 files, 100,000 records")
    args = parser.parse_args()
    files, records = (10_000, 100_000) if args.quick else (args.files, args.records)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-", dir=Path.cwd()) as tmp:
        data = Path(tmp) / "drop"
        build(data, files, records)
        for label, command in COMMANDS:
            seconds, peak = run(data, Path(tmp), command)
            rows.append((label, f"{seconds:.1f}", f"{peak:.0f}"))
            print(f"{label}: {seconds:.1f} s, peak RSS {peak:.0f} MB", flush=True)
    print(f"\n{files:,} files, {records:,} records")
    print(table(("command", "seconds", "peak RSS MB"), rows))


if __name__ == "__main__":
    main()
