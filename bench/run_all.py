"""Run every benchmark and print its table (`make bench`); `--quick` runs each at a small size
only to keep it working (what CI does). Each appends its figures to bench/results.jsonl."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "schedule",
    "drain",
    "detect",
    "scale",
    "scaling",
    "tsv_throughput",
    "pg_load",
    "pg_ledger",
    "s3_source",
    "compact",
    "keys",
    "publish",
    "operators",
    "console",
]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = []
    for name in BENCHES:
        print(f"\n## {name}" + (" (quick)" if quick else ""), flush=True)
        start = time.monotonic()
        args = [sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if quick else [])
        if subprocess.run(args, cwd=HERE.parent).returncode != 0:
            failed.append(name)
        print(f"({time.monotonic() - start:.0f} s)", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
