"""The console at scale: how long a page takes to render, and a reading of the ledger.

100,000 files in DIR and 1,000,000 done records (bench/scale.py's layout), plus 1,000 failed
ones. A real `ingestd console` process serves the pages; each page is fetched over HTTP many
times and its median time printed beside the baseline measured in the same run: a GET of the
console's own stylesheet (a file read and the same HTTP stack). The reading behind the board
(the `status` report, the last failures, the timeline and the metrics) runs in the console's
thread, never in a request: its time is the `took` the page prints.

    python bench/console.py [--files 100000] [--records 1000000] [--quick]
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import record, table
from scale import build, sizes

from ingestd.ledgers.file.manifest import encode

PAGES = (("stylesheet (baseline)", "static/console.css"), ("board /", ""),
         ("file page /files/NAME", "files/{name}"), ("metrics", "metrics"))  # fmt: skip
FAILED = 1_000


def add_failures(data: Path, count: int) -> None:
    with open(data / ".ingestd" / "manifest.jsonl", "ab") as out:
        for i in range(count):
            name = f"2030_01_01_{i // 60:02d}_{i % 60:02d}.txt"
            (data / name).write_text("x")
            out.write(encode({"file": name, "status": "failed", "worker": "host-b:1",
                              "attempt": 3, "error": f"bad input: line {i}",
                              "finished_at": "2030-01-01T00:00:00+00:00"}))  # fmt: skip


def fetch(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def main() -> None:
    files, records = sizes(__doc__.split("\n\n")[0])
    repeats = 5 if files < 10_000 else 20
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-", dir=Path.cwd()) as tmp:
        data = Path(tmp) / "drop"
        names = build(data, files, records)
        add_failures(data, FAILED)
        log = Path(tmp) / "console.log"
        with open(log, "wb") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "ingestd", "console", str(data), "--listen",
                 "127.0.0.1:0", "--log-format", "json", "--refresh", "30"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            rows, figures = measure(log, names[len(names) // 2], repeats)
        finally:
            child.terminate()
            child.wait(timeout=30)
    print(f"\n{files:,} files, {records + FAILED:,} records; median of {repeats} GETs")
    print(table(["page", "ms", "KB", "x baseline"], rows))
    record("console", {"files": files, "records": records, **figures})


def measure(log: Path, name: str, repeats: int) -> tuple[list[list[object]], dict[str, float]]:
    url = None
    started = time.monotonic()
    while time.monotonic() - started < 600:
        if m := re.search(r'"url": "([^"]+)"', log.read_text()):
            url = m.group(1)
            try:
                if urllib.request.urlopen(url, timeout=60).status == 200:
                    break
            except OSError:
                pass
        time.sleep(0.2)
    assert url, log.read_text()
    reading = time.monotonic() - started
    took = re.search(r"in (\d+\.\d+) s\)", urllib.request.urlopen(url).read().decode())
    print(f"first reading ready after {reading:.1f} s (the board says it took "
          f"{took.group(1) if took else '?'} s)")  # fmt: skip
    rows: list[list[object]] = []
    figures: dict[str, float] = {"reading_s": float(took.group(1)) if took else -1.0}
    baseline = None
    for label, path in PAGES:
        times, size = zip(*(fetch(url + path.format(name=name)) for _ in range(repeats)),
                          strict=True)  # fmt: skip
        ms = statistics.median(times) * 1000
        baseline = baseline or ms
        rows.append([label, round(ms, 1), round(size[0] / 1024, 1), round(ms / baseline, 1)])
        figures[re.sub(r"\W+", "_", label.split()[0]) + "_ms"] = round(ms, 2)
    return rows, figures


if __name__ == "__main__":
    main()
