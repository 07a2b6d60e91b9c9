"""Helpers shared by the benchmarks: real worker processes, manifest reading, result lines."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.jsonl"
SIMULATION = ROOT / "simulation.py"


def manifest(state: Path) -> list[dict[str, Any]]:
    path = state / "manifest.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


@contextmanager
def workers(
    data: Path | str, count: int, *args: str, log_dir: Path | None = None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` real `python -m ingestd` processes with JSON logs in log_dir; stopped after."""
    log_dir = log_dir or Path(data).parent
    procs = []
    for i in range(count):
        with open(log_dir / f"worker{i}.log", "wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "ingestd",
                        str(data),
                        "--worker-id",
                        f"w{i}",
                        "--log-format",
                        "json",
                        *args,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_until(predicate: Any, timeout: float, poll: float = 0.01) -> float:
    """Seconds until predicate() is true; raises on timeout."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(poll)
    return time.monotonic() - start


def json_log(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def rate(records: list[dict[str, Any]]) -> float:
    """Files per second over a run's records: first start to last finish."""
    start = min(epoch(str(r["started_at"])) for r in records)
    end = max(epoch(str(r["finished_at"])) for r in records)
    return len(records) / (end - start)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def record(bench: str, figures: dict[str, Any]) -> None:
    """Append one result line: date, commit, cores, figures."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    line = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "bench": bench,
        **figures,
    }
    with open(RESULTS, "a") as out:
        out.write(json.dumps(line) + "\n")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in cells]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)
