"""Operator commands at scale: `verify`, `failed`, `status` and `timeline` on a big state.

100,000 files in DIR and a 1,000,000-record manifest (bench/scale.py's layout). Each command
runs as a real process; its wall time and peak RSS (of that process alone) are printed beside
`compact`'s on the same manifest in the same run: the baseline, one streaming pass over the
same records and a rewrite of them.

    python bench/operators.py [--files 100000] [--records 1000000] [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import record, table
from scale import build, sizes

COMMANDS = (
    ("compact", ["compact"]),
    ("verify", ["verify"]),
    ("failed", ["failed"]),
    ("status", ["status"]),
    ("timeline_last", ["timeline", "-o", "{tmp}/last.png", "--last", "1d"]),
    ("timeline", ["timeline", "-o", "{tmp}/all.png"]),
)


def run(data: Path, tmp: Path, args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MB) of `ingestd ARGS[0] DIR ARGS[1:]` as a child process."""
    argv = [a.replace("{tmp}", str(tmp)) for a in args]
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "ingestd", argv[0], str(data), *argv[1:]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, peak RSS included
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        error = child.stderr.read().decode()[-500:] if child.stderr else ""
        raise SystemExit(f"{argv}: exit {child.returncode}: {error}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    files, records = sizes(__doc__.split("\n\n")[0])
    rows = []
    figures: dict[str, float] = {"files": files, "records": records}
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-", dir=Path.cwd()) as tmp:
        data = Path(tmp) / "drop"
        build(data, files, records)
        baseline = None
        for label, command in COMMANDS:
            seconds, peak = run(data, Path(tmp), command)
            baseline = baseline or seconds
            rows.append([label, round(seconds, 1), round(peak), round(seconds / baseline, 2)])
            figures[f"{label}_s"] = round(seconds, 2)
            figures[f"{label}_mb"] = round(peak)
            print(f"{label}: {seconds:.1f} s, peak RSS {peak:.0f} MB", flush=True)
    print(f"\n{files:,} files, {records:,} records")
    print(table(["command", "seconds", "peak RSS MB", "x compact"], rows))
    record("operators", figures)


if __name__ == "__main__":
    main()
