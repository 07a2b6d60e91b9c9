"""--one-per-key: three workers on three keys under SIGKILLs."""

from __future__ import annotations

import itertools
import os
import random
import time
from collections import defaultdict
from pathlib import Path

from builders import n
from conftest import holding_intervals, manifest_records, wait_for


def test_three_workers_three_keys_never_two_files_of_a_key_at_once(data: Path, spawn) -> None:
    rng = random.Random(20261123)
    names = [n(key, 15 * i) for key in "abc" for i in range(8)]
    poison = n("b", 30)
    for name in names:
        (data / name).write_text("not a number\n" if name == poison else f"{rng.randint(5, 30)}\n")
    # Three kills may all land on one key's file: more attempts than that, so none is poison.
    args = ("--one-per-key", "--seconds-in-min", "0.01", "--heartbeat-interval", "0.3",
            "--max-attempts", "10")  # fmt: skip
    workers = [spawn(data, *args, name=f"w{i}") for i in range(3)]
    for kill in range(3):  # SIGKILL one in the middle of a file, start another
        victim = workers[kill]
        wait_for(lambda v=victim: v.events("file_claimed"), what="at work")
        time.sleep(rng.uniform(0.05, 0.2))
        victim.kill()
        workers.append(spawn(data, *args, name=f"w{kill}-again"))
    wait_for(lambda: len({r["file"] for r in manifest_records(data)}) == 24, timeout=120,
             what="every file recorded")  # fmt: skip
    for w in workers[3:]:
        assert w.terminate() == 0
    records = manifest_records(data)
    done = [r["file"] for r in records if r["status"] == "done"]
    assert sorted(done) == sorted(set(names) - {poison})  # each once; the poison did not stop b
    assert [r["file"] for r in records if r["status"] == "failed"] == [poison]
    # Per key, from the workers' own logs (killed attempts included): never two files of a
    # key in hand at once, and each file taken only once the one before it was finished.
    per_key: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for name, spans in holding_intervals(workers).items():
        per_key[name[0]].extend((start, end, name) for start, end, _ in spans)
    for key, spans in per_key.items():
        spans.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(spans):
            assert start >= end, f"key {key}: {second} began before {first} ended"
            assert second >= first, f"key {key}: {second} before {first}"


def test_a_failed_file_moved_away_still_blocks_its_key_and_idle_exit_says_so(
    data: Path, spawn
) -> None:
    (data / "acme_2018_06_28_00_00.txt").write_text("not a number")
    (data / "acme_2018_06_28_00_15.txt").write_text("1")
    (data / "beta_2018_06_28_00_15.txt").write_text("1")
    w = spawn(data, "--one-per-key", "--on-key-failure", "block", "--on-failed", "move:failed",
              "--seconds-in-min", "0", "--exit-when-idle", "1")  # fmt: skip
    assert w.wait(timeout=60) == 0
    assert os.listdir(data / "failed") == ["acme_2018_06_28_00_00.txt"]
    assert [e["file"] for e in w.events("file_done")] == ["beta_2018_06_28_00_15.txt"]
    assert (data / "acme_2018_06_28_00_15.txt").exists()  # held by its failed predecessor
    idle = w.events("idle_exit")[0]
    assert idle["blocked_keys"] == {"acme": "acme_2018_06_28_00_00.txt"}
    assert idle["left_waiting"] == 1
