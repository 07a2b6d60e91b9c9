"""TSV handler throughput: MB/s converting JSON Lines to PostgreSQL COPY text.

Compared in the same run on the same file: `ingestd.tsv.convert` with `--columns` (one pass)
and without (two passes: the column union first), a plain stdlib loop (`json.loads` per line,
fields joined with no escaping: a floor for pure Python), `jq -r '[...] | @tsv'` when `jq` is
installed, and the parse step alone with `json` vs `orjson` / `msgspec` if they are installed.

    python bench/tsv_throughput.py [--mb 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import record, table

from ingestd.handlers.tsv import convert

COLUMNS = ("id", "user", "event", "ok", "score", "tags", "meta", "note")


def generate(path: Path, megabytes: float) -> int:
    rng = random.Random(1)
    target = int(megabytes * 1_000_000)
    written = count = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            obj = {
                "id": count, "user": f"user{rng.randrange(10**6)}",
                "event": rng.choice(["view", "click", "buy"]),
                "ok": rng.random() < 0.5, "score": rng.random() * 100,
                "tags": [rng.choice("abcdef") for _ in range(3)],
                "meta": {"ip": f"192.0.2.{rng.randrange(255)}", "agent": "Mozilla/5.0 (X11)"},
                "note": rng.choice([None, "tab\there", "line\nbreak", "plain text", "ünïcødé"]),
            }  # fmt: skip
            line = json.dumps(obj, ensure_ascii=False) + "\n"
            out.write(line)
            written += len(line.encode())
            count += 1
    return count


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def plain_loop(path: Path, out: Path) -> None:
    with open(path, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            obj = json.loads(line)
            dst.write("\t".join(str(obj.get(c)) for c in COLUMNS) + "\n")


def parse_only(loads, path: Path) -> None:  # type: ignore[no-untyped-def]
    with open(path, "rb") as src:
        for line in src:
            loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--quick", action="store_true", help="5 MB")
    args = parser.parse_args()
    megabytes = 5.0 if args.quick else args.mb
    rows = []
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-", dir=Path.cwd()) as tmp:
        base = Path(tmp)
        source = base / "2018_06_28_00_00.txt"
        objects = generate(source, megabytes)
        size = source.stat().st_size / 1e6
        runs = {
            "ingestd tsv, --columns": lambda: convert(source, base / "a", COLUMNS, False),
            "ingestd tsv, column union": lambda: convert(source, base / "b", None, False),
            "plain stdlib loop (no escaping)": lambda: plain_loop(source, base / "c.tsv"),
        }
        jq = shutil.which("jq")
        if jq:
            fields = (
                ", ".join(f".{c}" for c in COLUMNS[:5]) + ", (.tags|tojson), (.meta|tojson), .note"
            )

            def run_jq(jq: str = jq, fields: str = fields) -> None:
                with open(source, "rb") as src, open(base / "d.tsv", "wb") as dst:
                    subprocess.run([jq, "-r", f"[{fields}] | @tsv"], stdin=src, stdout=dst,
                                   check=True)  # fmt: skip

            runs["jq -r '[...] | @tsv'"] = run_jq
        runs["parse only: json.loads"] = lambda: parse_only(json.loads, source)
        for module in ("orjson", "msgspec"):
            try:
                lib = __import__(module)
            except ImportError:
                continue
            loads = lib.loads if module == "orjson" else lib.json.decode
            runs[f"parse only: {module}"] = lambda loads=loads: parse_only(loads, source)
        for label, action in runs.items():
            seconds = timed(action)
            rows.append([label, size, seconds, size / seconds])
            record("tsv", {"run": label, "mb": size, "objects": objects, "seconds": seconds,
                           "mb_per_s": size / seconds})  # fmt: skip
    print(table(["conversion", "MB", "seconds", "MB/s"], rows))


if __name__ == "__main__":
    main()
