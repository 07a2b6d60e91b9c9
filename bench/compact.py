"""`ingestd compact` on a big manifest, beside reading the same manifest in the same run.

A manifest of N records (default 1,000,000) for N*0.8 files: every fifth file has a failed
record, a retry and then its done record, as years of operation leave them. Measured: the
compaction (read under the lock, write, fsync, rename), and two baselines on the same file:
a worker's start-up read of it (`Manifest.refresh`, the fast path) and a plain copy of its
bytes. Ratios are what to compare across machines.

    python bench/compact.py [--records 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import record, table

from ingestd.contracts.naming import format_name
from ingestd.ledgers.file.compact import compact
from ingestd.ledgers.file.manifest import Manifest, encode


def write_manifest(path: Path, records: int) -> int:
    """Write about `records` records; the number of files."""
    start = datetime(2000, 1, 1)
    files = written = 0
    with open(path, "wb") as out:
        while written < records:
            name = format_name(start + timedelta(minutes=15 * files))
            base = {"file": name, "worker": f"host{files % 2}:1234", "host": "host", "pid": 1234,
                    "attempt": 1, "seen_at": "2026-01-01T00:00:00.000000+00:00",
                    "started_at": "2026-01-01T00:00:01.000000+00:00",
                    "finished_at": "2026-01-01T00:20:00.000000+00:00"}  # fmt: skip
            lines = []
            if files % 5 == 0:
                lines.append(encode({**base, "status": "failed", "error": "bad input: x"}))
                lines.append(encode({"file": name, "status": "retry", "worker": "op"}))
            lines.append(encode({**base, "status": "done", "minutes": 23.5, "size": 3,
                                 "sha256": "ab" * 32}))  # fmt: skip
            out.write(b"".join(lines))
            written += len(lines)
            files += 1
    return files


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    records = 20_000 if args.quick else args.records
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        path = state / "manifest.jsonl"
        files = write_manifest(path, records)
        size = path.stat().st_size

        def startup_read() -> None:
            manifest = Manifest(path, state / "manifest.lock")
            manifest.refresh()
            manifest.close()

        read_s = timed(startup_read)
        copy_s = timed(lambda: shutil.copyfile(path, state / "copy.jsonl"))
        (state / "copy.jsonl").unlink()
        result = None

        def run() -> None:
            nonlocal result
            result = compact(state, set)

        compact_s = timed(run)
        assert result is not None and result.records_after == files
        again_s = timed(lambda: compact(state, set))  # already compact: one record per file
    figures = {
        "records": records, "files": files, "mb": round(size / 1e6, 1),
        "compact_s": round(compact_s, 3), "compact_again_s": round(again_s, 3),
        "startup_read_s": round(read_s, 3), "copy_s": round(copy_s, 3),
        "compact_vs_read": round(compact_s / read_s, 2),
    }  # fmt: skip
    record("compact", figures)
    print(table(
        ["records", "MB", "compact s", "again s", "start-up read s", "copy s", "compact / read"],
        [[records, figures["mb"], compact_s, again_s, read_s, copy_s, figures["compact_vs_read"]]],
    ))  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
