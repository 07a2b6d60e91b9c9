"""Benchmark 1, schedule fidelity: the appendix day through N workers vs the ideal schedule.

The ideal is the FIFO N-machine schedule of the same arrivals (the times the provider actually
closed each file, from its arrivals log): each file, in arrival order, starts on the first
machine free, as soon as it has arrived. Measured: makespan (first arrival to last finish) and
arrival-to-done latency, in simulated minutes. Exact arrival times give the textbook figures
(2 workers: makespan 1450.98, mean latency 29.0).

    python bench/schedule.py [--speeds 0.01 0.001] [--workers 1 2 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    SIMULATION,
    epoch,
    json_log,
    manifest,
    percentile,
    record,
    table,
    wait_until,
    workers,
)


def ideal(
    arrivals: list[tuple[float, float]],
    machines: int,
    idle: float = 0.0,
    handoff: float = 0.0,
    overshoot: float = 0.0,
) -> tuple[float, list[float]]:
    """(makespan, latencies) of FIFO on `machines` for (arrival, minutes) pairs.

    With costs (in the same unit as the times), a model of a real fleet: a file taken by a
    free machine starts `idle` after it arrived, a queued one `handoff` after the previous
    finished, and every file runs `overshoot` longer than its minutes.
    """
    free = [0.0] * machines
    latencies = []
    last = 0.0
    for arrival, minutes in sorted(arrivals):
        free_at = heapq.heappop(free)
        start = arrival + idle if free_at <= arrival + idle else free_at + handoff
        finish = start + minutes + overshoot
        heapq.heappush(free, finish)
        latencies.append(finish - arrival)
        last = max(last, finish)
    return last - min(a for a, _ in arrivals), latencies


def overheads(
    records: list[dict[str, Any]],
    claimed: dict[str, float],
    arrived: dict[str, float],
    speed: float,
) -> dict[str, float]:
    """Where the wall-clock time beyond the ideal goes, per file, in milliseconds.

    idle claim: file closed -> `file_claimed` when a worker was free for it; overshoot: how
    much longer the work took than minutes x speed; handoff: previous file finished ->
    next one claimed, when files were queued.
    """
    idle, overshoot, handoff = [], [], []
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_worker.setdefault(r["worker"], []).append(r)
    for rs in by_worker.values():
        rs.sort(key=lambda r: claimed[r["file"]])
        previous_end = None
        for r in rs:
            name = r["file"]
            start, end = epoch(r["started_at"]), epoch(r["finished_at"])
            overshoot.append(end - start - r["minutes"] * speed)
            if previous_end is not None and previous_end > arrived[name]:
                handoff.append(claimed[name] - previous_end)
            else:
                idle.append(claimed[name] - arrived[name])
            previous_end = end

    def mean_ms(values: list[float]) -> float:
        return 1000 * sum(values) / len(values) if values else float("nan")

    return {
        "idle_claim_ms": mean_ms(idle),
        "overshoot_ms": mean_ms(overshoot),
        "handoff_ms": mean_ms(handoff),
    }


def sleep_overshoot_ms(samples: int, speed: float) -> float:
    """Mean overshoot of a bare `asyncio.sleep` of appendix-like lengths (12-37 minutes at
    `speed`) in an idle loop: the timer's share of "work overshoot", with no daemon at all."""

    async def measure() -> float:
        rng = random.Random(1)
        total = 0.0
        for _ in range(samples):
            wanted = rng.uniform(12, 37) * speed
            start = time.perf_counter()
            await asyncio.sleep(wanted)
            total += time.perf_counter() - start - wanted
        return 1000 * total / samples

    return asyncio.run(measure())


def _logged(base: Path, index: int, event: str) -> bool:
    path = base / f"worker{index}.log"
    return path.exists() and f'"event": "{event}"' in path.read_text()


def run(count: int, speed: float, files: int | None, before_dir: bool = False) -> dict[str, Any]:
    """One run. `before_dir`: the setup's order, workers started before the provider
    creates the directory (they must notice it and its first files at once); else the
    directory exists and the workers are ready before the provider starts."""
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-") as tmp:
        base = Path(tmp)
        data, log = base / "drop", base / "arrivals.jsonl"
        if not before_dir:
            data.mkdir()
        event = "waiting_for_directory" if before_dir else "ready"
        sim_args = ["--files", str(files), "--seed", "1"] if files else []
        with workers(data, count, "--seconds-in-min", str(speed), "--rescan-interval", "0.5") as ps:
            wait_until(lambda: all(_logged(base, i, event) for i in range(len(ps))), timeout=30)
            subprocess.run(
                [sys.executable, str(SIMULATION), str(data), "--seconds-in-min", str(speed),
                 "--arrivals", str(log), *sim_args],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            expected = len(log.read_text().splitlines())
            wait_until(lambda: len(manifest(data / ".ingestd")) >= expected, timeout=600, poll=0.1)
        arrived = {
            e["file"]: (e["written_at"], float(e["minutes"]))
            for e in map(json.loads, log.read_text().splitlines())
        }
        t0 = min(t for t, _ in arrived.values())
        records = manifest(data / ".ingestd")
        done = {r["file"]: epoch(r["finished_at"]) for r in records}
        claimed = {
            e["file"]: epoch(e["timestamp"])
            for i in range(count)
            for e in json_log(base / f"worker{i}.log")
            if e["event"] == "file_claimed"
        }
        costs = overheads(records, claimed, {n: t for n, (t, _) in arrived.items()}, speed)
        latencies = [(done[n] - t) / speed for n, (t, _) in arrived.items()]
        makespan = (max(done.values()) - t0) / speed
        relative = [((t - t0) / speed, m) for t, m in arrived.values()]
        ideal_makespan, ideal_latencies = ideal(relative, count)
    mean = sum(latencies) / len(latencies)
    ideal_mean = sum(ideal_latencies) / len(ideal_latencies)
    # The ideal plus the measured costs (ms -> simulated minutes; an unmeasured handoff, when
    # files never queued, is 0), with and without the work overshoot.
    idle, handoff, over = (
        0.0 if math.isnan(costs[k]) else costs[k] / 1000 / speed
        for k in ("idle_claim_ms", "handoff_ms", "overshoot_ms")
    )
    _, modelled = ideal(relative, count, idle, handoff, over)
    _, no_overshoot = ideal(relative, count, idle, handoff)
    return {
        "start": "before the directory" if before_dir else "directory first",
        "workers": count,
        "seconds_in_min": speed,
        "makespan": makespan,
        "ideal_makespan": ideal_makespan,
        "makespan_ratio": makespan / ideal_makespan,
        "mean_latency": mean,
        "ideal_mean_latency": ideal_mean,
        "latency_ratio": mean / ideal_mean,
        "p99_latency": percentile(latencies, 99),
        "ideal_p99_latency": percentile(ideal_latencies, 99),
        **costs,
        "modelled_mean_latency": sum(modelled) / len(modelled),
        "modelled_without_overshoot": sum(no_overshoot) / len(no_overshoot),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speeds", type=float, nargs="+", default=[0.01, 0.001])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--quick", action="store_true", help="20 synthetic files, 2 workers")
    args = parser.parse_args()
    files = 20 if args.quick else None
    combos = [(2, 0.001)] if args.quick else [(w, s) for s in args.speeds for w in args.workers]
    # The setup's own order of commands too: two workers, then the provider makes DIR.
    runs = [(w, s, False) for w, s in combos] + [(2, s, True) for s in (
        [0.001] if args.quick else args.speeds)]  # fmt: skip
    rows, costs = [], []
    for count, speed, before_dir in runs:
        result = run(count, speed, files, before_dir)
        record("schedule", result)
        rows.append([result[k] for k in (
            "start", "workers", "seconds_in_min", "makespan", "ideal_makespan", "makespan_ratio",
            "mean_latency", "ideal_mean_latency", "latency_ratio", "p99_latency",
            "ideal_p99_latency")])  # fmt: skip
        keys = ("workers", "seconds_in_min", "idle_claim_ms", "overshoot_ms", "handoff_ms",
                "mean_latency", "modelled_mean_latency", "modelled_without_overshoot")  # fmt: skip
        costs.append([result[k] for k in keys])
    print(table(["start", "workers", "s/min", "makespan", "ideal", "ratio", "mean lat",
                 "ideal", "ratio", "p99 lat", "ideal p99"], rows))  # fmt: skip
    print()
    print("Mean cost per file (wall-clock ms), and the ideal schedule with those costs added:")
    print(table(["workers", "s/min", "idle claim", "work overshoot", "handoff", "mean lat",
                 "model", "model w/o overshoot"], costs))  # fmt: skip
    for speed in sorted({speed for _, speed in combos}, reverse=True):
        baseline = sleep_overshoot_ms(3 if args.quick else 30, speed)
        record("schedule_timer", {"seconds_in_min": speed, "sleep_overshoot_ms": baseline})
        print(f"bare asyncio.sleep at {speed} s/min, same lengths: overshoot {baseline:.3f} ms")


if __name__ == "__main__":
    main()
